"""Images: the OCI content store, references, import."""
