//! The container's filesystem view.
//!
//! The parent turns config.json into a [`RootfsPlan`] (pure data, computed
//! before clone so the child allocates little); the child executes it in three
//! phases through the [`Syscall`](crate::syscall::Syscall) trait:
//!
//! 1. [`apply::prepare`]: make `/` private (or `linux.rootfsPropagation`),
//!    bind the rootfs onto itself, do the config mounts in order, create
//!    device nodes and the /dev symlinks;
//! 2. [`apply::pivot`]: `pivot_root(".", ".")` and detach the old root;
//! 3. [`apply::finish`]: masked paths, read-only paths, read-only root.
//!
//! In phase 1 the rootfs is an ordinary host directory whose symlinks the
//! image controls, so every container path (mount destinations, device
//! nodes, /dev symlinks, /dev/console) is resolved with
//! [`Syscall::resolve_in_root`](crate::syscall::Syscall::resolve_in_root)
//! (see [`resolve`]): symlinks are scoped to the rootfs, missing components
//! are created inside it, and the kernel is handed a pinned O_PATH
//! descriptor rather than a path to look up again. Phase 3 runs after
//! pivot_root with the old root detached: `/` is the rootfs and `..` at `/`
//! stays there, so plain paths can no longer leave it.

pub mod apply;
pub mod devices;
pub mod options;
pub mod resolve;

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

use crate::syscall::SyscallError;
pub use devices::Device;
pub use options::MountOptions;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs: config has no root.path")]
    NoRoot,
    #[error("rootfs: {path} does not exist or is not a directory")]
    BadRoot { path: PathBuf },
    #[error("rootfs: unknown rootfsPropagation {0:?}")]
    Propagation(String),
    #[error("rootfs: mount destination {0:?} must be absolute")]
    RelativeDestination(PathBuf),
    #[error("rootfs: {step} {dest}: {source}")]
    At {
        step: &'static str,
        /// The container path being set up.
        dest: PathBuf,
        #[source]
        source: SyscallError,
    },
    #[error("rootfs: {step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: SyscallError,
    },
    #[error("rootfs: read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, RootfsError>;

/// Like [`sys`], naming the container path the step was for (the syscall's
/// own path may just be `/proc/self/fd/N`).
pub(crate) fn at<'a>(
    step: &'static str,
    dest: &'a Path,
) -> impl FnOnce(SyscallError) -> RootfsError + 'a {
    move |source| RootfsError::At {
        step,
        dest: dest.to_owned(),
        source,
    }
}

pub(crate) fn sys(step: &'static str) -> impl FnOnce(SyscallError) -> RootfsError {
    move |source| RootfsError::Sys { step, source }
}

/// What kind of mount a config entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A filesystem mount (proc, tmpfs, devpts, sysfs, mqueue, ...).
    Fs,
    /// A bind mount (`bind`/`rbind` option or type `bind`).
    Bind,
    /// `type: cgroup`: a tmpfs with one mount per host hierarchy inside.
    Cgroup(Vec<CgroupHierarchy>),
}

/// One cgroup hierarchy of the host, re-mounted in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHierarchy {
    /// Directory name under the cgroup mount (`cpu`, `memory`, `systemd`, `unified`).
    pub name: String,
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    /// Super options selecting the controllers (`cpu`, `name=systemd`), or empty.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOp {
    pub source: Option<PathBuf>,
    /// Absolute container path (config.json `destination`); resolved inside
    /// the rootfs only when mounting, see [`resolve`].
    pub destination: PathBuf,
    pub fstype: Option<String>,
    pub options: MountOptions,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsPlan {
    /// Absolute host path of the rootfs.
    pub rootfs: PathBuf,
    /// Propagation applied recursively to `/` first.
    pub propagation: MsFlags,
    pub mounts: Vec<MountOp>,
    /// Device nodes to create (defaults unless /dev is a bind mount, then linux.devices).
    pub devices: Vec<Device>,
    /// Whether to create the /dev symlinks (fd, stdin, stdout, stderr, ptmx).
    pub dev_symlinks: bool,
    /// Create /dev/console as a mount point for the terminal.
    pub console: bool,
    pub masked: Vec<PathBuf>,
    pub readonly: Vec<PathBuf>,
    pub readonly_root: bool,
}

