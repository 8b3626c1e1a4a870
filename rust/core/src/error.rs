//! Crate-wide error: each module has its own `thiserror` enum; this one
//! gathers them so the binary and the PyO3 layer map one type.

use crate::capabilities::CapabilityError;
use crate::cgroups::CgroupError;
use crate::container::ContainerError;
use crate::init::InitError;
use crate::namespaces::NamespaceError;
use crate::process::ProcessError;
use crate::rootfs::RootfsError;
use crate::seccomp::SeccompError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Init(#[from] InitError),
}

impl Error {
    /// The exit code a runtime verb should end with for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Container(e) => e.exit_code(),
            Error::Process(e) => e.exit_code(),
            _ => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
