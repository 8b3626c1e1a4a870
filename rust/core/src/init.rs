//! A tiny PID 1 for `--init` (bind-mounted into containers as /dev/init):
//! fork+exec the command, forward signals to it, reap every zombie
//! (orphans are reparented to PID 1), exit with the command's status.
//!
//! Signals are blocked and taken synchronously with sigwait, so there are no
//! handlers and no races between a SIGCHLD and the wait loop. (As PID 1 of a
//! pid namespace we would otherwise be immune to signals without handlers.)

use std::ffi::CString;
use std::io::Write;

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("init: no command given")]
    NoCommand,
    #[error("init: argument contains a NUL byte")]
    Nul,
    #[error("init: {step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: nix::Error,
    },
}

pub type Result<T> = std::result::Result<T, InitError>;

/// Signals passed on to the command.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Run `args` under the reaper; returns the exit code to exit with.
pub fn run(args: &[String]) -> Result<i32> {
    if args.is_empty() {
        return Err(InitError::NoCommand);
    }
    let argv = args
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| InitError::Nul))
        .collect::<Result<Vec<_>>>()?;
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(*s);
    }
    // Outside a pid namespace (not PID 1) orphans would go to the host's
    // init; become their subreaper so they are still ours to reap.
    if nix::unistd::getpid().as_raw() != 1 {
        nix::sys::prctl::set_child_subreaper(true).map_err(|source| InitError::Sys {
            step: "PR_SET_CHILD_SUBREAPER",
            source,
        })?;
    }
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).map_err(
        |source| InitError::Sys {
            step: "sigprocmask",
            source,
        },
    )?;

    // SAFETY: single-threaded; the child only restores its mask and execs.
    let child = match unsafe { fork() }.map_err(|source| InitError::Sys {
        step: "fork",
        source,
    })? {
        ForkResult::Child => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            let err = match nix::unistd::execvp(&argv[0], &argv) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            let _ = writeln!(std::io::stderr(), "init: exec {}: {}", args[0], err.desc());
            let code = if err == nix::Error::ENOENT { 127 } else { 126 };
            // SAFETY: _exit is always safe.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    loop {
        let sig = set.wait().map_err(|source| InitError::Sys {
            step: "sigwait",
            source,
        })?;
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        if let Some(code) = reap(child)? {
            return Ok(code);
        }
    }
}

/// Reap every exited child; the command's exit code once it is among them.
fn reap(child: Pid) -> Result<Option<i32>> {
    let mut result = None;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => result = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                result = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return Ok(result),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(source) => {
                return Err(InitError::Sys {
                    step: "waitpid",
                    source,
                })
            }
        }
    }
}
