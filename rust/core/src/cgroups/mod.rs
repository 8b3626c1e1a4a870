//! cgroup managers: v1 (one hierarchy per controller), v2 (unified), and the
//! hybrid layout of this VM (v1 controllers plus a cgroup2 mount that holds
//! only hugetlb) — detected per controller, not per host.
//!
//! Interface used by the runtime (`container.rs`, `exec.rs`) and the monitor.
//! The implementation is filled in by the cgroup work; the signatures are the
//! contract.

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// Live statistics read back from the cgroup (for `inspect`, `stats`, OOM detection).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub memory_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    pub oom_kills: u64,
    pub pids_current: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
}

/// One container's cgroup, whatever the host layout.
pub trait Manager {
    /// Create the cgroup (all controllers) and move `pid` into it.
    fn apply(&self, pid: i32) -> Result<()>;
    /// Write the OCI resources (memory, cpu shares/quota/period, cpuset, pids).
    fn set(&self, resources: &LinuxResources) -> Result<()>;
    /// Freeze / thaw every process (pause/unpause).
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    /// Pids in the cgroup (for `top`, `kill --all`).
    fn pids(&self) -> Result<Vec<i32>>;
    fn stats(&self) -> Result<Stats>;
    /// Remove the cgroup directories; processes must be gone.
    fn destroy(&self) -> Result<()>;
    /// Paths of the container's cgroup, one per controller hierarchy, for the
    /// runtime's state file and for `exec` to join.
    fn paths(&self) -> Vec<PathBuf>;
}

/// Pick the manager for this host, rooted at `/sys/fs/cgroup`.
/// `cgroups_path` is the OCI `linux.cgroupsPath` (e.g. `/moorage/<id>`).
pub fn create_manager(cgroups_path: &str) -> Result<Box<dyn Manager>> {
    let _ = cgroups_path;
    Err(CgroupError::Other("not implemented yet".into()))
}
