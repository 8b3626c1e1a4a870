"""The client side of ``attach``: the container's monitor listens on a unix
socket and streams the container's output to each client, Docker's way
(without a tty, frames of an 8-byte header ``[stream, 0, 0, 0, length BE]``
and the bytes; with a tty, raw bytes), and takes input for its stdin.

:func:`relay` joins that socket to a terminal or pipes, watching the input
for the detach keys (``ctrl-p,ctrl-q`` by default) as the docker client does."""

from __future__ import annotations

import os
import selectors
import socket
import struct
from collections.abc import Iterator

from moorage.errors import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(spec: str) -> bytes:
    """``"ctrl-p,ctrl-q"`` → ``b"\\x10\\x11"`` (docker's ``--detach-keys`` syntax:
    ``ctrl-<a-z @ [ \\ ] ^ _>`` or a single character, comma separated)."""
    out = bytearray()
    for key in spec.split(","):
        k = key.strip()
        if len(k) == 1:
            out.append(ord(k))
        elif k.lower().startswith("ctrl-") and len(k) == 6:
            c = k[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append(ord(c.upper()) - 64 if c != "@" else 0)
            else:
                raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
        else:
            raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
    if not out:
        raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class FrameReader:
    """Split the framed (non-tty) stream into ``(stream, bytes)``; 1 stdout, 2 stderr."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buf += data
        while len(self._buf) >= 8:
            kind, size = self._buf[0], struct.unpack(">I", self._buf[4:8])[0]
            if len(self._buf) < 8 + size:
                break
            payload = bytes(self._buf[8:8 + size])
            del self._buf[:8 + size]
            yield kind, payload


class _Escape:
    """Watches input for the detach sequence; holds back a partial match."""

    def __init__(self, keys: bytes) -> None:
        self.keys, self.held = keys, b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass on, whether the whole sequence was typed)."""
        out = bytearray()
        for b in data:
            cand = self.held + bytes([b])
            if self.keys.startswith(cand):
                if cand == self.keys:
                    return bytes(out), True
                self.held = cand
            else:
                out += cand
                self.held = b""
        return bytes(out), False


def connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    return s


def relay(sock: socket.socket, tty: bool, stdin_fd: int | None, detach_keys: bytes,
          stdout_fd: int = 1, stderr_fd: int = 2) -> bool:
    """Copy the container's output to ``stdout_fd``/``stderr_fd`` and
    ``stdin_fd`` (None: no input) to the container until its output ends.
    Returns True when the user typed the detach keys (the container goes on)."""
    frames = FrameReader()
    escape = _Escape(detach_keys)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    if stdin_fd is not None:
        sel.register(stdin_fd, selectors.EVENT_READ)
    try:
        while True:
            for key, _ in sel.select():
                if key.fileobj is sock:
                    data = sock.recv(65536)
                    if not data:
                        return False
                    if tty:
                        os.write(stdout_fd, data)
                    else:
                        for kind, payload in frames.feed(data):
                            os.write(stderr_fd if kind == 2 else stdout_fd, payload)
                else:
                    data = os.read(stdin_fd, 65536) if stdin_fd is not None else b""
                    if not data:
                        sel.unregister(key.fileobj)
                        sock.shutdown(socket.SHUT_WR)  # no more input; the output goes on
                        continue
                    passed, detached = escape.feed(data)
                    if passed:
                        sock.sendall(passed)
                    if detached:
                        return True
    finally:
        sel.close()
