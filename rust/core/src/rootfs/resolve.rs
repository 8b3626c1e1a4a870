//! Resolving container paths inside the rootfs before pivot_root.
//!
//! Before pivot_root the rootfs is just a host directory, and the image
//! controls every symlink in it. Joining a mount destination onto the rootfs
//! as text and handing it to mount(2)/mkdir/mknod lets the kernel follow an
//! image symlink such as `mnt -> /` or `etc -> ../../../../tmp` out of the
//! rootfs, so a bind mount or a new directory would land on the host.
//!
//! [`walk`] therefore resolves one component at a time, never letting the
//! kernel follow a symlink: each component is opened with `O_NOFOLLOW`, a
//! symlink's text is spliced into the remaining path, an absolute target
//! restarts at the rootfs and `..` pops a stack of already-resolved
//! directories that never shrinks below the rootfs. This is the scoping
//! `openat2(RESOLVE_IN_ROOT)` gives (and runc's securejoin/pathrs-lite
//! emulates), done by hand so that missing components can be created where
//! the walk stands, inside the rootfs, including under dangling symlinks.
//! Magic links cannot be used to escape either: a link is only ever read as
//! text and resolved against the rootfs.
//!
//! The walk is generic over a [`Tree`]: [`FdTree`] is the real filesystem
//! (O_PATH descriptors, so every step is pinned and the result can be handed
//! to mount(2) as `/proc/self/fd/N` with no second lookup), [`MapTree`] is the
//! in-memory view the recording fake uses, so mount plans over hostile
//! symlinks are unit-tested without root.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use crate::syscall::FileKind;

/// Linux's own limit on symlinks followed in one lookup (MAXSYMLINKS).
pub const MAX_SYMLINKS: usize = 40;

/// What one component of a directory turned out to be (not following it).
#[derive(Debug)]
pub enum Entry<H> {
    Dir(H),
    Other(H),
    Symlink(PathBuf),
    Missing,
}