impl RootfsPlan {
    /// Build the plan from the config. `bundle` resolves a relative root.path;
    /// `hierarchies` are the host cgroup hierarchies (see [`host_cgroup_hierarchies`]).
    pub fn from_spec(spec: &Spec, bundle: &Path, hierarchies: &[CgroupHierarchy]) -> Result<Self> {
        let root = spec.root().as_ref().ok_or(RootfsError::NoRoot)?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            bundle.join(root.path())
        };
        let linux = spec.linux().as_ref();
        let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            None | Some("") => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            Some(word) => options::propagation(word)
                .ok_or_else(|| RootfsError::Propagation(word.to_owned()))?,
        };

        let mut mounts = Vec::new();
        let mut dev_is_bind = false;
        for m in spec.mounts().iter().flatten() {
            let dest = m.destination();
            if !dest.is_absolute() {
                return Err(RootfsError::RelativeDestination(dest.clone()));
            }
            let mut opts = options::parse(m.options().as_deref().unwrap_or(&[]));
            let fstype = m.typ().clone().filter(|t| !t.is_empty());
            let kind = if fstype.as_deref() == Some("bind") || opts.is_bind() {
                // A bind mount of a type "bind" entry without rbind is still
                // recursive in runc only with rbind; keep the options' choice.
                opts.flags.insert(MsFlags::MS_BIND);
                MountKind::Bind
            } else if fstype.as_deref() == Some("cgroup") {
                MountKind::Cgroup(hierarchies.to_vec())
            } else {
                MountKind::Fs
            };
            if kind == MountKind::Bind && dest == Path::new("/dev") {
                dev_is_bind = true;
            }
            let source = m.source().clone().map(|s| {
                if kind == MountKind::Bind && s.is_relative() {
                    bundle.join(s)
                } else {
                    s
                }
            });
            mounts.push(MountOp {
                source,
                destination: dest.clone(),
                fstype: if kind == MountKind::Bind {
                    None
                } else {
                    fstype
                },
                options: opts,
                kind,
            });
        }

        let mut devices = if dev_is_bind {
            Vec::new()
        } else {
            devices::defaults()
        };
        for d in linux
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
        {
            let dev = Device::from_oci(d);
            devices.retain(|x| x.path != dev.path);
            devices.push(dev);
        }

        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        Ok(RootfsPlan {
            rootfs,
            propagation,
            mounts,
            devices,
            dev_symlinks: !dev_is_bind,
            console: terminal && !dev_is_bind,
            masked: linux
                .and_then(|l| l.masked_paths().clone())
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            readonly: linux
                .and_then(|l| l.readonly_paths().clone())
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            readonly_root: root.readonly().unwrap_or(false),
        })
    }
}

/// The host's cgroup hierarchies under /sys/fs/cgroup, from /proc/self/mountinfo.
pub fn host_cgroup_hierarchies() -> Result<Vec<CgroupHierarchy>> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|source| RootfsError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_cgroup_mountinfo(&text))
}

pub fn parse_cgroup_mountinfo(text: &str) -> Vec<CgroupHierarchy> {
    let mut out = Vec::new();
    for line in text.lines() {
        // "<id> <parent> <maj:min> <root> <mountpoint> <opts> [optional...] - <fstype> <source> <superopts>"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mountpoint = left.split(' ').nth(4).unwrap_or("");
        let mut r = right.split(' ');
        let (fstype, _src, superopts) = (r.next().unwrap_or(""), r.next(), r.next().unwrap_or(""));
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let Some(name) = mountpoint.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        if name.is_empty()
            || name.contains('/')
            || out.iter().any(|h: &CgroupHierarchy| h.name == name)
        {
            continue;
        }
        let data = if fstype == "cgroup" {
            superopts
                .split(',')
                .filter(|o| *o != "rw" && *o != "ro")
                .collect::<Vec<_>>()
                .join(",")
        } else {
            String::new()
        };
        out.push(CgroupHierarchy {
            name: name.to_owned(),
            fstype: fstype.to_owned(),
            data,
        });
    }
    out
}

#[cfg(test)]
mod tests;
