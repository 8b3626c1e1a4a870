//! cgroup managers: v1 (one hierarchy per controller), v2 (unified), and the
//! hybrid layout of this VM (v1 controllers plus a cgroup2 mount that holds
//! only hugetlb) — detected per controller, not per host.
//!
//! Interface used by the runtime (`container.rs`, `exec.rs`) and the monitor.
//!
//! `create_manager` reads the mount table and returns, per the controllers
//! moorage manages (see `layout::MANAGED`):
//! - the [`Disabled`] manager when `cgroups_path` is empty (no cgroupsPath);
//! - a [`v1::Manager`] when every managed controller is on a v1 hierarchy
//!   (this VM: the cgroup2 mount holds only hugetlb, which is not managed);
//! - a [`v2::Manager`] on a pure unified host;
//! - a [`Hybrid`] of both when some managed controllers are only on cgroup2.
//!
//! Not handled: systemd-style paths (`slice:prefix:name`), hugetlb, blkio/io
//! limits (v2's io is joined for its byte counters only; v1 blkio not at
//! all), rdma, network classes; v2 device rules (see `v2`).

mod common;
mod disabled;
mod hybrid;
pub mod layout;
pub mod v1;
pub mod v2;

pub use disabled::Disabled;
pub use hybrid::Hybrid;
pub use layout::Layout;

use std::path::{Path, PathBuf};

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
    #[error("cgroup write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup {path}: cannot parse {value:?}")]
    Parse { path: PathBuf, value: String },
    #[error("cgroup {path}: timed out waiting for {what}")]
    Timeout { what: &'static str, path: PathBuf },
    #[error("invalid cgroupsPath {0:?} (must name a cgroup below the root, without ..)")]
    InvalidPath(String),
    #[error("cgroup: unsupported: {0}")]
    Unsupported(String),
    #[error("cgroup: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// Live statistics read back from the cgroup (for `inspect`, `stats`, OOM detection).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub memory_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    /// Page cache the kernel can drop at once (Docker shows usage minus this).
    #[serde(default)]
    pub memory_inactive_file: Option<u64>,
    pub oom_kills: u64,
    pub pids_current: Option<u64>,
    #[serde(default)]
    pub pids_limit: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
    /// Bytes read from and written to block devices (v2 io.stat; None on v1).
    #[serde(default)]
    pub io_read_bytes: Option<u64>,
    #[serde(default)]
    pub io_write_bytes: Option<u64>,
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
/// An empty `cgroups_path` gives the [`Disabled`] manager.
pub fn create_manager(cgroups_path: &str) -> Result<Box<dyn Manager>> {
    if cgroups_path.is_empty() {
        return Ok(Box::new(Disabled));
    }
    manager_for_layout(&Layout::detect()?, cgroups_path)
}

/// Like [`create_manager`] but detects the layout from the directory tree
/// at `root` instead of the mount table (see [`Layout::detect_at`]), so a
/// temp dir laid out like cgroupfs can stand in for `/sys/fs/cgroup`.
pub fn create_manager_at(root: &Path, cgroups_path: &str) -> Result<Box<dyn Manager>> {
    if cgroups_path.is_empty() {
        return Ok(Box::new(Disabled));
    }
    manager_for_layout(&Layout::detect_at(root)?, cgroups_path)
}

/// Pick the manager for a detected layout (see the module doc).
pub fn manager_for_layout(layout: &Layout, cgroups_path: &str) -> Result<Box<dyn Manager>> {
    let v2_only = layout.v2_controllers();
    match (&layout.unified, layout.v1.is_empty()) {
        (None, true) => Err(CgroupError::Unsupported(
            "no cgroup hierarchy is mounted".into(),
        )),
        (Some(root), true) => Ok(Box::new(v2::Manager::with_controllers(
            root,
            cgroups_path,
            v2_only,
        )?)),
        (Some(root), false) if !v2_only.is_empty() => Ok(Box::new(Hybrid::new(
            v1::Manager::new(&layout.v1, cgroups_path)?,
            v2::Manager::with_controllers(root, cgroups_path, v2_only)?,
            layout.v1.contains_key("freezer"),
        ))),
        _ => Ok(Box::new(v1::Manager::new(&layout.v1, cgroups_path)?)),
    }
}
