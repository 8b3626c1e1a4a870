//! Creating the container's init process.
//!
//! `moorage-runtime create` (the parent, single-threaded, no Python) prepares
//! everything that allocates (mount plan, argv/env, seccomp BPF, capability
//! sets) and then clones the child with the new namespaces. They stay in step
//! over a socketpair ([`channel`]):
//!
//! ```text
//!  parent (create)                          child (future container init)
//!  ───────────────                          ─────────────────────────────
//!  setns(joined namespaces except mnt)
//!  clone(CLONE_NEW{PID,NS,UTS,IPC,NET}) ──▶ wait for Go
//!  cgroup.apply(pid); cgroup.set(res)
//!  ─────────────── Go ────────────────────▶ unshare(CLONE_NEWCGROUP)
//!                                           setns(mnt) if joined; hostname
//!                                           mounts, devices, pivot_root
//!  ◀────────────── Console(master fd) ───── (if terminal) new pty in devpts
//!  send master to --console-socket          masked/readonly paths, rlimits
//!                                           resolve args[0] in the rootfs
//!  ◀────────────── Ready ────────────────── (or Error{code, message})
//!  write state.json, pid file; exit 0       open(/proc/self/fd/N = exec.fifo, O_WRONLY)
//!                                             … blocks until `start` opens it
//!  start: open + read exec.fifo ─────────▶  user, caps, no_new_privs, seccomp
//!                                           execve(args)
//! ```
//!
//! On `Error` (or EOF before `Ready`) the parent kills the child, destroys the
//! cgroup and removes the state directory, then exits with the child's code
//! (127 command not found, 126 not executable, 1 otherwise).

pub mod channel;
pub mod child;
pub mod clone;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::resource::Resource;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxSeccomp, PosixRlimitType, Process};
use seccompiler::BpfProgram;

use crate::capabilities::{CapabilityError, CapabilityPlan};
use crate::seccomp::SeccompError;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("config has no process section")]
    NoProcess,
    #[error("process.args is empty")]
    NoArgs,
    #[error("process: {what} contains a NUL byte")]
    Nul { what: &'static str },
    /// Command lookup failed; `code` is 127 (not found) or 126.
    #[error("exec: {message}")]
    Exec { code: i32, message: String },
    #[error("process: {step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("process: unknown rlimit {0}")]
    Rlimit(String),
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
}

impl ProcessError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ProcessError::Exec { code, .. } => *code,
            _ => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, ProcessError>;

fn sys(step: &'static str) -> impl FnOnce(nix::Error) -> ProcessError {
    move |source| ProcessError::Sys { step, source }
}

/// Everything the child needs to become the container process, computed
/// before clone/fork.
#[derive(Debug, Clone)]
pub struct ProcessSetup {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// PATH used to resolve args[0] (from env, else the default).
    pub path: String,
    pub cwd: PathBuf,
    pub uid: Uid,
    pub gid: Gid,
    pub additional_gids: Vec<Gid>,
    pub umask: Mode,
    pub caps: Option<CapabilityPlan>,
    pub no_new_privs: bool,
    pub seccomp: Option<BpfProgram>,
    pub rlimits: Vec<(Resource, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    pub terminal: bool,
}

fn cstring(s: &str, what: &'static str) -> Result<CString> {
    CString::new(s).map_err(|_| ProcessError::Nul { what })
}

fn resource(t: PosixRlimitType) -> Result<Resource> {
    Ok(match t {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    })
}

impl ProcessSetup {
    /// From an OCI process section and the container's seccomp profile.
    pub fn from_oci(p: &Process, seccomp: Option<&LinuxSeccomp>) -> Result<Self> {
        let args = p.args().as_deref().unwrap_or(&[]);
        if args.is_empty() {
            return Err(ProcessError::NoArgs);
        }
        let args = args
            .iter()
            .map(|a| cstring(a, "process.args"))
            .collect::<Result<Vec<_>>>()?;
        let env_list = p.env().as_deref().unwrap_or(&[]);
        let env = env_list
            .iter()
            .map(|e| cstring(e, "process.env"))
            .collect::<Result<Vec<_>>>()?;
        let path = env_list
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
            .to_owned();
        let user = p.user();
        let rlimits = p
            .rlimits()
            .iter()
            .flatten()
            .map(|r| Ok((resource(r.typ())?, r.soft(), r.hard())))
            .collect::<Result<Vec<_>>>()?;
        Ok(ProcessSetup {
            args,
            env,
            path,
            cwd: if p.cwd().as_os_str().is_empty() {
                PathBuf::from("/")
            } else {
                p.cwd().clone()
            },
            uid: Uid::from_raw(user.uid()),
            gid: Gid::from_raw(user.gid()),
            additional_gids: user
                .additional_gids()
                .iter()
                .flatten()
                .map(|g| Gid::from_raw(*g))
                .collect(),
            umask: Mode::from_bits_truncate(user.umask().unwrap_or(0o022)),
            caps: p
                .capabilities()
                .as_ref()
                .map(CapabilityPlan::from_oci)
                .transpose()?,
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            seccomp: seccomp.map(crate::seccomp::compile).transpose()?,
            rlimits,
            oom_score_adj: p.oom_score_adj(),
            terminal: p.terminal().unwrap_or(false),
        })
    }

