"""Options → OCI runtime config (the seam between Python and the Rust runtime)."""
