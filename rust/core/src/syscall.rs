//! The privileged calls the container setup makes, behind a small trait so the
//! mount plan can be unit-tested without root: [`LinuxSyscall`] does the real
//! thing, [`RecordingSyscall`] records every call (and pretends which paths
//! exist). The fake is passed in explicitly; nothing switches on `cfg(test)`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

#[derive(Debug, thiserror::Error)]
#[error("{call} {path}: {source}")]
pub struct SyscallError {
    pub call: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl SyscallError {
    pub fn new(call: &'static str, path: &Path, errno: nix::Error) -> Self {
        SyscallError {
            call,
            path: path.to_owned(),
            source: std::io::Error::from_raw_os_error(errno as i32),
        }
    }
    pub fn io(call: &'static str, path: &Path, source: std::io::Error) -> Self {
        SyscallError {
            call,
            path: path.to_owned(),
            source,
        }
    }
    /// The errno of the failure, if it came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

pub type Result<T> = std::result::Result<T, SyscallError>;

/// What a path is, as far as the mount plan cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    Other,
}

/// A path resolved inside a root by [`Syscall::resolve_in_root`]. `path()`
/// is what to pass to the other calls: for the real kernel
/// `/proc/self/fd/N` of an O_PATH descriptor held here, so the kernel acts on
/// exactly the object the resolution checked and never looks the container
/// path up again (an image symlink swapped in meanwhile changes nothing).
#[derive(Debug)]
pub struct Resolved {
    path: PathBuf,
    _fd: Option<OwnedFd>,
}

impl Resolved {
    pub fn pinned(fd: OwnedFd) -> Self {
        Resolved {
            path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            _fd: Some(fd),
        }
    }
    /// A plain path (for fakes, which hold no descriptors).
    pub fn unpinned(path: PathBuf) -> Self {
        Resolved { path, _fd: None }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub trait Syscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()>;
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()>;
    fn chdir(&self, path: &Path) -> Result<()>;
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> Result<()>;
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<()>;
    fn symlink(&self, target: &Path, link: &Path) -> Result<()>;
    fn mkdir_all(&self, path: &Path) -> Result<()>;
    /// Create an empty regular file (a bind-mount target) if it is missing.
    fn touch(&self, path: &Path) -> Result<()>;
    /// `stat` (following symlinks); `None` if the path does not exist.
    fn kind(&self, path: &Path) -> Option<FileKind>;
    /// Resolve the container path `path` inside the host directory `root`,
    /// symlinks scoped to `root` (see [`crate::rootfs::resolve`]); with
    /// `create`, missing parents become directories and a missing last
    /// component becomes `create`.
    fn resolve_in_root(
        &self,
        root: &Path,
        path: &Path,
        create: Option<FileKind>,
    ) -> Result<Resolved>;
    fn sethostname(&self, name: &str) -> Result<()>;
    fn setdomainname(&self, name: &str) -> Result<()>;
}

/// The real kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        nix::mount::mount(source, target, fstype, flags, data)
            .map_err(|e| SyscallError::new("mount", target, e))
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()> {
        nix::mount::umount2(target, flags).map_err(|e| SyscallError::new("umount2", target, e))
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
            .map_err(|e| SyscallError::new("pivot_root", new_root, e))
    }
    fn chdir(&self, path: &Path) -> Result<()> {
        nix::unistd::chdir(path).map_err(|e| SyscallError::new("chdir", path, e))
    }
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> Result<()> {
        nix::sys::stat::mknod(path, kind, perm, dev)
            .map_err(|e| SyscallError::new("mknod", path, e))
    }
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        nix::unistd::chown(
            path,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        )
        .map_err(|e| SyscallError::new("chown", path, e))
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        match std::os::unix::fs::symlink(target, link) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            r => r.map_err(|e| SyscallError::io("symlink", link, e)),
        }
    }
    fn mkdir_all(&self, path: &Path) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(|e| SyscallError::io("mkdir", path, e))
    }
    fn touch(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent() {
            self.mkdir_all(parent)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
        {
            Ok(_) => Ok(()),
            // A read-only or special file is already a fine mount point.
            Err(_) if path.exists() => Ok(()),
            Err(e) => Err(SyscallError::io("create", path, e)),
        }
    }
    fn kind(&self, path: &Path) -> Option<FileKind> {
        std::fs::metadata(path).ok().map(|m| {
            if m.is_dir() {
                FileKind::Dir
            } else {
                FileKind::Other
            }
        })
    }
    fn resolve_in_root(
        &self,
        root: &Path,
        path: &Path,
        create: Option<FileKind>,
    ) -> Result<Resolved> {
        crate::rootfs::resolve::walk(&crate::rootfs::resolve::FdTree { root }, path, create)
            .map(Resolved::pinned)
            .map_err(|e| SyscallError::io("resolve in rootfs", path, e))
    }
    fn sethostname(&self, name: &str) -> Result<()> {
        nix::unistd::sethostname(name)
            .map_err(|e| SyscallError::new("sethostname", Path::new(name), e))
    }
    fn setdomainname(&self, name: &str) -> Result<()> {
        // SAFETY: pointer and length describe a live byte slice.
        let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
        if rc != 0 {
            return Err(SyscallError::io(
                "setdomainname",
                Path::new(name),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

/// One recorded call, in a form easy to assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount2 {
        target: PathBuf,
        flags: MntFlags,
    },
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    Chdir(PathBuf),
    Mknod {
        path: PathBuf,
        kind: SFlag,
        perm: Mode,
        dev: u64,
    },
    Chown {
        path: PathBuf,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    MkdirAll(PathBuf),
    Touch(PathBuf),
    Sethostname(String),
    Setdomainname(String),
}

/// A fake that records calls. `kinds` says which paths "exist", `links`
/// which are symlinks (and to what); calls listed in `fail` return EPERM (to
/// test fallbacks).
#[derive(Debug, Default)]
pub struct RecordingSyscall {
    pub calls: RefCell<Vec<Call>>,
    pub kinds: HashMap<PathBuf, FileKind>,
    pub links: HashMap<PathBuf, PathBuf>,
    /// What `resolve_in_root` created, so later calls find it.
    pub created: RefCell<HashMap<PathBuf, FileKind>>,
    pub fail: Vec<&'static str>,
}

impl RecordingSyscall {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_path(mut self, path: impl Into<PathBuf>, kind: FileKind) -> Self {
        self.kinds.insert(path.into(), kind);
        self
    }
    pub fn with_link(mut self, path: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        self.links.insert(path.into(), target.into());
        self
    }
    pub fn failing(mut self, call: &'static str) -> Self {
        self.fail.push(call);
        self
    }
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }
    fn record(&self, name: &'static str, path: &Path, call: Call) -> Result<()> {
        self.calls.borrow_mut().push(call);
        if self.fail.contains(&name) {
            return Err(SyscallError::new(name, path, nix::Error::EPERM));
        }
        Ok(())
    }
}

impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        let call = Call::Mount {
            source: source.map(Path::to_owned),
            target: target.to_owned(),
            fstype: fstype.map(str::to_owned),
            flags,
            data: data.map(str::to_owned),
        };
        self.record("mount", target, call)
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()> {
        self.record(
            "umount2",
            target,
            Call::Umount2 {
                target: target.to_owned(),
                flags,
            },
        )
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        let call = Call::PivotRoot {
            new_root: new_root.to_owned(),
            put_old: put_old.to_owned(),
        };
        self.record("pivot_root", new_root, call)
    }
    fn chdir(&self, path: &Path) -> Result<()> {
        self.record("chdir", path, Call::Chdir(path.to_owned()))
    }
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> Result<()> {
        self.record(
            "mknod",
            path,
            Call::Mknod {
                path: path.to_owned(),
                kind,
                perm,
                dev,
            },
        )?;
        // The node exists now for later lookups (chown goes through one).
        self.created
            .borrow_mut()
            .insert(path.to_owned(), FileKind::Other);
        Ok(())
    }
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        self.record(
            "chown",
            path,
            Call::Chown {
                path: path.to_owned(),
                uid,
                gid,
            },
        )
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        self.record(
            "symlink",
            link,
            Call::Symlink {
                target: target.to_owned(),
                link: link.to_owned(),
            },
        )
    }
    fn mkdir_all(&self, path: &Path) -> Result<()> {
        self.record("mkdir", path, Call::MkdirAll(path.to_owned()))
    }
    fn touch(&self, path: &Path) -> Result<()> {
        self.record("touch", path, Call::Touch(path.to_owned()))
    }
    fn kind(&self, path: &Path) -> Option<FileKind> {
        self.kinds.get(path).copied()
    }
    /// Resolves over `kinds`/`links` and records each component it creates
    /// as `MkdirAll`/`Touch` of the host path, so tests see where it landed.
    fn resolve_in_root(
        &self,
        root: &Path,
        path: &Path,
        create: Option<FileKind>,
    ) -> Result<Resolved> {
        let on_create = |p: &Path, kind: FileKind| {
            let call = match kind {
                FileKind::Dir => Call::MkdirAll(p.to_owned()),
                FileKind::Other => Call::Touch(p.to_owned()),
            };
            self.calls.borrow_mut().push(call);
        };
        let tree = crate::rootfs::resolve::MapTree {
            root,
            kinds: &self.kinds,
            links: &self.links,
            on_create: &on_create,
            created: &self.created,
        };
        crate::rootfs::resolve::walk(&tree, path, create)
            .map(Resolved::unpinned)
            .map_err(|e| SyscallError::io("resolve in rootfs", path, e))
    }
    fn sethostname(&self, name: &str) -> Result<()> {
        self.record(
            "sethostname",
            Path::new(name),
            Call::Sethostname(name.to_owned()),
        )
    }
    fn setdomainname(&self, name: &str) -> Result<()> {
        self.record(
            "setdomainname",
            Path::new(name),
            Call::Setdomainname(name.to_owned()),
        )
    }
}
