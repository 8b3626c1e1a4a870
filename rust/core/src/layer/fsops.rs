//! Thin, allocation-free wrappers over the `*at` system calls that layer work
//! needs. Everything is relative to a directory fd so that no path string
//! is ever resolved from `/` with symlinks followed.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn path_cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Opens a caller-given directory (symlinks in the caller's own path are the
/// caller's business, so they are followed).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = path_cstring(path)?;
    let fd = cvt(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// openat2 with RESOLVE_IN_ROOT: the path is resolved as if `root` were `/`
/// (absolute symlinks and `..` are clamped to `root`), which is what Docker
/// gets by applying layers inside a chroot, without forking. Magic links
/// (`/proc/self/...`) are refused outright.
pub(crate) fn open_in_root(root: RawFd, rel: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root,
                rel.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if ret >= 0 {
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
        }
        let err = io::Error::last_os_error();
        // EAGAIN: a concurrent rename somewhere on the system made the kernel
        // give up on a safe lookup; retrying is the documented answer.
        if err.raw_os_error() != Some(libc::EAGAIN) && err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Opens `rel` (a clean relative path, NUL-terminated) as an O_PATH directory
/// under `root`, creating missing components with mode 0755 (tars need not
/// list every parent directory).
pub(crate) fn open_or_create_dir_in_root(root: RawFd, rel: &[u8]) -> io::Result<OwnedFd> {
    let dir_flags = libc::O_PATH | libc::O_DIRECTORY;
    let full = CStr::from_bytes_with_nul(rel)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    match open_in_root(root, full, dir_flags) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        other => return other,
    }
    // Slow path, only for missing parents: walk the prefixes, each resolved in
    // root again so a symlink among them stays clamped inside.
    let path = &rel[..rel.len() - 1];
    let mut prefix: Vec<u8> = Vec::with_capacity(rel.len());
    let mut current: Option<OwnedFd> = None;
    for comp in path.split(|b| *b == b'/') {
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(comp);
        let mut c_prefix = prefix.clone();
        c_prefix.push(0);
        let c_prefix = CStr::from_bytes_with_nul(&c_prefix)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        let opened = match open_in_root(root, c_prefix, dir_flags) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let parent = current.as_ref().map_or(root, |fd| fd.as_raw_fd());
                let mut c_comp = comp.to_vec();
                c_comp.push(0);
                let c_comp = CStr::from_bytes_with_nul(&c_comp)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
                match cvt(unsafe { libc::mkdirat(parent, c_comp.as_ptr(), 0o755) }) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                open_in_root(root, c_prefix, dir_flags)?
            }
            Err(e) => return Err(e),
        };
        current = Some(opened);
    }
    current.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))
}

/// lstat of `name` in `dir`.
pub(crate) fn lstat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

pub(crate) fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Removes `name` in `dir`, recursively if it is a directory, never
/// following symlinks. A missing `name` is not an error.
pub(crate) fn remove_all_at(dir: RawFd, name: &CStr) -> io::Result<()> {
    let st = match lstat_at(dir, name) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if !is_dir(&st) {
        return cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), 0) }).map(drop);
    }
    let fd = cvt(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    let child = unsafe { OwnedFd::from_raw_fd(fd) };
    remove_children(child.as_raw_fd(), |_| false)?;
    cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
}

/// Removes every child of the directory `dir` for which `keep` is false.
pub(crate) fn remove_children(dir: RawFd, keep: impl Fn(&[u8]) -> bool) -> io::Result<()> {
    // Names are collected first: deleting while reading a directory stream
    // may skip entries on some filesystems.
    let names = list_dir(dir)?;
    for name in names {
        if keep(name.as_bytes()) {
            continue;
        }
        remove_all_at(dir, &name)?;
    }
    Ok(())
}

/// The names in directory `dir` (without `.` and `..`).
pub(crate) fn list_dir(dir: RawFd) -> io::Result<Vec<CString>> {
    // Reopen through the fd so the stream has its own offset and our fd stays
    // usable; "." relative to an fd never involves a symlink.
    let fd = cvt(unsafe {
        libc::openat(
            dir,
            c".".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    let stream = unsafe { libc::fdopendir(fd) };
    if stream.is_null() {
        let err = io::Error::last_os_error();
        unsafe { libc::close(fd) };
        return Err(err);
    }
    let mut names = Vec::new();
    let result = loop {
        // readdir signals errors only through errno.
        unsafe { *libc::__errno_location() = 0 };
        let ent = unsafe { libc::readdir64(stream) };
        if ent.is_null() {
            let errno = unsafe { *libc::__errno_location() };
            break if errno == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(errno))
            };
        }
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        names.push(name.to_owned());
    };
    unsafe { libc::closedir(stream) };
    result.map(|()| names)
}

/// `/proc/self/fd/<dir>/<name>`: lets the path-based l*xattr calls act on an
/// entry we only hold a directory fd for, without resolving the layer path
/// from `/` (the fd magic link is ours; `name` is not followed by l*xattr).
fn proc_fd_path(dir: RawFd, name: &CStr) -> io::Result<CString> {
    let mut p = format!("/proc/self/fd/{dir}/").into_bytes();
    p.extend_from_slice(name.to_bytes());
    CString::new(p).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

pub(crate) fn lsetxattr_at(dir: RawFd, name: &CStr, key: &CStr, value: &[u8]) -> io::Result<()> {
    if name.to_bytes().is_empty() {
        // The directory itself: follow our own fd's magic link (setxattr,
        // not lsetxattr, which would act on the link and fail).
        let p = CString::new(format!("/proc/self/fd/{dir}"))
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL"))?;
        return cvt(unsafe {
            libc::setxattr(
                p.as_ptr(),
                key.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        })
        .map(drop);
    }
    let p = proc_fd_path(dir, name)?;
    cvt(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

/// All xattrs of `path` (not following a final symlink), as (name, value).
pub(crate) fn llist_xattrs(path: &CStr) -> io::Result<Vec<(CString, Vec<u8>)>> {
    let mut names = vec![0u8; 1024];
    let len = loop {
        let n = unsafe { libc::llistxattr(path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => names.resize(names.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(err),
        }
    };
    let mut out = Vec::new();
    for key in names[..len].split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let key = CString::new(key)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad xattr name"))?;
        let value = lgetxattr(path, &key)?;
        if let Some(value) = value {
            out.push((key, value));
        }
    }
    Ok(out)
}

/// One xattr of `path`, `None` if it is not set.
pub(crate) fn lgetxattr(path: &CStr, key: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut value = vec![0u8; 256];
    loop {
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                key.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if n >= 0 {
            value.truncate(n as usize);
            return Ok(Some(value));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => value.resize(value.len() * 4, 0),
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// The process umask, read without changing it (umask(2) can only be read by
/// setting it, which would race with other threads creating files).
pub(crate) fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        // Unknown umask: assume the strictest, which only costs extra chmods.
        .unwrap_or(0o777)
}
