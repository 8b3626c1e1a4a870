//! Which namespaces a container gets: new ones become clone flags, ones with
//! a `path` are joined with setns.
//!
//! Order matters: the runtime (a single-threaded process, never Python) joins
//! the path namespaces *itself* before clone, except the mount namespace,
//! which the child joins (joining it here would change the paths the runtime
//! still has to write). A joined pid namespace only applies to children, which
//! is exactly what clone gives us. The cgroup namespace is never in the clone
//! flags: the child unshares it only after the parent has moved it into its
//! cgroup, so the container sees its own cgroup as `/`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("namespace {0}: not supported by moorage-runtime yet")]
    Unsupported(&'static str),
    #[error("namespace {kind}: open {path}: {source}")]
    Open {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("namespace {kind}: setns {path}: {source}")]
    Setns {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("namespace cgroup: unshare: {0}")]
    Unshare(#[source] nix::Error),
}

pub type Result<T> = std::result::Result<T, NamespaceError>;

pub fn name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // No CloneFlags constant in nix 0.29; the value is CLONE_NEWTIME.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(0x80),
    }
}

/// An opened namespace file, to be joined.
#[derive(Debug)]
pub struct Join {
    pub kind: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

impl Join {
    pub fn open(kind: LinuxNamespaceType, path: &Path) -> Result<Self> {
        let fd =
            open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|source| {
                NamespaceError::Open {
                    kind: name(kind),
                    path: path.to_owned(),
                    source,
                }
            })?;
        // SAFETY: `open` returned a fresh descriptor we now own.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Join {
            kind,
            path: path.to_owned(),
            fd,
        })
    }

    pub fn setns(&self) -> Result<()> {
        nix::sched::setns(self.fd.as_fd(), flag(self.kind)).map_err(|source| {
            NamespaceError::Setns {
                kind: name(self.kind),
                path: self.path.clone(),
                source,
            }
        })
    }
}

/// The namespace part of a container's creation.
#[derive(Debug)]
pub struct NamespacePlan {
    /// New namespaces created by clone (cgroup excluded, see module doc).
    pub clone_flags: CloneFlags,
    /// Unshare a new cgroup namespace once in the cgroup.
    pub new_cgroup: bool,
    /// Namespaces the runtime joins before clone.
    pub join_before_clone: Vec<Join>,
    /// The mount namespace the child joins (instead of a new one).
    pub join_mount: Option<Join>,
    /// Whether the container has its own UTS namespace (hostname allowed).
    pub new_uts: bool,
}

impl NamespacePlan {
    pub fn from_config(namespaces: &[LinuxNamespace]) -> Result<Self> {
        let mut plan = NamespacePlan {
            clone_flags: CloneFlags::empty(),
            new_cgroup: false,
            join_before_clone: Vec::new(),
            join_mount: None,
            new_uts: false,
        };
        for ns in namespaces {
            let kind = ns.typ();
            match kind {
                // Rootless is a later goal; refuse rather than half-do it.
                LinuxNamespaceType::User | LinuxNamespaceType::Time => {
                    return Err(NamespaceError::Unsupported(name(kind)))
                }
                _ => {}
            }
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    let join = Join::open(kind, path)?;
                    if kind == LinuxNamespaceType::Mount {
                        plan.join_mount = Some(join);
                    } else {
                        plan.join_before_clone.push(join);
                    }
                }
                _ => match kind {
                    LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                    _ => {
                        plan.clone_flags |= flag(kind);
                        if kind == LinuxNamespaceType::Uts {
                            plan.new_uts = true;
                        }
                    }
                },
            }
        }
        Ok(plan)
    }
}

/// Unshare the cgroup namespace (child side, after the cgroup move).
pub fn unshare_cgroup() -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(NamespaceError::Unshare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_namespaces_become_flags_and_cgroup_is_deferred() {
        let ns: Vec<LinuxNamespace> = serde_json::from_str(
            r#"[{"type":"pid"},{"type":"mount"},{"type":"uts"},{"type":"ipc"},{"type":"network"},{"type":"cgroup"}]"#,
        )
        .unwrap();
        let plan = NamespacePlan::from_config(&ns).unwrap();
        assert_eq!(
            plan.clone_flags,
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWNET
        );
        assert!(plan.new_cgroup && plan.new_uts);
    }

    #[test]
    fn paths_are_joined_and_user_is_refused() {
        let ns: Vec<LinuxNamespace> =
            serde_json::from_str(r#"[{"type":"network","path":"/proc/self/ns/net"},{"type":"mount","path":"/proc/self/ns/mnt"}]"#)
                .unwrap();
        let plan = NamespacePlan::from_config(&ns).unwrap();
        assert!(plan.clone_flags.is_empty());
        assert_eq!(plan.join_before_clone.len(), 1);
        assert!(plan.join_mount.is_some());

        let ns: Vec<LinuxNamespace> = serde_json::from_str(r#"[{"type":"user"}]"#).unwrap();
        assert!(matches!(
            NamespacePlan::from_config(&ns),
            Err(NamespaceError::Unsupported("user"))
        ));
        let ns: Vec<LinuxNamespace> =
            serde_json::from_str(r#"[{"type":"pid","path":"/nonexistent/ns"}]"#).unwrap();
        assert!(matches!(
            NamespacePlan::from_config(&ns),
            Err(NamespaceError::Open { .. })
        ));
    }
}