/// A directory tree the walk can look into and create in.
pub trait Tree {
    type Handle;
    fn open_root(&self) -> io::Result<Self::Handle>;
    /// Look `name` (one component, never `.`/`..`) up in `dir` without
    /// following it if it is a symlink.
    fn lookup(&self, dir: &Self::Handle, name: &OsStr) -> io::Result<Entry<Self::Handle>>;
    /// Create `name` in `dir`; an entry that already exists is not an error
    /// (the walk looks it up again).
    fn create(&self, dir: &Self::Handle, name: &OsStr, kind: FileKind) -> io::Result<()>;
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// The components of a container path that the walk acts on (`/` and `.`
/// mean nothing when every lookup starts at the rootfs).
fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(s) => Some(s.to_owned()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// Resolve `path` inside the tree's root. With `create`, missing
/// intermediate components become directories and a missing last component
/// becomes `create` (an empty file for [`FileKind::Other`]). Errors: ENOENT
/// (missing, nothing to create), ENOTDIR (a non-directory in the middle),
/// ELOOP (more than [`MAX_SYMLINKS`] symlinks, or creations that keep
/// vanishing).
pub fn walk<T: Tree>(tree: &T, path: &Path, create: Option<FileKind>) -> io::Result<T::Handle> {
    // stack[0] is the root; popping never goes below it, which is what keeps
    // `..` (from the path or a symlink) inside.
    let mut stack = vec![tree.open_root()?];
    let mut pending: VecDeque<OsString> = components(path).collect();
    // Symlinks followed plus creations retried: both are bounded so that a
    // loop, or a concurrent process deleting what we create, ends in ELOOP.
    let mut budget = MAX_SYMLINKS;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let last = pending.is_empty();
        let dir = stack.last().ok_or_else(|| errno(libc::EINVAL))?;
        match tree.lookup(dir, &name)? {
            Entry::Dir(h) => stack.push(h),
            Entry::Other(h) if last => stack.push(h),
            Entry::Other(_) => return Err(errno(libc::ENOTDIR)),
            Entry::Symlink(target) => {
                budget = budget.checked_sub(1).ok_or_else(|| errno(libc::ELOOP))?;
                if target.is_absolute() {
                    stack.truncate(1);
                }
                for c in components(&target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(c);
                }
            }
            Entry::Missing => {
                let Some(kind) = create else {
                    return Err(errno(libc::ENOENT));
                };
                budget = budget.checked_sub(1).ok_or_else(|| errno(libc::ELOOP))?;
                tree.create(dir, &name, if last { kind } else { FileKind::Dir })?;
                // Look the new entry up like any other: if something raced us
                // and put a symlink there, it is followed inside the root.
                pending.push_front(name);
            }
        }
    }
    stack.pop().ok_or_else(|| errno(libc::EINVAL))
}

/// The real filesystem under `root`, walked with O_PATH descriptors.
#[derive(Debug)]
pub struct FdTree<'a> {
    pub root: &'a Path,
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| errno(libc::EINVAL))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn open_path(dir: libc::c_int, name: &CString, extra: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: name is NUL-terminated; the result is a fresh descriptor we own.
    let fd =
        check(unsafe { libc::openat(dir, name.as_ptr(), libc::O_PATH | libc::O_CLOEXEC | extra) })?;
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Tree for FdTree<'_> {
    type Handle = OwnedFd;

    fn open_root(&self) -> io::Result<OwnedFd> {
        // The rootfs path itself comes from the bundle, not the image: trusted.
        let path = cstr(self.root.as_os_str())?;
        open_path(libc::AT_FDCWD, &path, libc::O_DIRECTORY)
    }

    fn lookup(&self, dir: &OwnedFd, name: &OsStr) -> io::Result<Entry<OwnedFd>> {
        let c = cstr(name)?;
        let fd = match open_path(dir.as_raw_fd(), &c, libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Entry::Missing),
            Err(e) => return Err(e),
        };
        // SAFETY: all-zero is a valid stat; fstat fills it from a live fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fd is open and st is a valid out-pointer.
        check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
        Ok(match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Entry::Dir(fd),
            libc::S_IFLNK => Entry::Symlink(readlink_fd(&fd)?),
            _ => Entry::Other(fd),
        })
    }

    fn create(&self, dir: &OwnedFd, name: &OsStr, kind: FileKind) -> io::Result<()> {
        let c = cstr(name)?;
        let rc = match kind {
            // SAFETY: c is NUL-terminated; dir is an open directory fd.
            FileKind::Dir => unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) },
            FileKind::Other => {
                // O_EXCL|O_NOFOLLOW: never open (or create through) whatever
                // appeared there meanwhile; the walk looks at it again.
                let flags = libc::O_CREAT
                    | libc::O_EXCL
                    | libc::O_NOFOLLOW
                    | libc::O_WRONLY
                    | libc::O_CLOEXEC;
                // SAFETY: as above; the mode argument is required with O_CREAT.
                let fd = unsafe {
                    libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, 0o644 as libc::c_uint)
                };
                if fd >= 0 {
                    // SAFETY: fresh descriptor, closed here.
                    drop(unsafe { OwnedFd::from_raw_fd(fd) });
                }
                fd
            }
        };
        match check(rc) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// readlinkat(fd, "") on an O_PATH descriptor of the symlink itself.
fn readlink_fd(fd: &OwnedFd) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: the empty C string and buf are valid for the given lengths.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    buf.truncate(n);
    Ok(PathBuf::from(OsString::from_vec(buf)))
}

/// An in-memory tree of host paths: `kinds` says what exists (anything not
/// listed is missing), `links` holds symlinks and their text. Creations are
/// remembered in `created` and reported to `on_create`.
pub struct MapTree<'a> {
    pub root: &'a Path,
    pub kinds: &'a HashMap<PathBuf, FileKind>,
    pub links: &'a HashMap<PathBuf, PathBuf>,
    pub on_create: &'a dyn Fn(&Path, FileKind),
    pub created: &'a RefCell<HashMap<PathBuf, FileKind>>,
}

impl Tree for MapTree<'_> {
    type Handle = PathBuf;

    fn open_root(&self) -> io::Result<PathBuf> {
        Ok(self.root.to_path_buf())
    }

    fn lookup(&self, dir: &PathBuf, name: &OsStr) -> io::Result<Entry<PathBuf>> {
        let p = dir.join(name);
        if let Some(t) = self.links.get(&p) {
            return Ok(Entry::Symlink(t.clone()));
        }
        let kind = self
            .kinds
            .get(&p)
            .copied()
            .or_else(|| self.created.borrow().get(&p).copied());
        Ok(match kind {
            Some(FileKind::Dir) => Entry::Dir(p),
            Some(FileKind::Other) => Entry::Other(p),
            None => Entry::Missing,
        })
    }

    fn create(&self, dir: &PathBuf, name: &OsStr, kind: FileKind) -> io::Result<()> {
        let p = dir.join(name);
        (self.on_create)(&p, kind);
        self.created.borrow_mut().insert(p, kind);
        Ok(())
    }
}
