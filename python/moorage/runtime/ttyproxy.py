"""Relaying a terminal to a pty master: ``exec -t`` hands the caller's
terminal to a process inside the container.

The OCI runtime creates the pty inside the container (so ``tty`` names a
/dev/pts entry of the container's devpts) and sends the master over a unix
socket (runc's ``--console-socket`` protocol); this module receives it and
copies bytes both ways until the process exits."""

from __future__ import annotations

import array
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class ConsoleSocket:
    """A listening unix socket that receives one pty master fd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)

    def receive(self, timeout: float = 30.0) -> int:
        """Wait for the runtime to connect and send the master; return it."""
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        with conn:
            fds = array.array("i")
            _, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        if not fds:
            raise OSError("the runtime sent no terminal over the console socket")
        return fds[0]

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


def _copy_winsize(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


@contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Raw mode on ``fd`` while inside the block (no-op when it is not a terminal)."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def relay(master: int, proc: Any, interactive: bool, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
    """Copy stdin → master (when ``interactive``) and master → stdout until
    ``proc`` has exited and the pty is drained."""
    if os.isatty(stdin_fd):
        _copy_winsize(stdin_fd, master)
    old = None
    if os.isatty(stdin_fd):
        old = signal.signal(signal.SIGWINCH, lambda *_: _copy_winsize(stdin_fd, master))
    readers = [master] + ([stdin_fd] if interactive else [])
    try:
        with raw_terminal(stdin_fd) if interactive else _nullcontext():
            while True:
                try:
                    ready, _, _ = select.select(readers, [], [], 0.1)
                except InterruptedError:
                    continue
                if master in ready:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: every slave end is closed
                        data = b""
                    if not data:
                        break
                    os.write(stdout_fd, data)
                if stdin_fd in ready:
                    data = os.read(stdin_fd, 65536)
                    if data:
                        os.write(master, data)
                    else:
                        readers.remove(stdin_fd)
                if not ready and proc.poll() is not None:
                    # exited; anything still buffered was read above
                    break
    finally:
        if old is not None:
            signal.signal(signal.SIGWINCH, old)
        os.close(master)


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield
