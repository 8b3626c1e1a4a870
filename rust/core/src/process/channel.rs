//! Typed messages between the runtime and the process it cloned, over a
//! `SOCK_SEQPACKET` socketpair (one datagram per message, so no framing; the
//! child's end is close-on-exec, so a successful execve reads as EOF).
//!
//! Wire format: one tag byte, then the payload:
//! `G` go (cgroup applied) · `R` ready · `E` error: i32 exit code (LE) + UTF-8
//! message · `C` console: the pty master travels as SCM_RIGHTS.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("sync channel: {step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("sync channel: unexpected message {0:?}")]
    Unexpected(String),
    #[error("sync channel: peer closed")]
    Closed,
}

pub type Result<T> = std::result::Result<T, ChannelError>;

#[derive(Debug)]
pub enum Msg {
    /// Parent → child: the child is in its cgroup; go on.
    Go,
    /// Child → parent: setup done, executable resolved, waiting for `start`.
    Ready,
    /// Child → parent: setup failed; exit with `code`.
    Error { code: i32, message: String },
    /// Child → parent: the terminal's pty master.
    Console(OwnedFd),
}

#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|source| ChannelError::Sys {
        step: "socketpair",
        source,
    })?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        let mut buf = [0u8; 512];
        let (len, fds): (usize, Option<RawFd>) = match msg {
            Msg::Go => {
                buf[0] = b'G';
                (1, None)
            }
            Msg::Ready => {
                buf[0] = b'R';
                (1, None)
            }
            Msg::Console(fd) => {
                buf[0] = b'C';
                (1, Some(fd.as_raw_fd()))
            }
            Msg::Error { code, message } => {
                buf[0] = b'E';
                buf[1..5].copy_from_slice(&code.to_le_bytes());
                let m = message.as_bytes();
                let n = m.len().min(buf.len() - 5);
                buf[5..5 + n].copy_from_slice(&m[..n]);
                (5 + n, None)
            }
        };
        let iov = [IoSlice::new(&buf[..len])];
        let fdarr;
        let cmsgs: &[ControlMessage] = match fds {
            Some(fd) => {
                fdarr = [fd];
                &[ControlMessage::ScmRights(&fdarr)]
            }
            None => &[],
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|source| ChannelError::Sys {
            step: "sendmsg",
            source,
        })?;
        Ok(())
    }

    /// Receive one message; `Err(Closed)` on EOF.
    pub fn recv(&self) -> Result<Msg> {
        let mut buf = [0u8; 512];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => {
                    let mut fd = None;
                    for c in m.cmsgs().map_err(|source| ChannelError::Sys {
                        step: "recvmsg cmsgs",
                        source,
                    })? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            // SAFETY: the kernel just installed these descriptors for us.
                            fd = fds.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
                        }
                    }
                    break (m.bytes, fd);
                }
                Err(nix::Error::EINTR) => continue,
                Err(source) => {
                    return Err(ChannelError::Sys {
                        step: "recvmsg",
                        source,
                    })
                }
            }
        };
        if n == 0 {
            return Err(ChannelError::Closed);
        }
        match buf[0] {
            b'G' => Ok(Msg::Go),
            b'R' => Ok(Msg::Ready),
            b'C' => fd
                .map(Msg::Console)
                .ok_or_else(|| ChannelError::Unexpected("console without fd".into())),
            b'E' if n >= 5 => {
                let code = i32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]);
                Ok(Msg::Error {
                    code,
                    message: String::from_utf8_lossy(&buf[5..n]).into_owned(),
                })
            }
            t => Err(ChannelError::Unexpected(format!("tag {t}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_messages_and_fd() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Go).unwrap();
        assert!(matches!(b.recv().unwrap(), Msg::Go));
        b.send(&Msg::Error {
            code: 127,
            message: "exec: \"x\": not found".into(),
        })
        .unwrap();
        match a.recv().unwrap() {
            Msg::Error { code, message } => {
                assert_eq!(code, 127);
                assert_eq!(message, "exec: \"x\": not found");
            }
            m => panic!("{m:?}"),
        }
        let f = std::fs::File::open("/dev/null").unwrap();
        b.send(&Msg::Console(f.into())).unwrap();
        assert!(matches!(a.recv().unwrap(), Msg::Console(_)));
        drop(b);
        assert!(matches!(a.recv(), Err(ChannelError::Closed)));
    }
}
