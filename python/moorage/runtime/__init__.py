"""Container lifecycle over SQLite state; drives the monitor and the OCI runtime."""
