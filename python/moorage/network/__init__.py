"""Network modes: none, host, (later) bridge and joined."""