    /// Resolve args[0] in the current root the way `exec.LookPath` does:
    /// names with a `/` are taken as is, others searched in PATH.
    pub fn resolve(&self) -> Result<CString> {
        let name = Path::new(std::ffi::OsStr::from_bytes(self.args[0].as_bytes()));
        let shown = name.display();
        if name.as_os_str().as_bytes().contains(&b'/') {
            return match check_executable(name) {
                Ok(()) => Ok(self.args[0].clone()),
                Err((code, why)) => Err(ProcessError::Exec {
                    code,
                    message: format!("{shown:?}: {why}"),
                }),
            };
        }
        let mut denied = None;
        for dir in self.path.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let candidate = Path::new(dir).join(name);
            match check_executable(&candidate) {
                Ok(()) => {
                    return CString::new(candidate.as_os_str().as_bytes())
                        .map_err(|_| ProcessError::Nul { what: "path" })
                }
                Err((126, why)) if denied.is_none() => denied = Some(why),
                Err(_) => {}
            }
        }
        Err(match denied {
            Some(why) => ProcessError::Exec {
                code: 126,
                message: format!("{shown:?}: {why}"),
            },
            None => ProcessError::Exec {
                code: 127,
                message: format!(
                    "{:?}: executable file not found in $PATH",
                    name.display().to_string()
                ),
            },
        })
    }

    /// Lower (or set) the rlimits. Raising a hard limit needs CAP_SYS_RESOURCE.
    pub fn set_rlimits(&self) -> Result<()> {
        for (res, soft, hard) in &self.rlimits {
            nix::sys::resource::setrlimit(*res, *soft, *hard).map_err(sys("setrlimit"))?;
        }
        Ok(())
    }

    /// Become the configured user with the configured privileges. The last
    /// thing before execve; seccomp is loaded last of all so that the
    /// filter does not have to allow the setup syscalls.
    pub fn finalize(&self) -> Result<()> {
        if let Some(caps) = &self.caps {
            caps.drop_bounding()?;
        }
        // Keep the permitted set across setuid away from root; the sets are
        // then narrowed explicitly below.
        nix::sys::prctl::set_keepcaps(true).map_err(sys("PR_SET_KEEPCAPS"))?;
        nix::unistd::setgroups(&self.additional_gids).map_err(sys("setgroups"))?;
        nix::unistd::setresgid(self.gid, self.gid, self.gid).map_err(sys("setresgid"))?;
        nix::unistd::setresuid(self.uid, self.uid, self.uid).map_err(sys("setresuid"))?;
        nix::sys::prctl::set_keepcaps(false).map_err(sys("PR_SET_KEEPCAPS"))?;
        if let Some(caps) = &self.caps {
            caps.apply()?;
        }
        nix::sys::stat::umask(self.umask);
        if self.no_new_privs {
            nix::sys::prctl::set_no_new_privs().map_err(sys("PR_SET_NO_NEW_PRIVS"))?;
        }
        if let Some(prog) = &self.seccomp {
            crate::seccomp::load(prog)?;
        }
        Ok(())
    }

    /// execve the resolved program; only returns on failure.
    pub fn exec(&self, program: &CString) -> ProcessError {
        match nix::unistd::execve(program, &self.args, &self.env) {
            Err(e) => {
                let code = if e == nix::Error::ENOENT { 127 } else { 126 };
                ProcessError::Exec {
                    code,
                    message: format!("{program:?}: {}", e.desc().to_lowercase()),
                }
            }
            Ok(never) => match never {},
        }
    }
}

fn check_executable(path: &Path) -> std::result::Result<(), (i32, &'static str)> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err((126, "permission denied"))
        }
        Err(_) => Err((127, "no such file or directory")),
        Ok(m) if m.is_dir() => Err((126, "is a directory")),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err((126, "permission denied")),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(args: &[&str], path: &str) -> ProcessSetup {
        let p: Process = serde_json::from_value(serde_json::json!({
            "args": args, "cwd": "/", "env": [format!("PATH={path}")],
            "user": {"uid": 0, "gid": 0}
        }))
        .unwrap();
        ProcessSetup::from_oci(&p, None).unwrap()
    }

    #[test]
    fn resolve_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "x").unwrap();
        let d = dir.path().display().to_string();

        assert_eq!(
            setup(&["tool"], &d).resolve().unwrap().to_str().unwrap(),
            exe.to_str().unwrap()
        );
        let e = setup(&["nope"], &d).resolve().unwrap_err();
        assert_eq!(e.exit_code(), 127);
        assert_eq!(
            e.to_string(),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(
            setup(&[plain.to_str().unwrap()], &d)
                .resolve()
                .unwrap_err()
                .exit_code(),
            126
        );
        let e = setup(&[&d], &d).resolve().unwrap_err();
        assert_eq!(e.exit_code(), 126);
        assert!(e.to_string().ends_with("is a directory"), "{e}");
    }

    #[test]
    fn rlimits_and_defaults() {
        let p: Process = serde_json::from_value(serde_json::json!({
            "args": ["sh"], "cwd": "", "user": {"uid": 1000, "gid": 1000, "additionalGids": [10]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]
        }))
        .unwrap();
        let s = ProcessSetup::from_oci(&p, None).unwrap();
        assert_eq!(s.path, DEFAULT_PATH);
        assert_eq!(s.cwd, PathBuf::from("/"));
        assert_eq!(s.rlimits, vec![(Resource::RLIMIT_NOFILE, 1024, 1024)]);
        assert_eq!(s.additional_gids, vec![Gid::from_raw(10)]);
        assert_eq!(s.umask, Mode::from_bits_truncate(0o022));
    }
}
