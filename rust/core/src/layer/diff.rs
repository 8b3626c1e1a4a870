//! The tar diff of an overlayfs upper directory.
//!
//! Reproducible: directory children are sorted bytewise, only mode, owner,
//! size and mtime (seconds) go into the headers (no atime/ctime), and xattrs
//! are PAX `SCHILY.xattr.*` records. overlayfs' own bookkeeping is translated
//! back into Docker's whiteouts: a 0/0 character device becomes `.wh.NAME`,
//! `trusted.overlay.opaque=y` becomes `DIR/.wh..wh..opq` right after `DIR/`.
//!
//! Only an overlay upper is handled; comparing two vfs trees is not done yet.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use tar::{EntryType, Header};

use crate::digest::HashingWriter;

use super::fsops::{self, cvt};
use super::{LayerError, Result, OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};

/// What `diff_layer` wrote.
#[derive(Debug, Clone)]
pub struct DiffReport {
    /// sha256 of the tar written (it is uncompressed, so also its digest).
    pub diff_id: String,
    /// Bytes written.
    pub size: u64,
}

/// Writes the tar diff of the overlay upper dir `upper` to `output`
/// (created or truncated).
///
/// `exclude` names paths relative to `upper` (a leading `/` or `./` is
/// ignored) that are left out when they are regular files: the empty
/// bind-mount targets the runtime creates, which Docker keeps in an "-init"
/// layer. A whiteout or directory at such a path is still written.
pub fn diff_layer(upper: &Path, output: &Path, exclude: &[PathBuf]) -> Result<DiffReport> {
    let root = fsops::open_dir(upper).map_err(|source| LayerError::Io {
        step: "open upper directory",
        path: upper.to_path_buf(),
        source,
    })?;
    let out_err = |step| {
        let path = output.to_path_buf();
        move |source| LayerError::Io { step, path, source }
    };
    let file = File::create(output).map_err(out_err("create"))?;
    let writer = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut differ = Differ {
        upper: upper.to_path_buf(),
        builder: tar::Builder::new(writer),
        links: HashMap::new(),
        exclude: exclude.iter().map(|p| normalize(p)).collect(),
    };
    let mut rel = PathBuf::new();
    differ.walk(root.as_raw_fd(), &mut rel)?;
    let writer = differ.builder.into_inner().map_err(out_err("write"))?;
    let (buffered, diff_id, size) = writer.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| out_err("write")(e.into_error()))?;
    // The caller stores this as a blob: it must be on disk before it is named.
    file.sync_all().map_err(out_err("fsync"))?;
    Ok(DiffReport { diff_id, size })
}

struct Differ {
    upper: PathBuf,
    builder: tar::Builder<HashingWriter<BufWriter<File>>>,
    /// First path seen for each multiply-linked inode.
    links: HashMap<(u64, u64), PathBuf>,
    /// Regular files left out, relative to the upper root.
    exclude: HashSet<PathBuf>,
}

/// `p` with its root, `.` and empty components dropped, the form the walk
/// builds its relative paths in.
fn normalize(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect()
}

fn xattr_exported(name: &[u8]) -> bool {
    // overlay's bookkeeping is translated or meaningless elsewhere; SELinux
    // labels belong to the host that wrote them.
    !name.starts_with(b"trusted.overlay.") && name != b"security.selinux"
}

impl Differ {
    fn fail(&self, rel: &Path, step: &'static str) -> impl FnOnce(io::Error) -> LayerError {
        let path = self.upper.join(rel);
        move |source| LayerError::Io { step, path, source }
    }

