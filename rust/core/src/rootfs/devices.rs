//! Device nodes in the container's /dev.

use std::path::PathBuf;

use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Container path, e.g. `/dev/null`.
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Device {
    fn chr(name: &str, major: u64, minor: u64) -> Self {
        Device {
            path: PathBuf::from("/dev").join(name),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: None,
            gid: None,
        }
    }

    pub fn from_oci(d: &LinuxDevice) -> Self {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            // c, u and a (the latter only meaningful for cgroup rules).
            _ => SFlag::S_IFCHR,
        };
        Device {
            path: d.path().clone(),
            kind,
            major: d.major().max(0) as u64,
            minor: d.minor().max(0) as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid(),
            gid: d.gid(),
        }
    }

    pub fn dev(&self) -> u64 {
        nix::sys::stat::makedev(self.major, self.minor)
    }
}

/// The devices every container gets (runc's list, without /dev/console,
/// which is a bind mount of the pty when there is a terminal).
pub fn defaults() -> Vec<Device> {
    vec![
        Device::chr("null", 1, 3),
        Device::chr("zero", 1, 5),
        Device::chr("full", 1, 7),
        Device::chr("random", 1, 8),
        Device::chr("urandom", 1, 9),
        Device::chr("tty", 5, 0),
    ]
}

/// Symlinks created in /dev: (link, target).
pub const SYMLINKS: &[(&str, &str)] = &[
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
];
