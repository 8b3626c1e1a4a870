//! Process-level setup of the monitor: daemonizing, fd hygiene, signals.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, setsid, ForkResult, Pid};

use super::error::{io, sys, MonitorError, Result};

/// Signals the monitor handles through its signalfd: SIGCHLD to reap, the
/// rest forwarded to the container.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

pub enum Role {
    /// The original process: exit 0 now.
    Parent,
    /// The monitor proper.
    Child,
}

/// Fork once. The parent returns `Parent` only after the child has set
/// itself up and written DIR/monitor.pid, so a caller that reaps the parent
/// can read that file at once.
pub fn daemonize(state_dir: &Path, keep_fd: Option<i32>, detach_stdio: bool) -> Result<Role> {
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    // SAFETY: the monitor is single-threaded here (no threads are ever
    // started), so the child may run arbitrary code after fork.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Parent { child } => {
            drop(ready_w);
            let mut r = File::from(ready_r);
            let mut b = [0u8; 1];
            let ok = matches!(r.read(&mut b), Ok(1));
            if ok {
                Ok(Role::Parent)
            } else {
                // The child died before getting ready; collect it.
                let _ = waitpid(child, None);
                Err(MonitorError::Args("monitor process failed to start".into()))
            }
        }
        ForkResult::Child => {
            drop(ready_r);
            setsid().map_err(sys("setsid"))?;
            let mut keep = vec![ready_w.as_raw_fd()];
            keep.extend(keep_fd);
            close_fds_except(&keep)?;
            if let Some(fd) = keep_fd {
                // Keep it for ourselves; the runtimes we spawn must not hold
                // it or the engine would never see EOF.
                fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(sys("sync fd cloexec"))?;
            }
            // The container's init is created by `RUNTIME create`, which then
            // exits: as subreaper we inherit the init and get its exit status.
            nix::sys::prctl::set_child_subreaper(true).map_err(sys("PR_SET_CHILD_SUBREAPER"))?;
            if detach_stdio {
                null_stdio()?;
            }
            let pid_path = state_dir.join("monitor.pid");
            std::fs::write(&pid_path, format!("{}\n", std::process::id()))
                .map_err(io("write", &pid_path))?;
            let mut w = File::from(ready_w);
            w.write_all(b"1")
                .map_err(io("signal readiness", state_dir))?;
            Ok(Role::Child)
        }
    }
}

/// Close every fd >= 3 not in `keep` (close_range(2) over the gaps).
fn close_fds_except(keep: &[i32]) -> Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|f| **f >= 3)
        .map(|f| *f as u32)
        .collect();
    keep.sort_unstable();
    let mut start = 3u32;
    for k in keep {
        if k > start {
            close_range(start, k - 1)?;
        }
        start = k + 1;
    }
    close_range(start, u32::MAX)
}

fn close_range(first: u32, last: u32) -> Result<()> {
    // SAFETY: plain syscall on integers; closing fds we own in a
    // single-threaded process.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r == 0 {
        Ok(())
    } else {
        Err(sys("close_range")(nix::Error::last()))
    }
}

/// Detached: stdio goes to /dev/null so the caller's pipes see EOF when the
/// parent exits.
fn null_stdio() -> Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_cloexec()
        .open("/dev/null")
        .map_err(io("open", "/dev/null"))?;
    for fd in 0..3 {
        nix::unistd::dup2(null.as_raw_fd(), fd).map_err(sys("dup2 /dev/null"))?;
    }
    Ok(())
}

trait CloexecExt {
    fn custom_flags_cloexec(&mut self) -> &mut Self;
}

impl CloexecExt for std::fs::OpenOptions {
    fn custom_flags_cloexec(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_CLOEXEC)
    }
}

/// Block the handled signals and read them from a signalfd instead, so the
/// event loop is one poll(2) and no code runs in signal-handler context.
/// Children get an empty mask again (`unblock_signals_in_child`).
pub fn signal_fd() -> Result<SignalFd> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(*s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(sys("sigprocmask"))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(sys("signalfd"))
}

