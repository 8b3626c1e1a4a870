"""Init supervisors: what runs as PID 1 when ``--init`` is asked for."""
