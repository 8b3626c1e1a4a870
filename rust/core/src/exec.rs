//! `exec`: run another process inside a running container.
//!
//! The runtime joins the init's ipc, uts, net and pid namespaces itself
//! (setns into a pid namespace only applies to children), then forks. The
//! child waits until the parent has moved it into the container's cgroup,
//! joins the cgroup and mount namespaces (mount last: after it, host paths
//! are gone), and becomes the configured process. Same channel as create:
//!
//! ```text
//!  parent                               child
//!  setns(ipc, uts, net, pid)
//!  fork ─────────────────────────────▶  wait for Go
//!  cgroup.apply(child)
//!  ────────────── Go ───────────────▶  setns(cgroup, mnt), rlimits, cwd
//!  ◀────────── Console(master) ──────  (if terminal) pty in the container's devpts
//!  ◀──── Error{code,message} or EOF ─  resolve args[0]; user, caps, nnp, seccomp; execve
//!  EOF = exec succeeded (the child's end is close-on-exec)
//! ```

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::container::{wait_exit_code, Container, ContainerError, Result, Status};
use crate::namespaces::{self, Join};
use crate::process::channel::{self, ChannelError, Msg};
use crate::process::child::{open_console, send_console};
use crate::process::clone::{clone_fork, Cloned};
use crate::process::{ProcessError, ProcessSetup};
use crate::syscall::LinuxSyscall;

#[derive(Debug, Default)]
pub struct ExecOptions {
    /// A process.json; when given, the flags below except detach/pid-file/console are ignored.
    pub process: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// uid and optional gid.
    pub user: Option<(u32, Option<u32>)>,
    pub args: Vec<String>,
}