/// How a process ended: (exit code as Docker reports it, signal).
pub fn exit_of(ws: WaitStatus) -> Option<(i32, Option<i32>)> {
    match ws {
        WaitStatus::Exited(_, code) => Some((code, None)),
        WaitStatus::Signaled(_, sig, _) => Some((128 + sig as i32, Some(sig as i32))),
        _ => None,
    }
}

/// Reap every exited child (we are a subreaper: orphans of the container
/// land here too). Returns the container's end if it was among them.
pub fn reap_all(container: Option<Pid>) -> Option<(i32, Option<i32>)> {
    let mut found = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return found,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return found,
            Ok(ws) => {
                if ws.pid().is_some() && ws.pid() == container {
                    if let Some(e) = exit_of(ws) {
                        found = Some(e);
                    }
                }
            }
        }
    }
}

pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))
}

pub fn dev_null() -> Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_cloexec()
        .open("/dev/null")
        .map_err(io("open", "/dev/null"))?;
    Ok(OwnedFd::from(f))
}

pub fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    let fl = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(sys("fcntl getfl"))?;
    let fl = OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(fl)).map_err(sys("fcntl setfl"))?;
    Ok(())
}

/// Write all of `data` to a raw fd we do not own (the monitor's stdout,
/// stderr or the sync fd).
pub fn write_all_raw(fd: i32, data: &[u8]) -> std::io::Result<()> {
    // SAFETY: writing from a valid slice to an fd number.
    write_all_with(data, |d| unsafe {
        libc::write(fd, d.as_ptr().cast(), d.len())
    })
}

/// Push all of `data` through `op` (write(2), send(2), …), which returns
/// what the syscall returned; partial writes continue, EINTR retries.
pub fn write_all_with(mut data: &[u8], mut op: impl FnMut(&[u8]) -> isize) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = op(data);
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// Wrap an fd number passed to us (the sync fd) as an owned fd.
pub fn adopt_fd(fd: i32) -> OwnedFd {
    // SAFETY: the caller hands this fd to the monitor (--sync-fd); nothing
    // else in this process uses it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Let the kernel forget the pages of our own executable that start-up
/// touched (argument parsing, JSON, spawning the runtime), and return free
/// heap to the kernel, before the monitor settles into its event loop.
///
/// Why: the binary is static and file faults "fault around" (map up to 64
/// KiB of neighbouring page-cache pages per fault), so after start-up almost
/// the whole text is mapped and counted in the RSS of every monitor. The
/// pages stay in the page cache (shared by all monitors); MADV_DONTNEED on
/// these read-only private file mappings only drops our page-table entries,
/// and the loop re-faults (minor faults) just the code it runs.
pub fn drop_startup_pages() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let exe = exe.to_string_lossy();
    let mut candidate: Option<(usize, usize)> = None;
    let drop_range = |r: Option<(usize, usize)>| {
        if let Some((a, b)) = r {
            // SAFETY: a read-only private file mapping of our own executable
            // with no private (anonymous) pages; its contents are re-read
            // from the file on the next access.
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
        }
    };
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let Some(first) = f.next() else { continue };
        if let Some((a, b)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            // A new mapping header: start-end perms offset dev inode path.
            drop_range(candidate.take());
            let perms = f.next().unwrap_or("");
            let path = f.nth(3).unwrap_or("");
            if path == exe && perms.as_bytes().get(1) == Some(&b'-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    candidate = Some((a, b));
                }
            }
        } else if first == "Anonymous:" && f.next().is_some_and(|v| v != "0") {
            // Written pages (RELRO: relocated, then made read-only):
            // dropping them would lose the relocations.
            candidate = None;
        }
    }
    drop_range(candidate.take());
    // SAFETY: glibc call without preconditions.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Children must not inherit the monitor's blocked signals (a container
/// whose init starts with SIGTERM blocked ignores `docker stop`): empty
/// the mask between fork and exec. std's spawn does not reliably do it
/// (measured: the mask reached the container through a runtime that does
/// not reset it itself; runc does).
pub fn unblock_signals_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: sigprocmask is async-signal-safe and touches no locks or heap.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
