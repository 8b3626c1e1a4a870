"""Security profiles: capabilities, seccomp, no-new-privileges, masked paths."""
