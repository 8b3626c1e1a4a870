//! --tty: the runtime connects to DIR/console.sock and sends the pty
//! master with SCM_RIGHTS (runc's `--console-socket` protocol; the data
//! part of the message is the pty's name and is ignored).

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};

use super::error::{io, sys, MonitorError, Result};

pub struct ConsoleSocket {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> Result<ConsoleSocket> {
        let _ = std::fs::remove_file(path);
        // std sets SOCK_CLOEXEC, so runtimes spawned later do not inherit it.
        let listener = UnixListener::bind(path).map_err(io("bind console socket", path))?;
        listener
            .set_nonblocking(true)
            .map_err(io("console socket nonblocking", path))?;
        Ok(ConsoleSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub fn raw_fd(&self) -> i32 {
        self.listener.as_raw_fd()
    }

    /// Accept one connection and take the fd it carries. `Ok(None)` when no
    /// connection is pending yet.
    pub fn try_receive(&self) -> Result<Option<OwnedFd>> {
        let stream = match self.listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(io("accept console socket", &self.path)(e)),
        };
        stream
            .set_nonblocking(false)
            .map_err(io("console stream blocking", &self.path))?;
        let mut name = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(sys("recvmsg console fd"))?;
        let cmsgs = msg.cmsgs().map_err(sys("console fd control message"))?;
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(fd) = fds.first() {
                    // SAFETY: the kernel just installed this fd for us; we own it.
                    return Ok(Some(unsafe { OwnedFd::from_raw_fd(*fd) }));
                }
            }
        }
        Err(MonitorError::Args(
            "console socket: the runtime sent no file descriptor".into(),
        ))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
