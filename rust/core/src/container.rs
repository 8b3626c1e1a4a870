//! Container lifecycle for the runtime binary: create, start, state, kill,
//! delete, pause/resume, ps. State lives in `<root>/<id>/`:
//!
//! * `state.json` — [`State`], written atomically once init is ready;
//! * `exec.fifo` — present while the container is `created`; init blocks
//!   opening it for writing, `start` opens it for reading and removes it.
//!
//! A container's init is identified by pid *and* start time (field 22 of
//! /proc/PID/stat), so a recycled pid never reads as our container.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::{self, CgroupError, Manager};
use crate::namespaces::{NamespaceError, NamespacePlan};
use crate::process::channel::{self, ChannelError, Msg};
use crate::process::child::{self, ChildContext};
use crate::process::clone::{clone_fork, Cloned};
use crate::process::{ProcessError, ProcessSetup};
use crate::rootfs::{self, MountKind, RootfsError, RootfsPlan};
use crate::syscall::LinuxSyscall;

pub const OCI_VERSION: &str = "1.2.0";
const STATE_FILE: &str = "state.json";
const FIFO: &str = "exec.fifo";

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("invalid container id {0:?}")]
    InvalidId(String),
    #[error("container {0} does not exist")]
    NotExist(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {id} is {status}: cannot {action}")]
    BadStatus {
        id: String,
        status: Status,
        action: &'static str,
    },
    #[error("load {path}: {source}")]
    Config {
        path: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("process.terminal is set but no --console-socket was given")]
    NoConsoleSocket,
    #[error("container has no cgroup (linux.cgroupsPath not set): cannot {0}")]
    NoCgroup(&'static str),
    /// The container init reported a setup failure (already a full sentence).
    #[error("{message}")]
    Init { code: i32, message: String },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

impl ContainerError {
    /// Exit code for the runtime: 127/126 for command lookup, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            ContainerError::Init { code, .. } => *code,
            ContainerError::Process(p) => p.exit_code(),
            _ => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, ContainerError>;

fn io<'a>(
    step: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ContainerError + 'a {
    move |source| ContainerError::Io {
        step,
        path: path.to_owned(),
        source,
    }
}
fn sys(step: &'static str) -> impl FnOnce(nix::Error) -> ContainerError {
    move |source| ContainerError::Sys { step, source }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Start time of the init (clock ticks since boot), to detect pid reuse.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    #[serde(default)]
    pub cgroups_path: Option<String>,
    #[serde(default)]
    pub paused: bool,
}

/// The OCI state document printed by `state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: HashMap<String, String>,
}

pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(ContainerError::InvalidId(id.to_owned()))
    }
}

/// Fields of /proc/PID/stat after the command name: (state char, start time).
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // starttime is field 22 overall, i.e. the 20th after the command name.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// A loaded container: its directory and state.
#[derive(Debug)]
pub struct Container {
    pub dir: PathBuf,
    pub state: State,
}

