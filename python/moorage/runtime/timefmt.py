"""Timestamps as Docker prints them (RFC 3339 with nanoseconds, UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

ZERO = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    return to_rfc3339(time.time_ns())


def to_rfc3339(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{base}.{frac:09d}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch; 0.0 for the zero time or ''."""
    if not text or text.startswith("0001-"):
        return 0.0
    s = text.rstrip("Z")
    frac = 0.0
    if "." in s:
        s, f = s.split(".", 1)
        digits = "".join(ch for ch in f if ch.isdigit())
        frac = float("0." + digits) if digits else 0.0
    tz = UTC
    dt = datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=tz)
    return dt.timestamp() + frac
