"""Storage drivers: layers on disk and container root filesystems."""
