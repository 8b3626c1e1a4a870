//! Attach clients (`moorage attach`): the monitor listens on a unix socket;
//! each client gets the container's output from the moment it connects and
//! may send bytes for the container's stdin.
//!
//! Output without a tty is framed as Docker's attach stream (stdcopy): an
//! 8-byte header `[stream, 0, 0, 0, length as u32 big-endian]` (stream 1 is
//! stdout, 2 stderr), then the bytes. With a tty the bytes go as they are.
//! The monitor never blocks on a client: one whose socket buffer is full is
//! disconnected (the json-file log still has everything). Clients are
//! disconnected when the container exits.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::error::{io, Result};
use super::logfile::Stream;
use super::sys::{write_all_raw, write_all_with};

/// Clients beyond this many are turned away (each costs a buffer's worth of
/// kernel memory and a write per output chunk).
const MAX_CLIENTS: usize = 16;

pub struct Hub {
    path: PathBuf,
    listener: UnixListener,
    clients: Vec<Client>,
    tty: bool,
}

struct Client {
    sock: UnixStream,
    /// Still sending input (false after it shut down its writing side).
    input_open: bool,
    dead: bool,
}

impl Hub {
    /// Listen on `path` (a stale socket file is replaced), root only.
    pub fn bind(path: &Path, tty: bool) -> Result<Hub> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(io("bind attach socket", path))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io("chmod attach socket", path))?;
        listener
            .set_nonblocking(true)
            .map_err(io("attach socket nonblocking", path))?;
        Ok(Hub {
            path: path.to_path_buf(),
            listener,
            clients: Vec::new(),
            tty,
        })
    }

    pub fn listener_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// (fd, poll events) of every client: POLLIN while it may send input,
    /// else nothing but the always-reported hangup and error.
    pub fn client_polls(&self) -> Vec<(RawFd, i16)> {
        self.clients
            .iter()
            .map(|c| {
                let ev = if c.input_open { libc::POLLIN } else { 0 };
                (c.sock.as_raw_fd(), ev)
            })
            .collect()
    }

    /// Take every pending connection.
    pub fn accept(&mut self) {
        while let Ok((sock, _)) = self.listener.accept() {
            if self.clients.len() >= MAX_CLIENTS || sock.set_nonblocking(true).is_err() {
                continue; // dropped: the client sees EOF at once
            }
            self.clients.push(Client {
                sock,
                input_open: true,
                dead: false,
            });
        }
    }

    /// Client `i` is readable or hung up: its bytes go to `stdin` (dropped
    /// when the container has no open stdin).
    pub fn client_event(&mut self, i: usize, revents: i16, stdin: &mut Option<OwnedFd>) {
        let Some(c) = self.clients.get_mut(i) else {
            return;
        };
        if revents & libc::POLLIN != 0 {
            let mut buf = [0u8; 4096];
            match c.sock.read(&mut buf) {
                Ok(0) => c.input_open = false,
                Ok(n) => {
                    if let Some(fd) = stdin {
                        if write_all_raw(fd.as_raw_fd(), &buf[..n]).is_err() {
                            *stdin = None; // the container closed its stdin
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => c.dead = true,
            }
        } else if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            c.dead = true;
        }
    }

    /// Send a chunk of container output to every client.
    pub fn broadcast(&mut self, stream: Stream, data: &[u8]) {
        if self.clients.is_empty() || data.is_empty() {
            return;
        }
        let mut framed;
        let bytes: &[u8] = if self.tty {
            data
        } else {
            let kind = match stream {
                Stream::Stdout => 1u8,
                Stream::Stderr => 2u8,
            };
            framed = Vec::with_capacity(8 + data.len());
            framed.extend_from_slice(&[kind, 0, 0, 0]);
            framed.extend_from_slice(&(data.len() as u32).to_be_bytes());
            framed.extend_from_slice(data);
            &framed
        };
        for c in &mut self.clients {
            if !c.dead && send_all(&c.sock, bytes).is_err() {
                c.dead = true; // gone (EPIPE) or too slow (EAGAIN)
            }
        }
    }

    /// Forget the clients marked dead (closing their sockets).
    pub fn reap(&mut self) {
        self.clients.retain(|c| !c.dead);
    }

    /// The container exited: every client sees EOF.
    pub fn disconnect_all(&mut self) {
        self.clients.clear();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// send(2) with MSG_NOSIGNAL: a vanished client is an error, not SIGPIPE.
fn send_all(sock: &UnixStream, data: &[u8]) -> std::io::Result<()> {
    let fd = sock.as_raw_fd();
    // SAFETY: sending from a valid slice on a socket we own.
    write_all_with(data, |d| unsafe {
        libc::send(fd, d.as_ptr().cast(), d.len(), libc::MSG_NOSIGNAL)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn frames_output_and_forwards_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        let mut hub = Hub::bind(&path, false).unwrap();
        let mut client = UnixStream::connect(&path).unwrap();
        hub.accept();
        assert_eq!(hub.client_polls().len(), 1);

        hub.broadcast(Stream::Stderr, b"oops\n");
        let mut got = [0u8; 13];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got[..8], &[2, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(&got[8..], b"oops\n");

        let (r, w) = nix::unistd::pipe().unwrap();
        let mut stdin = Some(w);
        client.write_all(b"typed").unwrap();
        hub.client_event(0, libc::POLLIN, &mut stdin);
        let mut buf = [0u8; 5];
        nix::unistd::read(r.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf, b"typed");

        // half-close: no more input, output still flows
        client.shutdown(std::net::Shutdown::Write).unwrap();
        hub.client_event(0, libc::POLLIN, &mut stdin);
        assert_eq!(
            hub.client_polls(),
            vec![(hub.clients[0].sock.as_raw_fd(), 0)]
        );
        hub.broadcast(Stream::Stdout, b"x");
        let mut got = [0u8; 9];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, [1, 0, 0, 0, 0, 0, 0, 1, b'x']);

        drop(client);
        hub.broadcast(Stream::Stdout, b"y");
        hub.reap();
        assert!(hub.client_polls().is_empty());
        drop(hub);
        assert!(!path.exists(), "socket file removed with the hub");
    }

    #[test]
    fn tty_output_is_raw() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sock");
        let mut hub = Hub::bind(&path, true).unwrap();
        let mut client = UnixStream::connect(&path).unwrap();
        hub.accept();
        hub.broadcast(Stream::Stdout, b"raw");
        let mut got = [0u8; 3];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"raw");
    }
}