/// The process to run: process.json, or the container's process with the
/// command line's overrides.
pub fn build_process(spec: &Spec, opts: &ExecOptions) -> Result<Process> {
    if let Some(path) = &opts.process {
        let text = std::fs::read(path).map_err(|source| ContainerError::Io {
            step: "read",
            path: path.clone(),
            source,
        })?;
        return serde_json::from_slice(&text).map_err(|e| ContainerError::Io {
            step: "parse",
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        });
    }
    let mut p = spec.process().clone().ok_or(ProcessError::NoProcess)?;
    if opts.args.is_empty() {
        return Err(ProcessError::NoArgs.into());
    }
    p.set_args(Some(opts.args.clone()));
    p.set_terminal(Some(opts.tty));
    if let Some(cwd) = &opts.cwd {
        p.set_cwd(cwd.clone());
    }
    if !opts.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &opts.env {
            let key = kv.split('=').next().unwrap_or("");
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some((uid, gid)) = opts.user {
        let mut user = p.user().clone();
        user.set_uid(uid);
        user.set_gid(gid.unwrap_or(uid));
        user.set_additional_gids(None);
        p.set_user(user);
    }
    Ok(p)
}

fn same_ns(pid: i32, name: &str) -> bool {
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
    let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
    matches!((theirs, ours), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev())
}

/// Run the process; returns its exit code (0 right after exec with detach).
pub fn exec(root: &Path, id: &str, opts: &ExecOptions) -> Result<i32> {
    let container = Container::load(root, id)?;
    let status = container.status();
    if !matches!(status, Status::Running | Status::Created) {
        return Err(ContainerError::BadStatus {
            id: id.to_owned(),
            status,
            action: "exec",
        });
    }
    let config_path = container.state.bundle.join("config.json");
    let spec = Spec::load(&config_path).map_err(|source| ContainerError::Config {
        path: config_path.clone(),
        source,
    })?;
    let process = build_process(&spec, opts)?;
    let setup = ProcessSetup::from_oci(
        &process,
        spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()),
    )?;
    if setup.terminal && opts.console_socket.is_none() {
        return Err(ContainerError::NoConsoleSocket);
    }
    let cgroup = container.cgroup()?;

    let pid = container.state.pid;
    let mut before_fork = Vec::new();
    let mut in_child = Vec::new();
    for kind in [
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Mount,
    ] {
        let name = namespaces::name(kind);
        if same_ns(pid, name) {
            continue;
        }
        let join = Join::open(kind, &PathBuf::from(format!("/proc/{pid}/ns/{name}")))?;
        if matches!(kind, LinuxNamespaceType::Cgroup | LinuxNamespaceType::Mount) {
            in_child.push(join);
        } else {
            before_fork.push(join);
        }
    }
    // The init must still be the same process after we opened its namespaces.
    if !container.init_alive() {
        return Err(ContainerError::BadStatus {
            id: id.to_owned(),
            status: Status::Stopped,
            action: "exec",
        });
    }

    let (parent_chan, child_chan) = channel::pair()?;
    for j in &before_fork {
        j.setns()?;
    }
    // SAFETY: the runtime is single-threaded; the child ends in execve/_exit.
    let child =
        match unsafe { clone_fork(CloneFlags::empty()) }.map_err(|source| ContainerError::Sys {
            step: "fork",
            source,
        })? {
            Cloned::Child => {
                drop(parent_chan);
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    exec_child(&setup, &in_child, &child_chan)
                }));
                let (code, message) = match r {
                    Ok(e) => (e.exit_code(), e.to_string()),
                    Err(_) => (1, "exec: panic in child".to_owned()),
                };
                let _ = child_chan.send(&Msg::Error { code, message });
                // SAFETY: _exit is always safe.
                unsafe { libc::_exit(code) }
            }
            Cloned::Parent(p) => p,
        };
    drop(child_chan);
    let fail = |e: ContainerError| {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        Err(e)
    };
    if let Some(m) = &cgroup {
        if let Err(e) = m.apply(child.as_raw()) {
            return fail(e.into());
        }
    }
    if let Err(e) = parent_chan.send(&Msg::Go) {
        return fail(e.into());
    }
    loop {
        match parent_chan.recv() {
            Err(ChannelError::Closed) => break,
            Ok(Msg::Console(master)) => {
                let sock = opts.console_socket.as_deref().unwrap_or(Path::new(""));
                if let Err(source) = send_console(sock, &master) {
                    return fail(ContainerError::Io {
                        step: "send pty master to console socket",
                        path: sock.to_owned(),
                        source,
                    });
                }
            }
            Ok(Msg::Error { code, message }) => {
                return fail(ContainerError::Init { code, message })
            }
            Ok(other) => return fail(ChannelError::Unexpected(format!("{other:?}")).into()),
            Err(e) => return fail(e.into()),
        }
    }
    if let Some(pf) = &opts.pid_file {
        std::fs::write(pf, child.as_raw().to_string()).map_err(|source| ContainerError::Io {
            step: "write pid file",
            path: pf.clone(),
            source,
        })?;
    }
    if opts.detach {
        return Ok(0);
    }
    wait_exit_code(child)
}

/// The forked child; returns only on failure.
fn exec_child(setup: &ProcessSetup, joins: &[Join], chan: &channel::Channel) -> ContainerError {
    let run = || -> Result<ContainerError> {
        match chan.recv()? {
            Msg::Go => {}
            other => return Err(ChannelError::Unexpected(format!("{other:?}")).into()),
        }
        for j in joins {
            j.setns()?;
        }
        setup.set_rlimits()?;
        if setup.terminal {
            let master = open_console(&LinuxSyscall, false).map_err(|e| ContainerError::Init {
                code: 1,
                message: e.to_string(),
            })?;
            chan.send(&Msg::Console(master))?;
        }
        nix::unistd::chdir(setup.cwd.as_path()).map_err(|source| ContainerError::Sys {
            step: "chdir to process cwd",
            source,
        })?;
        let program = setup.resolve()?;
        setup.finalize()?;
        Ok(setup.exec(&program).into())
    };
    match run() {
        Ok(e) | Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_to_config_process() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin", "A=1"], "user": {"uid": 0, "gid": 0}}
        }))
        .unwrap();
        let opts = ExecOptions {
            args: vec!["id".into()],
            env: vec!["A=2".into(), "B=3".into()],
            cwd: Some("/tmp".into()),
            user: Some((1000, None)),
            ..Default::default()
        };
        let p = build_process(&spec, &opts).unwrap();
        assert_eq!(p.args().as_deref().unwrap(), ["id"]);
        assert_eq!(p.env().as_deref().unwrap(), ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
        assert!(build_process(&spec, &ExecOptions::default()).is_err());
    }
}
