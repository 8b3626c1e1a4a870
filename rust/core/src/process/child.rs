//! The cloned child: becomes the container's init. Runs only the steps drawn
//! in the module doc of [`crate::process`], then execve. Never returns.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::channel::{Channel, ChannelError, Msg};
use super::{ProcessError, ProcessSetup};
use crate::namespaces::{NamespaceError, NamespacePlan};
use crate::rootfs::{apply, RootfsError, RootfsPlan};
use crate::syscall::Syscall;

#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("{step} {path}: {source}")]
    Sys {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

impl ChildError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ChildError::Process(p) => p.exit_code(),
            _ => 1,
        }
    }
}

type Result<T> = std::result::Result<T, ChildError>;

fn sys<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(nix::Error) -> ChildError + 'a {
    move |source| ChildError::Sys {
        step,
        path: path.to_owned(),
        source,
    }
}

/// What the child needs; all of it prepared by the parent before clone.
pub struct ChildContext<'a> {
    pub syscall: &'a dyn Syscall,
    pub namespaces: &'a NamespacePlan,
    pub hostname: Option<&'a str>,
    pub domainname: Option<&'a str>,
    pub rootfs: &'a RootfsPlan,
    pub process: &'a ProcessSetup,
    /// O_PATH descriptor of the exec fifo, opened before pivot_root.
    pub fifo_fd: RawFd,
}

/// Run the container init's setup and execve. Errors before `Ready` go to
/// the parent; later ones (after `start`) can only go to our stderr.
pub fn run(ctx: &ChildContext, chan: &Channel) -> ! {
    // A panic must not unwind into the parent's frames we were cloned from
    // (their destructors would clean up the parent's state).
    let setup = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| setup(ctx, chan)));
    let program = match setup {
        Ok(Ok(p)) => p,
        Err(_) => {
            let _ = chan.send(&Msg::Error {
                code: 1,
                message: "container init: panic during setup".into(),
            });
            // SAFETY: _exit is always safe.
            unsafe { libc::_exit(1) }
        }
        Ok(Err(e)) => {
            let _ = chan.send(&Msg::Error {
                code: e.exit_code(),
                message: e.to_string(),
            });
            // SAFETY: _exit is always safe; no destructors/atexit in the child.
            unsafe { libc::_exit(e.exit_code()) }
        }
    };
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match wait_for_start(ctx.fifo_fd) {
            Err(e) => e,
            Ok(()) => match ctx.process.finalize() {
                Err(e) => ChildError::from(e),
                Ok(()) => ChildError::from(ctx.process.exec(&program)),
            },
        }
    }));
    let Ok(err) = run else {
        // SAFETY: _exit is always safe.
        unsafe { libc::_exit(1) }
    };
    let _ = writeln!(std::io::stderr(), "moorage-runtime: container init: {err}");
    // SAFETY: as above.
    unsafe { libc::_exit(err.exit_code()) }
}

fn setup(ctx: &ChildContext, chan: &Channel) -> Result<CString> {
    match chan.recv()? {
        Msg::Go => {}
        other => return Err(ChannelError::Unexpected(format!("{other:?}")).into()),
    }
    // Device nodes get exactly the configured modes; the process's umask is
    // set again in `finalize`.
    nix::sys::stat::umask(Mode::empty());
    if ctx.namespaces.new_cgroup {
        crate::namespaces::unshare_cgroup()?;
    }
    if let Some(mnt) = &ctx.namespaces.join_mount {
        mnt.setns()?;
    }
    if ctx.namespaces.new_uts {
        if let Some(h) = ctx.hostname {
            ctx.syscall.sethostname(h).map_err(|e| RootfsError::Sys {
                step: "hostname",
                source: e,
            })?;
        }
        if let Some(d) = ctx.domainname {
            ctx.syscall.setdomainname(d).map_err(|e| RootfsError::Sys {
                step: "domainname",
                source: e,
            })?;
        }
    }
    if ctx.namespaces.join_mount.is_none() {
        apply::prepare(ctx.syscall, ctx.rootfs)?;
        apply::pivot(ctx.syscall, ctx.rootfs)?;
    }
    if ctx.process.terminal {
        let master = open_console(ctx.syscall, ctx.rootfs.console)?;
        chan.send(&Msg::Console(master))?;
    }
    if ctx.namespaces.join_mount.is_none() {
        apply::finish(ctx.syscall, ctx.rootfs)?;
    }
    ctx.process.set_rlimits()?;
    let cwd = &ctx.process.cwd;
    if nix::unistd::chdir(cwd.as_path()).is_err() {
        // runc creates a missing cwd; so do we, then fail if it still is not there.
        let _ = std::fs::create_dir_all(cwd);
        nix::unistd::chdir(cwd.as_path()).map_err(sys("chdir", cwd))?;
    }
    let program = ctx.process.resolve()?;
    chan.send(&Msg::Ready)?;
    Ok(program)
}

/// Block until `start` opens the exec fifo for reading. Reopening through
/// /proc/self/fd works although the fifo lives outside our root.
fn wait_for_start(fifo_fd: RawFd) -> Result<()> {
    let path = PathBuf::from(format!("/proc/self/fd/{fifo_fd}"));
    let fd = nix::fcntl::open(&path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys("open exec fifo", &path))?;
    // SAFETY: fresh descriptor from open.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    nix::unistd::write(&fd, b"0").map_err(sys("write exec fifo", &path))?;
    drop(fd);
    let _ = nix::unistd::close(fifo_fd);
    Ok(())
}

/// New pty in the container's devpts; the slave becomes our controlling
/// terminal and stdio, /dev/console is bound to it, the master is returned.
pub fn open_console(s: &dyn Syscall, bind_console: bool) -> Result<OwnedFd> {
    let ptmx = Path::new("/dev/ptmx");
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(sys("posix_openpt", ptmx))?;
    nix::pty::grantpt(&master).map_err(sys("grantpt", ptmx))?;
    nix::pty::unlockpt(&master).map_err(sys("unlockpt", ptmx))?;
    let name = nix::pty::ptsname_r(&master).map_err(sys("ptsname", ptmx))?;
    let pts = PathBuf::from(name);
    let slave = nix::fcntl::open(&pts, OFlag::O_RDWR | OFlag::O_NOCTTY, Mode::empty())
        .map_err(sys("open", &pts))?;
    if bind_console {
        apply::bind_console(s, &pts)?;
    }
    nix::unistd::setsid().map_err(sys("setsid", &pts))?;
    // SAFETY: TIOCSCTTY takes an int argument; slave is a valid tty fd.
    if unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) } < 0 {
        return Err(ChildError::Sys {
            step: "TIOCSCTTY",
            path: pts,
            source: nix::Error::last(),
        });
    }
    for target in 0..3 {
        nix::unistd::dup2(slave, target).map_err(sys("dup2 pty", &pts))?;
    }
    if slave > 2 {
        let _ = nix::unistd::close(slave);
    }
    // SAFETY: the PtyMaster owned this descriptor; we take ownership.
    Ok(unsafe { OwnedFd::from_raw_fd(master.into_raw_fd()) })
}

/// Send a pty master over the `--console-socket` (runc's protocol: one
/// message whose payload is a name and whose SCM_RIGHTS carries the fd).
pub fn send_console(socket: &Path, master: &OwnedFd) -> std::io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let stream = std::os::unix::net::UnixStream::connect(socket)?;
    let fds = [master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}
