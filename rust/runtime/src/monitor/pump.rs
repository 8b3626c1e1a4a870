//! The event loop of one run: container output → json-file log (and the
//! monitor's own stdout/stderr with --attach), the monitor's stdin → the
//! container (--attach --stdin), signals from the signalfd.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;

use super::attach::Hub;
use super::logfile::{JsonLog, LineBuf, Stream};
use super::sys::{reap_all, write_all_raw};

/// After the container's exit, how long to wait for its pipes to reach EOF
/// (a process that escaped the container may still hold them).
const DRAIN: Duration = Duration::from_secs(2);

pub struct Pump {
    pub fd: OwnedFd,
    pub stream: Stream,
    /// --attach: also copy raw bytes to this fd of the monitor (1 or 2).
    pub attach_fd: Option<i32>,
}

pub struct Loop<'a> {
    pub sigfd: &'a SignalFd,
    pub log: &'a mut JsonLog,
    pub bufs: &'a mut [LineBuf; 2],
    pub container: Pid,
    /// --attach --stdin: the container's stdin (pipe or pty master).
    pub stdin_to: Option<OwnedFd>,
    /// `moorage attach` clients (with --attach-socket).
    pub hub: Option<&'a mut Hub>,
    /// The container's stdin for the clients' input; held for the whole run,
    /// so the container does not see EOF when a client goes.
    pub hub_stdin: Option<OwnedFd>,
}

impl Loop<'_> {
    /// Run until the container has exited and its output is drained.
    /// Returns (exit code, signal).
    pub fn run(mut self, mut pumps: [Option<Pump>; 2]) -> (i32, Option<i32>) {
        let mut exit: Option<(i32, Option<i32>)> = None;
        let mut deadline: Option<Instant> = None;
        loop {
            if exit.is_some() && pumps.iter().all(Option::is_none) {
                break;
            }
            let timeout = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    left.as_millis().min(i32::MAX as u128) as i32 + 1
                }
            };
            // [signalfd, stdout, stderr, stdin, attach listener, attach clients…]
            let mut fds = vec![
                libc::pollfd {
                    fd: -1,
                    events: 0,
                    revents: 0,
                };
                4
            ];
            fds[0] = pollin(self.sigfd.as_raw_fd());
            for (i, p) in pumps.iter().enumerate() {
                if let Some(p) = p {
                    fds[1 + i] = pollin(p.fd.as_raw_fd());
                }
            }
            if self.stdin_to.is_some() {
                fds[3] = pollin(0);
            }
            if let Some(h) = self.hub.as_deref() {
                fds.push(pollin(h.listener_fd()));
                for (fd, events) in h.client_polls() {
                    fds.push(libc::pollfd {
                        fd,
                        events,
                        revents: 0,
                    });
                }
            }
            // SAFETY: fds is a valid array of pollfd; negative fds are ignored.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if r < 0 {
                continue; // EINTR: nothing is lost, poll again
            }
            if fds[0].revents != 0 {
                if let Some(e) = self.signals(exit.is_none()) {
                    exit = Some(e);
                    deadline = Some(Instant::now() + DRAIN);
                    // Nobody reads the container's stdin any more.
                    self.stdin_to = None;
                }
            }
            for i in 0..2 {
                if fds[1 + i].revents != 0 {
                    if let Some(p) = &mut pumps[i] {
                        if !self.read_output(p, i) {
                            pumps[i] = None;
                        }
                    }
                }
            }
            if fds[3].fd >= 0 && fds[3].revents != 0 {
                self.copy_stdin();
            }
            if let Some(h) = self.hub.as_deref_mut() {
                for (i, pfd) in fds.iter().skip(5).enumerate() {
                    if pfd.revents != 0 {
                        h.client_event(i, pfd.revents, &mut self.hub_stdin);
                    }
                }
                h.reap();
                if fds[4].revents != 0 {
                    h.accept();
                }
            }
        }
        if let Some(h) = self.hub.as_deref_mut() {
            h.disconnect_all();
        }
        // Whatever did not reach EOF in time still gets its tail logged.
        for (i, p) in pumps.iter().enumerate() {
            if let Some(p) = p {
                let (log, stream) = (&mut *self.log, p.stream);
                self.bufs[i].finish(|line| {
                    let _ = log.write(stream, line);
                });
            }
        }
        exit.unwrap_or((137, Some(9)))
    }

    /// Drain the signalfd. Returns the container's exit once seen.
    fn signals(&mut self, alive: bool) -> Option<(i32, Option<i32>)> {
        let mut exit = None;
        while let Ok(Some(info)) = self.sigfd.read_signal() {
            let signo = info.ssi_signo as i32;
            if signo == libc::SIGCHLD {
                if let Some(e) = reap_all(Some(self.container)) {
                    exit = Some(e);
                }
            } else if alive && exit.is_none() {
                if let Ok(sig) = Signal::try_from(signo) {
                    // ESRCH: it is exiting; SIGCHLD will tell.
                    let _ = kill(self.container, sig);
                }
            }
        }
        exit
    }

    /// One read from a container stream. false at EOF.
    fn read_output(&mut self, p: &mut Pump, i: usize) -> bool {
        let buf = &mut self.bufs[i];
        let spare = buf.spare();
        // SAFETY: reading into a valid, writable slice.
        let mut n = unsafe { libc::read(p.fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error();
            if e == Some(libc::EINTR) || e == Some(libc::EAGAIN) {
                return true;
            }
            // EIO is how a pty master reports that every slave fd is
            // closed; any other error ends the stream the same way.
            n = 0;
        }
        let log = &mut *self.log;
        let stream = p.stream;
        if n == 0 {
            buf.finish(|line| {
                let _ = log.write(stream, line);
            });
            return false;
        }
        let n = n as usize;
        if let Some(fd) = p.attach_fd {
            if write_all_raw(fd, buf.filled(n)).is_err() {
                // The attached client went away (EPIPE): keep logging.
                p.attach_fd = None;
            }
        }
        if let Some(h) = self.hub.as_deref_mut() {
            h.broadcast(stream, buf.filled(n));
        }
        buf.commit(n, |line| {
            let _ = log.write(stream, line);
        });
        true
    }

    fn copy_stdin(&mut self) {
        let mut tmp = [0u8; 4096];
        // SAFETY: reading into a stack buffer.
        let n = unsafe { libc::read(0, tmp.as_mut_ptr().cast(), tmp.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error();
            if e == Some(libc::EINTR) || e == Some(libc::EAGAIN) {
                return;
            }
        }
        let ok = n > 0
            && self
                .stdin_to
                .as_ref()
                .is_some_and(|to| write_all_raw(to.as_raw_fd(), &tmp[..n as usize]).is_ok());
        if !ok {
            // EOF or error on our stdin, or the container closed its
            // stdin: close our end so the container sees EOF; stop copying.
            self.stdin_to = None;
        }
    }
}

fn pollin(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}