impl Container {
    pub fn load(root: &Path, id: &str) -> Result<Self> {
        validate_id(id)?;
        let dir = root.join(id);
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContainerError::NotExist(id.to_owned()))
            }
            Err(e) => return Err(io("read", &path)(e)),
        };
        let state = serde_json::from_slice(&text).map_err(|e| {
            io("parse", &path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })?;
        Ok(Container { dir, state })
    }

    fn save(&self) -> Result<()> {
        let data = serde_json::to_vec(&self.state)
            .map_err(|e| io("serialize state", &self.dir)(std::io::Error::other(e)))?;
        write_atomic(&self.dir.join(STATE_FILE), &data)
    }

    /// Whether the init is still our process (alive, not a zombie, same start time).
    pub fn init_alive(&self) -> bool {
        matches!(proc_stat(self.state.pid), Some((s, start)) if start == self.state.start_time && s != 'Z' && s != 'X')
    }

    pub fn status(&self) -> Status {
        if !self.init_alive() {
            Status::Stopped
        } else if self.dir.join(FIFO).exists() {
            Status::Created
        } else if self.state.paused {
            Status::Paused
        } else {
            Status::Running
        }
    }

    pub fn oci_state(&self) -> OciState {
        let status = self.status();
        OciState {
            oci_version: OCI_VERSION.to_owned(),
            id: self.state.id.clone(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.state.pid
            },
            bundle: self.state.bundle.clone(),
            rootfs: self.state.rootfs.clone(),
            created: self.state.created.clone(),
            annotations: self.state.annotations.clone(),
        }
    }

    pub fn cgroup(&self) -> Result<Option<Box<dyn Manager>>> {
        Ok(self
            .state
            .cgroups_path
            .as_deref()
            .map(cgroups::create_manager)
            .transpose()?)
    }

    /// Write new limits to the container's cgroup (runc's `update`).
    pub fn update(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        if !self.init_alive() {
            return Err(ContainerError::BadStatus {
                id: self.state.id.clone(),
                status: self.status(),
                action: "update",
            });
        }
        self.cgroup()?
            .ok_or(ContainerError::NoCgroup("update"))?
            .set(resources)?;
        Ok(())
    }

    /// Resource usage read from the container's cgroup.
    pub fn stats(&self) -> Result<cgroups::Stats> {
        Ok(self
            .cgroup()?
            .ok_or(ContainerError::NoCgroup("stats"))?
            .stats()?)
    }

    /// Pids of the container: from its cgroup, else every process in the
    /// init's pid namespace (if it has its own), else just the init.
    pub fn pids(&self) -> Result<Vec<i32>> {
        if let Some(m) = self.cgroup()? {
            return Ok(m.pids()?);
        }
        if !self.init_alive() {
            return Ok(Vec::new());
        }
        let pid = self.state.pid;
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        if ns.is_none() || ns == std::fs::read_link("/proc/self/ns/pid").ok() {
            return Ok(vec![pid]);
        }
        let mut pids = Vec::new();
        let proc_dir = Path::new("/proc");
        for entry in std::fs::read_dir(proc_dir)
            .map_err(io("read", proc_dir))?
            .flatten()
        {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if std::fs::read_link(format!("/proc/{p}/ns/pid")).ok() == ns {
                pids.push(p);
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    pub fn signal(&self, sig: Signal, all: bool) -> Result<()> {
        if !self.init_alive() {
            return Err(ContainerError::BadStatus {
                id: self.state.id.clone(),
                status: Status::Stopped,
                action: "kill",
            });
        }
        if all {
            for p in self.pids()? {
                let _ = kill(Pid::from_raw(p), sig);
            }
            Ok(())
        } else {
            kill(Pid::from_raw(self.state.pid), sig).map_err(sys("kill"))
        }
    }

    /// Release the init blocked on the exec fifo.
    pub fn start(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Created {
            return Err(ContainerError::BadStatus {
                id: self.state.id.clone(),
                status,
                action: "start",
            });
        }
        let path = self.dir.join(FIFO);
        // O_NONBLOCK: opening never waits for a writer, so a dead init cannot
        // hang us; we poll instead and check the init between polls.
        let fd = nix::fcntl::open(
            &path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("open", &path)(e.into()))?;
        // SAFETY: fresh descriptor from open.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        loop {
            let mut pfd = [nix::poll::PollFd::new(
                fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::Error::EINTR) => {
                    if !self.init_alive() {
                        return Err(ContainerError::Init {
                            code: 1,
                            message: "container init exited before start".into(),
                        });
                    }
                }
                Ok(_) => {
                    let mut b = [0u8; 1];
                    match nix::unistd::read(fd.as_raw_fd(), &mut b) {
                        Ok(1) => break,
                        Ok(_) | Err(nix::Error::EAGAIN) => {
                            if !self.init_alive() {
                                return Err(ContainerError::Init {
                                    code: 1,
                                    message: "container init exited before start".into(),
                                });
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => return Err(sys("read exec fifo")(e)),
                    }
                }
                Err(e) => return Err(sys("poll exec fifo")(e)),
            }
        }
        std::fs::remove_file(&path).map_err(io("remove", &path))
    }

    pub fn pause(&mut self) -> Result<()> {
        let status = self.status();
        if status != Status::Running {
            return Err(ContainerError::BadStatus {
                id: self.state.id.clone(),
                status,
                action: "pause",
            });
        }
        self.cgroup()?
            .ok_or(ContainerError::NoCgroup("pause"))?
            .freeze()?;
        self.state.paused = true;
        self.save()
    }

    pub fn resume(&mut self) -> Result<()> {
        let status = self.status();
        if status != Status::Paused {
            return Err(ContainerError::BadStatus {
                id: self.state.id.clone(),
                status,
                action: "resume",
            });
        }
        self.cgroup()?
            .ok_or(ContainerError::NoCgroup("resume"))?
            .thaw()?;
        self.state.paused = false;
        self.save()
    }

    /// Remove the container. A created container's init is killed; a
    /// running or paused one only with `force`.
    pub fn delete(self, force: bool) -> Result<()> {
        let status = self.status();
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(ContainerError::BadStatus {
                id: self.state.id.clone(),
                status,
                action: "delete (not stopped; use --force)",
            });
        }
        let cgroup = self.cgroup()?;
        if status != Status::Stopped {
            if status == Status::Paused {
                if let Some(m) = &cgroup {
                    m.thaw()?;
                }
            }
            // Everything in the container, not only init (a shared pid namespace
            // would leave the others running).
            self.signal(Signal::SIGKILL, true)?;
            let _ = kill(Pid::from_raw(self.state.pid), Signal::SIGKILL);
            self.wait_stopped(Duration::from_secs(10))?;
        }
        if let Some(m) = cgroup {
            destroy_cgroup(m.as_ref())?;
        }
        std::fs::remove_dir_all(&self.dir).map_err(io("remove", &self.dir))
    }

    fn wait_stopped(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            // Reap it if it is our child (`run`); ignore ECHILD otherwise.
            let _ = waitpid(Pid::from_raw(self.state.pid), Some(WaitPidFlag::WNOHANG));
            if !self.init_alive() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ContainerError::Init {
                    code: 1,
                    message: format!("container {} did not stop", self.state.id),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The cgroup can only go once its last task is gone, which lags SIGKILL a bit.
fn destroy_cgroup(m: &dyn Manager) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match m.destroy() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(data).map_err(io("write", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("rename", path))
}

/// RFC 3339 (UTC, seconds) for a unix time; civil-from-days (H. Hinnant).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub struct CreateOptions<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
}

/// Undo a half-done create: kill the child, remove cgroup and state dir.
struct CreateGuard {
    dir: PathBuf,
    pid: Option<Pid>,
    cgroup: Option<Box<dyn Manager>>,
    armed: bool,
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(m) = &self.cgroup {
            let _ = destroy_cgroup(m.as_ref());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Create the container: its init is left blocked on the exec fifo and is
/// our child (so `run` can wait for it). Returns the init's pid.
pub fn create(opts: &CreateOptions) -> Result<Pid> {
    validate_id(opts.id)?;
    let bundle = std::fs::canonicalize(opts.bundle).map_err(io("resolve bundle", opts.bundle))?;
    let config_path = bundle.join("config.json");
    let spec = Spec::load(&config_path).map_err(|source| ContainerError::Config {
        path: config_path.clone(),
        source,
    })?;

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(opts.root)
        .map_err(io("create root", opts.root))?;
    let dir = opts.root.join(opts.id);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ContainerError::Exists(opts.id.to_owned()))
        }
        Err(e) => return Err(io("create state dir", &dir)(e)),
    }
    let mut guard = CreateGuard {
        dir: dir.clone(),
        pid: None,
        cgroup: None,
        armed: true,
    };

    let process = spec.process().as_ref().ok_or(ProcessError::NoProcess)?;
    let linux = spec.linux().as_ref();
    let setup = ProcessSetup::from_oci(process, linux.and_then(|l| l.seccomp().as_ref()))?;
    if setup.terminal && opts.console_socket.is_none() {
        return Err(ContainerError::NoConsoleSocket);
    }
    let namespaces =
        NamespacePlan::from_config(linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]))?;
    let needs_hierarchies = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.typ().as_deref() == Some("cgroup"));
    let hierarchies = if needs_hierarchies {
        rootfs::host_cgroup_hierarchies()?
    } else {
        Vec::new()
    };
    let plan = RootfsPlan::from_spec(&spec, &bundle, &hierarchies)?;
    debug_assert!(plan
        .mounts
        .iter()
        .all(|m| !matches!(m.kind, MountKind::Cgroup(_)) || needs_hierarchies));
    let cgroups_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    if let Some(p) = &cgroups_path {
        guard.cgroup = Some(cgroups::create_manager(p)?);
    }

    let fifo = dir.join(FIFO);
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
        .map_err(|e| io("mkfifo", &fifo)(e.into()))?;
    // mkfifo honours the umask; the init may run as any user.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(io("chmod", &fifo))?;
    let fifo_fd = nix::fcntl::open(&fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| io("open", &fifo)(e.into()))?;
    // SAFETY: fresh descriptor from open.
    let fifo_fd = unsafe { OwnedFd::from_raw_fd(fifo_fd) };

    let (parent_chan, child_chan) = channel::pair()?;
    for join in &namespaces.join_before_clone {
        join.setns()?;
    }
    // SAFETY: the runtime is single-threaded; the child ends in execve/_exit.
    let cloned = unsafe { clone_fork(namespaces.clone_flags) }.map_err(sys("clone"))?;
    let pid = match cloned {
        Cloned::Child => {
            drop(parent_chan);
            let ctx = ChildContext {
                syscall: &LinuxSyscall,
                namespaces: &namespaces,
                hostname: spec.hostname().as_deref(),
                domainname: spec.domainname().as_deref(),
                rootfs: &plan,
                process: &setup,
                fifo_fd: fifo_fd.as_raw_fd(),
            };
            child::run(&ctx, &child_chan)
        }
        Cloned::Parent(pid) => pid,
    };
    drop(child_chan);
    drop(fifo_fd);
    guard.pid = Some(pid);

    if let Some(m) = &guard.cgroup {
        m.apply(pid.as_raw())?;
        if let Some(res) = linux.and_then(|l| l.resources().as_ref()) {
            m.set(res)?;
        }
    }
    parent_chan.send(&Msg::Go)?;
    if let Some(adj) = setup.oom_score_adj {
        let p = PathBuf::from(format!("/proc/{pid}/oom_score_adj"));
        std::fs::write(&p, adj.to_string()).map_err(io("write", &p))?;
    }
    loop {
        match parent_chan.recv() {
            Ok(Msg::Ready) => break,
            Ok(Msg::Console(master)) => {
                let sock = opts.console_socket.ok_or(ContainerError::NoConsoleSocket)?;
                child::send_console(sock, &master)
                    .map_err(io("send pty master to console socket", sock))?;
            }
            Ok(Msg::Error { code, message }) => return Err(ContainerError::Init { code, message }),
            Ok(Msg::Go) => return Err(ChannelError::Unexpected("Go from child".into()).into()),
            Err(ChannelError::Closed) => {
                return Err(ContainerError::Init {
                    code: 1,
                    message: "container init exited during setup".into(),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }

    let start_time = proc_stat(pid.as_raw())
        .map(|(_, s)| s)
        .ok_or(ContainerError::Init {
            code: 1,
            message: "container init exited during setup".into(),
        })?;
    let container = Container {
        dir: dir.clone(),
        state: State {
            id: opts.id.to_owned(),
            pid: pid.as_raw(),
            start_time,
            bundle: bundle.clone(),
            rootfs: plan.rootfs.clone(),
            created: rfc3339(SystemTime::now()),
            annotations: spec.annotations().clone().unwrap_or_default(),
            cgroups_path,
            paused: false,
        },
    };
    container.save()?;
    if let Some(pf) = opts.pid_file {
        write_atomic(pf, pid.as_raw().to_string().as_bytes())?;
    }
    guard.armed = false;
    Ok(pid)
}

/// Wait for a child and turn its status into a shell-style exit code.
pub fn wait_exit_code(pid: Pid) -> Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(sys("waitpid")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2.x").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("../x").is_err());
        assert!(validate_id("a/b").is_err());
    }

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "2024-02-29T12:34:56Z"
        );
    }

    #[test]
    fn proc_stat_reads_self() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(start > 0);
    }
}