    fn walk(&mut self, dir: RawFd, rel: &mut PathBuf) -> Result<()> {
        let mut names = fsops::list_dir(dir).map_err(self.fail(rel, "list"))?;
        names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            rel.push(std::ffi::OsStr::from_bytes(name.as_bytes()));
            let result = self.entry(dir, &name, rel);
            rel.pop();
            result?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: RawFd, name: &CStr, rel: &Path) -> Result<()> {
        let st = fsops::lstat_at(dir, name).map_err(self.fail(rel, "lstat"))?;
        let fmt = st.st_mode & libc::S_IFMT;
        if fmt == libc::S_IFREG && !self.exclude.is_empty() && self.exclude.contains(rel) {
            return Ok(());
        }
        let mut header = Header::new_gnu();
        header.set_mode(st.st_mode & 0o7777);
        header.set_uid(u64::from(st.st_uid));
        header.set_gid(u64::from(st.st_gid));
        header.set_mtime(st.st_mtime.max(0) as u64);
        header.set_size(0);

        if fmt == libc::S_IFCHR && st.st_rdev == 0 {
            // An overlay whiteout.
            let mut wh = rel.as_os_str().as_bytes().to_vec();
            let at = wh.len() - name.to_bytes().len();
            wh.splice(at..at, WHITEOUT_PREFIX.bytes());
            header.set_entry_type(EntryType::Regular);
            header.set_mode(st.st_mode & 0o777);
            let wh_path = PathBuf::from(std::ffi::OsStr::from_bytes(&wh));
            return self
                .builder
                .append_data(&mut header, &wh_path, io::empty())
                .map_err(self.fail(rel, "write whiteout for"));
        }

        let proc_path = CString::new(format!("/proc/self/fd/{dir}/"))
            .map_err(|e| self.fail(rel, "path")(e.into()))?;
        let mut full = proc_path.into_bytes();
        full.extend_from_slice(name.to_bytes());
        let full = CString::new(full).map_err(|e| self.fail(rel, "path")(e.into()))?;
        let xattrs = fsops::llist_xattrs(&full).map_err(self.fail(rel, "list xattrs of"))?;
        let mut opaque = false;
        for (key, value) in &xattrs {
            let key = key.as_bytes();
            if key == OVERLAY_OPAQUE_XATTR.as_bytes() {
                opaque = value == b"y";
            } else if key == b"trusted.overlay.redirect" || key == b"trusted.overlay.metacopy" {
                // moorage mounts with redirect_dir=off and no metacopy; an
                // upper made otherwise needs a full tree comparison.
                return Err(LayerError::Unrepresentable {
                    path: self.upper.join(rel),
                    reason: format!(
                        "has {} (redirect_dir/metacopy upper dirs are not supported)",
                        String::from_utf8_lossy(key)
                    ),
                });
            }
        }
        let pax: Vec<(String, &[u8])> = xattrs
            .iter()
            .filter(|(k, _)| xattr_exported(k.as_bytes()))
            .map(|(k, v)| {
                (
                    format!("SCHILY.xattr.{}", k.to_string_lossy()),
                    v.as_slice(),
                )
            })
            .collect();
        if !pax.is_empty() {
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
                .map_err(self.fail(rel, "write xattrs of"))?;
        }

        match fmt {
            libc::S_IFREG => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        let first = first.clone();
                        header.set_entry_type(EntryType::Link);
                        return self
                            .builder
                            .append_link(&mut header, rel, &first)
                            .map_err(self.fail(rel, "write hardlink"));
                    }
                    self.links.insert(key, rel.to_path_buf());
                }
                header.set_entry_type(EntryType::Regular);
                header.set_size(st.st_size as u64);
                let fd = cvt(unsafe {
                    libc::openat(
                        dir,
                        name.as_ptr(),
                        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    )
                })
                .map_err(self.fail(rel, "open"))?;
                let file = unsafe { File::from_raw_fd(fd) };
                let mut data = SizedReader {
                    inner: file,
                    left: st.st_size as u64,
                };
                self.builder
                    .append_data(&mut header, rel, &mut data)
                    .map_err(self.fail(rel, "write"))
            }
            libc::S_IFDIR => {
                header.set_entry_type(EntryType::Directory);
                self.builder
                    .append_data(&mut header, rel, io::empty())
                    .map_err(self.fail(rel, "write"))?;
                if opaque {
                    let mut marker = Header::new_gnu();
                    marker.set_entry_type(EntryType::Regular);
                    marker.set_mode(st.st_mode & 0o777);
                    marker.set_uid(u64::from(st.st_uid));
                    marker.set_gid(u64::from(st.st_gid));
                    marker.set_mtime(st.st_mtime.max(0) as u64);
                    marker.set_size(0);
                    self.builder
                        .append_data(&mut marker, rel.join(WHITEOUT_OPAQUE), io::empty())
                        .map_err(self.fail(rel, "write opaque marker for"))?;
                }
                let fd = cvt(unsafe {
                    libc::openat(
                        dir,
                        name.as_ptr(),
                        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    )
                })
                .map_err(self.fail(rel, "open"))?;
                let child = unsafe { OwnedFd::from_raw_fd(fd) };
                let mut rel = rel.to_path_buf();
                self.walk(child.as_raw_fd(), &mut rel)
            }
            libc::S_IFLNK => {
                let mut target = vec![0u8; libc::PATH_MAX as usize];
                let n = unsafe {
                    libc::readlinkat(dir, name.as_ptr(), target.as_mut_ptr().cast(), target.len())
                };
                if n < 0 {
                    return Err(self.fail(rel, "readlink")(io::Error::last_os_error()));
                }
                target.truncate(n as usize);
                header.set_entry_type(EntryType::Symlink);
                self.builder
                    .append_link(&mut header, rel, std::ffi::OsStr::from_bytes(&target))
                    .map_err(self.fail(rel, "write"))
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                header.set_entry_type(match fmt {
                    libc::S_IFCHR => EntryType::Char,
                    libc::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                });
                if fmt != libc::S_IFIFO {
                    let major = libc::major(st.st_rdev);
                    let minor = libc::minor(st.st_rdev);
                    header
                        .set_device_major(major)
                        .map_err(self.fail(rel, "device number of"))?;
                    header
                        .set_device_minor(minor)
                        .map_err(self.fail(rel, "device number of"))?;
                }
                self.builder
                    .append_data(&mut header, rel, io::empty())
                    .map_err(self.fail(rel, "write"))
            }
            // Sockets cannot be archived (Docker skips them too).
            _ => Ok(()),
        }
    }
}

/// Reads exactly the size recorded in the header: a file that shrank while
/// being archived fails the diff instead of corrupting the tar.
struct SizedReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for SizedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while archiving",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod unit {
    #[test]
    fn overlay_xattrs_are_not_exported() {
        assert!(!super::xattr_exported(b"trusted.overlay.opaque"));
        assert!(!super::xattr_exported(b"security.selinux"));
        assert!(super::xattr_exported(b"security.capability"));
        assert!(super::xattr_exported(b"user.x"));
    }

    #[test]
    fn exclude_paths_are_normalized() {
        use std::path::{Path, PathBuf};
        assert_eq!(
            super::normalize(Path::new("/etc/hosts")),
            PathBuf::from("etc/hosts")
        );
        assert_eq!(
            super::normalize(Path::new("./etc//hosts")),
            PathBuf::from("etc/hosts")
        );
        assert_eq!(
            super::normalize(Path::new("etc/hosts/")),
            PathBuf::from("etc/hosts")
        );
    }
}
