//! Applying a layer tar onto a directory.
//!
//! Containment: every entry path is cleaned lexically (`..` that would climb
//! above the destination is an error; a leading `/` is dropped), its parent
//! directory is opened with openat2(RESOLVE_IN_ROOT) relative to the
//! destination (so symlinks already in the tree, absolute or relative,
//! resolve as they would inside the container, never outside it; that is
//! Docker's chroot semantics without the chroot), and the last component is
//! created with *at calls that never follow it (O_EXCL|O_NOFOLLOW, mkdirat,
//! symlinkat, linkat without AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW).
//!
//! Not transactional: on error the destination holds a partial layer and the
//! caller removes it.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use tar::EntryType;

use super::fsops::{self, cvt};
use super::stream::{with_layer_stream, ChunkReader, Compression};
use super::{
    LayerError, Result, WhiteoutFormat, OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX,
    WHITEOUT_OPAQUE, WHITEOUT_PREFIX,
};

/// What `apply_layer` measured.
#[derive(Debug, Clone)]
pub struct ApplyReport {
    /// sha256 of the input bytes as given (the blob digest).
    pub digest: String,
    /// sha256 of the uncompressed tar (the OCI diff_id).
    pub diff_id: String,
    /// Uncompressed tar size in bytes.
    pub size: u64,
    /// Input size in bytes.
    pub compressed_size: u64,
    pub compression: Compression,
    /// Tar entries applied (whiteouts included; PAX/GNU meta headers not).
    pub entries: u64,
}

/// Applies the layer tar at `source` (plain, gzip or zstd) onto the existing
/// directory `dest`. On error, `dest` is left partially written: the caller
/// removes it.
pub fn apply_layer(source: &Path, dest: &Path, format: WhiteoutFormat) -> Result<ApplyReport> {
    let root = fsops::open_dir(dest).map_err(|e| LayerError::Io {
        step: "open destination",
        path: dest.to_path_buf(),
        source: e,
    })?;
    let mut applier = Applier::new(root, format);
    let (entries, summary) = with_layer_stream(source, |chunks| applier.run(chunks, source))?;
    Ok(ApplyReport {
        digest: summary.digest,
        diff_id: summary.diff_id,
        size: summary.size,
        compressed_size: summary.compressed_size,
        compression: summary.compression,
        entries,
    })
}

/// Per-entry metadata from the header and its PAX extensions.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime_sec: i64,
    mtime_nsec: i64,
}

struct Applier {
    root: OwnedFd,
    format: WhiteoutFormat,
    umask: u32,
    privileged: bool,
    /// Entry name as in the tar (for error messages).
    raw: Vec<u8>,
    /// Cleaned relative path of the current entry, NUL-terminated.
    path: Vec<u8>,
    /// The parent directory fd of the last entry: tars list a directory's
    /// files together, so one openat2 serves many entries.
    parent_key: Vec<u8>,
    parent_fd: Option<OwnedFd>,
    /// Directory mtimes, set last: creating children changes them.
    dir_times: Vec<(Vec<u8>, i64, i64)>,
    /// Paths written by this layer (vfs only): an opaque whiteout removes
    /// everything else under its directory.
    unpacked: HashSet<Vec<u8>>,
    xattrs: Vec<(CString, Vec<u8>)>,
    buf: Vec<u8>,
}

/// Lexically cleans a tar entry name into `out` (no leading `/`, no `.`,
/// `..` resolved). Fails if `..` climbs above the root.
fn clean_path(raw: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), &'static str> {
    out.clear();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return Err("path escapes the destination with ..");
                }
                let cut = out.iter().rposition(|b| *b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            _ => {
                if comp.contains(&0) {
                    return Err("path contains a NUL byte");
                }
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(comp);
            }
        }
    }
    Ok(())
}

/// Index where the last component of a cleaned path starts.
fn base_start(path: &[u8]) -> usize {
    path.iter().rposition(|b| *b == b'/').map_or(0, |i| i + 1)
}

/// True if `ancestor` is `path` or one of its parent directories.
fn is_under(path: &[u8], ancestor: &[u8]) -> bool {
    ancestor.is_empty()
        || (path.starts_with(ancestor)
            && (path.len() == ancestor.len() || path[ancestor.len()] == b'/'))
}

fn cstr(bytes_with_nul: &[u8]) -> io::Result<&CStr> {
    CStr::from_bytes_with_nul(bytes_with_nul)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in name"))
}

fn timespecs(sec: i64, nsec: i64) -> [libc::timespec; 2] {
    let ts = libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as _,
    };
    [ts, ts]
}

/// Parses a PAX time ("1700000000.123456789").
fn parse_pax_time(v: &[u8]) -> Option<(i64, i64)> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = sec.parse().ok()?;
    let mut nsec: i64 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        if !d.is_ascii_digit() {
            return None;
        }
        nsec += i64::from(d - b'0') * 10i64.pow(8 - i as u32);
    }
    // A negative fractional time counts back from the negative second.
    if sec < 0 && nsec > 0 {
        return Some((sec - 1, 1_000_000_000 - nsec));
    }
    Some((sec, nsec))
}

impl Applier {
    fn new(root: OwnedFd, format: WhiteoutFormat) -> Self {
        Applier {
            root,
            format,
            umask: fsops::current_umask(),
            privileged: unsafe { libc::geteuid() } == 0,
            raw: Vec::with_capacity(256),
            path: Vec::with_capacity(256),
            parent_key: Vec::with_capacity(256),
            parent_fd: None,
            dir_times: Vec::new(),
            unpacked: HashSet::new(),
            xattrs: Vec::new(),
            buf: vec![0u8; 256 * 1024],
        }
    }

    fn entry_name(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// Error mapper for `step`; the entry name is only formatted on error
    /// (this runs several times per file on the hot path).
    fn err<'a>(&'a self, step: &'static str) -> impl FnOnce(io::Error) -> LayerError + 'a {
        move |source| LayerError::Entry {
            entry: self.entry_name(),
            step,
            source,
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> LayerError {
        LayerError::Invalid {
            entry: self.entry_name(),
            reason: reason.into(),
        }
    }

    fn run(&mut self, chunks: &mut ChunkReader, source: &Path) -> Result<u64> {
        let stream_err = |e| LayerError::Stream {
            path: source.to_path_buf(),
            source: e,
        };
        let mut archive = tar::Archive::new(chunks);
        let mut count = 0u64;
        for entry in archive.entries().map_err(stream_err)? {
            let mut entry = entry.map_err(stream_err)?;
            if self.apply_entry(&mut entry).map_err(|e| match e {
                // Reading entry data can fail because the stream broke.
                LayerError::Entry {
                    step: "read data",
                    source,
                    ..
                } => stream_err(source),
                other => other,
            })? {
                count += 1;
            }
        }
        self.set_dir_times()?;
        Ok(count)
    }

    /// Applies one entry; false for entries that are skipped (PAX globals,
    /// AUFS meta files).
    fn apply_entry(&mut self, entry: &mut tar::Entry<'_, &mut ChunkReader>) -> Result<bool> {
        self.raw.clear();
        self.raw.extend_from_slice(&entry.path_bytes());
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(false);
        }
        let mut path = std::mem::take(&mut self.path);
        let cleaned = clean_path(&self.raw, &mut path);
        self.path = path;
        cleaned.map_err(|reason| self.invalid(reason))?;
        let meta = self.read_meta(entry)?;

        let base = &self.path[base_start(&self.path)..];
        if base.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            if base == WHITEOUT_OPAQUE.as_bytes() {
                self.opaque_whiteout()?;
            } else if base.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
                // AUFS hardlink dirs and the like: meaningless here, as in Docker.
                return Ok(false);
            } else {
                self.file_whiteout(&meta)?;
            }
            return Ok(true);
        }

        if self.format == WhiteoutFormat::Vfs {
            self.unpacked.insert(self.path.clone());
        }
        if self.path.is_empty() {
            // "./": the destination itself; only its metadata can change.
            if kind != EntryType::Directory {
                return Err(self.invalid("a non-directory entry names the destination itself"));
            }
            let root = self.root.as_raw_fd();
            self.set_meta_at(root, c"", &meta, false)?;
            self.dir_times
                .push((Vec::new(), meta.mtime_sec, meta.mtime_nsec));
            return Ok(true);
        }
        let name_at = base_start(&self.path);
        self.path.push(0);
        let result = self.create(entry, kind, &meta, name_at);
        self.path.pop();
        result.map(|()| true)
    }

    fn read_meta(&mut self, entry: &mut tar::Entry<'_, &mut ChunkReader>) -> Result<Meta> {
        let header = entry.header();
        let bad = |what: &str, e: io::Error| format!("bad {what} field: {e}");
        let mode = header.mode().map_err(|e| self.invalid(bad("mode", e)))? & 0o7777;
        let uid = header.uid().map_err(|e| self.invalid(bad("uid", e)))?;
        let gid = header.gid().map_err(|e| self.invalid(bad("gid", e)))?;
        let mtime = header.mtime().map_err(|e| self.invalid(bad("mtime", e)))?;
        let (uid, gid) = match (u32::try_from(uid), u32::try_from(gid)) {
            (Ok(u), Ok(g)) => (u, g),
            _ => return Err(self.invalid(format!("uid/gid {uid}/{gid} out of range"))),
        };
        let mut meta = Meta {
            mode,
            uid,
            gid,
            mtime_sec: mtime.min(i64::MAX as u64) as i64,
            mtime_nsec: 0,
        };
        self.xattrs.clear();
        let pax = entry
            .pax_extensions()
            .map_err(|e| self.invalid(bad("PAX header", e)))?;
        if let Some(pax) = pax {
            for ext in pax {
                let ext = ext.map_err(|e| self.invalid(bad("PAX record", e)))?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    if let Some((s, ns)) = parse_pax_time(ext.value_bytes()) {
                        meta.mtime_sec = s;
                        meta.mtime_nsec = ns;
                    }
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    let name = CString::new(name)
                        .map_err(|_| self.invalid("xattr name contains a NUL byte"))?;
                    self.xattrs.push((name, ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(meta)
    }

    /// Forgets the cached parent fd if `path` (just replaced or removed)
    /// is it or one of its ancestors.
    fn invalidate_under(&mut self, path: &[u8]) {
        if self.parent_fd.is_some() && is_under(&self.parent_key, path) {
            self.parent_fd = None;
        }
    }

    /// The fd of directory `dir` (a cleaned path without NUL), created if
    /// missing; the root for "".
    fn dir_fd(&mut self, dir: &[u8]) -> Result<RawFd> {
        if dir.is_empty() {
            return Ok(self.root.as_raw_fd());
        }
        if let Some(fd) = &self.parent_fd {
            if self.parent_key == dir {
                return Ok(fd.as_raw_fd());
            }
        }
        self.parent_key.clear();
        self.parent_key.extend_from_slice(dir);
        self.parent_key.push(0);
        let opened = fsops::open_or_create_dir_in_root(self.root.as_raw_fd(), &self.parent_key);
        self.parent_key.pop();
        let fd = opened.map_err(self.err("open parent directory"))?;
        let raw = fd.as_raw_fd();
        self.parent_fd = Some(fd);
        Ok(raw)
    }

    /// Removes whatever is at `name` in `parent` so a new entry can take the
    /// name (Docker replaces, it does not merge, except dir over dir).
    fn remove_existing(&mut self, parent: RawFd, name: &CStr, path: &[u8]) -> Result<()> {
        fsops::remove_all_at(parent, name).map_err(self.err("remove existing"))?;
        let path = path.to_vec();
        self.invalidate_under(&path);
        Ok(())
    }

    fn create(
        &mut self,
        entry: &mut tar::Entry<'_, &mut ChunkReader>,
        kind: EntryType,
        meta: &Meta,
        name_at: usize,
    ) -> Result<()> {
        let path = std::mem::take(&mut self.path);
        let result = self.create_inner(entry, kind, meta, &path, name_at);
        self.path = path;
        result
    }

    fn create_inner(
        &mut self,
        entry: &mut tar::Entry<'_, &mut ChunkReader>,
        kind: EntryType,
        meta: &Meta,
        path: &[u8],
        name_at: usize,
    ) -> Result<()> {
        let dir = &path[..name_at.saturating_sub(1)];
        let plain = &path[..path.len() - 1];
        let name = cstr(&path[name_at..]).map_err(self.err("name"))?;
        if kind != EntryType::Regular {
            self.invalidate_under(plain);
        }
        let parent = self.dir_fd(dir)?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.create_file(entry, parent, name, plain, meta)
            }
            EntryType::Directory => {
                let existed = match cvt(unsafe {
                    libc::mkdirat(parent, name.as_ptr(), meta.mode & 0o777)
                }) {
                    Ok(_) => false,
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        let st = fsops::lstat_at(parent, name).map_err(self.err("lstat"))?;
                        if !fsops::is_dir(&st) {
                            self.remove_existing(parent, name, plain)?;
                            let parent = self.dir_fd(dir)?;
                            cvt(unsafe { libc::mkdirat(parent, name.as_ptr(), meta.mode & 0o777) })
                                .map_err(self.err("mkdir"))?;
                        }
                        true
                    }
                    Err(e) => return Err(self.err("mkdir")(e)),
                };
                let parent = self.dir_fd(dir)?;
                self.set_meta_at(parent, name, meta, existed)?;
                self.dir_times
                    .push((plain.to_vec(), meta.mtime_sec, meta.mtime_nsec));
                Ok(())
            }
            EntryType::Symlink => {
                let mut target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.invalid("symlink without a target"))?
                    .into_owned();
                target.push(0);
                let target = cstr(&target).map_err(self.err("symlink target"))?;
                let mut parent = parent;
                let mut retried = false;
                loop {
                    match cvt(unsafe { libc::symlinkat(target.as_ptr(), parent, name.as_ptr()) }) {
                        Ok(_) => break,
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) && !retried => {
                            self.remove_existing(parent, name, plain)?;
                            parent = self.dir_fd(dir)?;
                            retried = true;
                        }
                        Err(e) => return Err(self.err("symlink")(e)),
                    }
                }
                self.set_meta_at(parent, name, meta, false)?;
                self.set_time_at(parent, name, meta)
            }
            EntryType::Link => {
                let raw_target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.invalid("hardlink without a target"))?
                    .into_owned();
                let mut target = Vec::with_capacity(raw_target.len() + 1);
                clean_path(&raw_target, &mut target)
                    .map_err(|reason| self.invalid(format!("hardlink target: {reason}")))?;
                if target.is_empty() {
                    return Err(self.invalid("hardlink to the destination itself"));
                }
                let t_at = base_start(&target);
                target.push(0);
                let t_dir = &target[..t_at.saturating_sub(1)];
                let t_name = cstr(&target[t_at..]).map_err(self.err("hardlink target"))?;
                // Resolved in root like any path: the link cannot reach a
                // file outside the destination.
                let t_parent: Option<OwnedFd> = if t_dir.is_empty() {
                    None
                } else {
                    let mut c = t_dir.to_vec();
                    c.push(0);
                    let c = cstr(&c).map_err(self.err("hardlink target"))?;
                    Some(
                        fsops::open_in_root(
                            self.root.as_raw_fd(),
                            c,
                            libc::O_PATH | libc::O_DIRECTORY,
                        )
                        .map_err(self.err("open hardlink target directory"))?,
                    )
                };
                let t_parent_fd = t_parent
                    .as_ref()
                    .map_or(self.root.as_raw_fd(), |f| f.as_raw_fd());
                let mut parent = parent;
                let mut retried = false;
                loop {
                    // No AT_SYMLINK_FOLLOW: a link to a symlink links the
                    // symlink itself, as GNU tar does.
                    match cvt(unsafe {
                        libc::linkat(t_parent_fd, t_name.as_ptr(), parent, name.as_ptr(), 0)
                    }) {
                        Ok(_) => return Ok(()),
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) && !retried => {
                            // Linking a path onto itself: nothing to do.
                            if let (Ok(a), Ok(b)) = (
                                fsops::lstat_at(t_parent_fd, t_name),
                                fsops::lstat_at(parent, name),
                            ) {
                                if a.st_dev == b.st_dev && a.st_ino == b.st_ino {
                                    return Ok(());
                                }
                            }
                            self.remove_existing(parent, name, plain)?;
                            parent = self.dir_fd(dir)?;
                            retried = true;
                        }
                        Err(e) => return Err(self.err("hardlink")(e)),
                    }
                }
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ftype = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let dev = libc::makedev(major, minor);
                self.mknod(parent, dir, name, plain, ftype | (meta.mode & 0o777), dev)?;
                let parent = self.dir_fd(dir)?;
                self.set_meta_at(parent, name, meta, false)?;
                self.set_time_at(parent, name, meta)
            }
            other => Err(self.invalid(format!(
                "unsupported tar entry type {:?}",
                other.as_byte() as char
            ))),
        }
    }

    fn mknod(
        &mut self,
        parent: RawFd,
        dir: &[u8],
        name: &CStr,
        plain: &[u8],
        mode: u32,
        dev: libc::dev_t,
    ) -> Result<()> {
        match cvt(unsafe { libc::mknodat(parent, name.as_ptr(), mode, dev) }) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.remove_existing(parent, name, plain)?;
                let parent = self.dir_fd(dir)?;
                cvt(unsafe { libc::mknodat(parent, name.as_ptr(), mode, dev) })
                    .map(drop)
                    .map_err(self.err("mknod"))
            }
            Err(e) => Err(self.err("mknod")(e)),
        }
    }

    fn needs_chmod(&self, mode: u32) -> bool {
        // chown clears setuid/setgid, and the umask trims the create mode.
        mode & 0o7000 != 0 || mode & self.umask & 0o777 != 0
    }

    fn chown_ok(&self, ret: io::Result<libc::c_int>) -> io::Result<()> {
        match ret {
            Ok(_) => Ok(()),
            // Unprivileged (rootless without a user namespace) cannot give
            // files away; keep our own ownership, as GNU tar does for users.
            Err(e)
                if !self.privileged
                    && matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EINVAL)) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn create_file(
        &mut self,
        entry: &mut tar::Entry<'_, &mut ChunkReader>,
        parent: RawFd,
        name: &CStr,
        plain: &[u8],
        meta: &Meta,
    ) -> Result<()> {
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let create_mode = (meta.mode & 0o777) as libc::c_uint;
        let fd = match cvt(unsafe { libc::openat(parent, name.as_ptr(), flags, create_mode) }) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.remove_existing(parent, name, plain)?;
                let dir_len = plain.len().saturating_sub(name.to_bytes().len() + 1);
                let parent = self.dir_fd(&plain[..dir_len])?;
                cvt(unsafe { libc::openat(parent, name.as_ptr(), flags, create_mode) })
                    .map_err(self.err("create"))?
            }
            Err(e) => return Err(self.err("create")(e)),
        };
        let mut file = unsafe { File::from_raw_fd(fd) };
        let mut remaining = entry.size();
        while remaining > 0 {
            let want = self
                .buf
                .len()
                .min(remaining.min(usize::MAX as u64) as usize);
            let n = match entry.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(self.err("read data")(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "tar ends inside file data",
                    )))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.err("read data")(e)),
            };
            file.write_all(&self.buf[..n]).map_err(self.err("write"))?;
            remaining -= n as u64;
        }
        let ret = cvt(unsafe { libc::fchown(fd, meta.uid, meta.gid) });
        self.chown_ok(ret).map_err(self.err("chown"))?;
        if self.needs_chmod(meta.mode) {
            cvt(unsafe { libc::fchmod(fd, meta.mode) }).map_err(self.err("chmod"))?;
        }
        for (key, value) in &self.xattrs {
            cvt(unsafe {
                libc::fsetxattr(fd, key.as_ptr(), value.as_ptr().cast(), value.len(), 0)
            })
            .map_err(self.err("set xattr"))?;
        }
        let ts = timespecs(meta.mtime_sec, meta.mtime_nsec);
        cvt(unsafe { libc::futimens(fd, ts.as_ptr()) }).map_err(self.err("set mtime"))?;
        Ok(())
    }

    /// Ownership, mode and xattrs of a non-regular entry, never following
    /// `name` (empty `name`: `dir` itself).
    fn set_meta_at(&self, dir: RawFd, name: &CStr, meta: &Meta, force_chmod: bool) -> Result<()> {
        let (flags, is_self) = if name.to_bytes().is_empty() {
            (libc::AT_EMPTY_PATH, true)
        } else {
            (libc::AT_SYMLINK_NOFOLLOW, false)
        };
        let ret = cvt(unsafe { libc::fchownat(dir, name.as_ptr(), meta.uid, meta.gid, flags) });
        self.chown_ok(ret).map_err(self.err("chown"))?;
        let st =
            fsops::lstat_at(dir, if is_self { c"." } else { name }).map_err(self.err("lstat"))?;
        let is_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
        // Symlink modes are meaningless on Linux (and fchmodat would follow).
        if !is_link && (force_chmod || is_self || self.needs_chmod(meta.mode)) {
            let target = if is_self { c"." } else { name };
            cvt(unsafe { libc::fchmodat(dir, target.as_ptr(), meta.mode, 0) })
                .map_err(self.err("chmod"))?;
        }
        for (key, value) in &self.xattrs {
            fsops::lsetxattr_at(dir, name, key, value).map_err(self.err("set xattr"))?;
        }
        Ok(())
    }

    fn set_time_at(&self, dir: RawFd, name: &CStr, meta: &Meta) -> Result<()> {
        let ts = timespecs(meta.mtime_sec, meta.mtime_nsec);
        cvt(unsafe { libc::utimensat(dir, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
            .map(drop)
            .map_err(self.err("set mtime"))
    }

    /// `.wh.NAME`: a 0/0 character device (overlay) or the deletion (vfs).
    fn file_whiteout(&mut self, meta: &Meta) -> Result<()> {
        let at = base_start(&self.path);
        let dir = self.path[..at.saturating_sub(1)].to_vec();
        let mut target: Vec<u8> = self.path[at + WHITEOUT_PREFIX.len()..].to_vec();
        if target.is_empty() {
            return Err(self.invalid("whiteout without a name"));
        }
        let mut target_path = dir.clone();
        if !target_path.is_empty() {
            target_path.push(b'/');
        }
        target_path.extend_from_slice(&target);
        target.push(0);
        let name = cstr(&target).map_err(self.err("whiteout name"))?;
        self.invalidate_under(&target_path);
        if self.format == WhiteoutFormat::Vfs {
            // Deleting under a parent that does not exist is a no-op; do not
            // create the parent as the overlay case must.
            let parent = if dir.is_empty() {
                None
            } else {
                let mut c = dir.clone();
                c.push(0);
                let c = cstr(&c).map_err(self.err("whiteout name"))?;
                match fsops::open_in_root(
                    self.root.as_raw_fd(),
                    c,
                    libc::O_PATH | libc::O_DIRECTORY,
                ) {
                    Ok(fd) => Some(fd),
                    Err(e)
                        if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) =>
                    {
                        return Ok(())
                    }
                    Err(e) => return Err(self.err("open whiteout directory")(e)),
                }
            };
            let parent_fd = parent
                .as_ref()
                .map_or(self.root.as_raw_fd(), |f| f.as_raw_fd());
            return fsops::remove_all_at(parent_fd, name).map_err(self.err("apply whiteout"));
        }
        let parent = self.dir_fd(&dir)?;
        self.mknod(parent, &dir, name, &target_path, libc::S_IFCHR, 0)?;
        let parent = self.dir_fd(&dir)?;
        let ret = cvt(unsafe {
            libc::fchownat(
                parent,
                name.as_ptr(),
                meta.uid,
                meta.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        });
        self.chown_ok(ret).map_err(self.err("chown whiteout"))
    }

    /// `.wh..wh..opq`: mark the directory opaque (overlay), or delete what
    /// the layers below put in it (vfs).
    fn opaque_whiteout(&mut self) -> Result<()> {
        let at = base_start(&self.path);
        let dir = self.path[..at.saturating_sub(1)].to_vec();
        match self.format {
            WhiteoutFormat::Overlay => {
                let dir_fd = self.dir_fd(&dir)?;
                let key =
                    CString::new(OVERLAY_OPAQUE_XATTR).map_err(|e| self.err("xattr")(e.into()))?;
                fsops::lsetxattr_at(dir_fd, c"", &key, b"y").map_err(self.err("set opaque xattr"))
            }
            WhiteoutFormat::Vfs => {
                self.invalidate_under(&dir);
                let dir_fd = self.dir_fd(&dir)?;
                let mut prefix = dir.clone();
                self.remove_not_unpacked(dir_fd, &mut prefix)
                    .map_err(self.err("apply opaque whiteout"))
            }
        }
    }

    /// Removes what is under `dir_fd` (at cleaned path `prefix`) and was not
    /// written by this layer, descending into directories this layer wrote.
    fn remove_not_unpacked(&self, dir_fd: RawFd, prefix: &mut Vec<u8>) -> io::Result<()> {
        for name in fsops::list_dir(dir_fd)? {
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(name.to_bytes());
            let result = if self.unpacked.contains(prefix.as_slice()) {
                match fsops::lstat_at(dir_fd, &name) {
                    Ok(st) if fsops::is_dir(&st) => {
                        let fd = cvt(unsafe {
                            libc::openat(
                                dir_fd,
                                name.as_ptr(),
                                libc::O_RDONLY
                                    | libc::O_DIRECTORY
                                    | libc::O_NOFOLLOW
                                    | libc::O_CLOEXEC,
                            )
                        })?;
                        let child = unsafe { OwnedFd::from_raw_fd(fd) };
                        self.remove_not_unpacked(child.as_raw_fd(), prefix)
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            } else {
                fsops::remove_all_at(dir_fd, &name)
            };
            prefix.truncate(len);
            result?;
        }
        Ok(())
    }

    fn set_dir_times(&mut self) -> Result<()> {
        let times = std::mem::take(&mut self.dir_times);
        // Children before parents: deeper entries come later in a tar.
        for (path, sec, nsec) in times.iter().rev() {
            self.raw.clear();
            self.raw.extend_from_slice(path);
            let ts = timespecs(*sec, *nsec);
            if path.is_empty() {
                cvt(unsafe { libc::futimens(self.root.as_raw_fd(), ts.as_ptr()) })
                    .map_err(self.err("set directory mtime"))?;
                continue;
            }
            let at = base_start(path);
            let parent = self.dir_fd(&path[..at.saturating_sub(1)])?;
            let mut name = path[at..].to_vec();
            name.push(0);
            let name = cstr(&name).map_err(self.err("name"))?;
            cvt(unsafe {
                libc::utimensat(
                    parent,
                    name.as_ptr(),
                    ts.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })
            .map_err(self.err("set directory mtime"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn clean_path_rules() {
        let mut out = Vec::new();
        for (raw, want) in [
            ("a/b", "a/b"),
            ("./a//b/", "a/b"),
            ("/etc/x", "etc/x"),
            ("a/../b", "b"),
            ("./", ""),
            ("a/./b/../c", "a/c"),
        ] {
            clean_path(raw.as_bytes(), &mut out).unwrap();
            assert_eq!(out, want.as_bytes(), "{raw}");
        }
        assert!(clean_path(b"../x", &mut out).is_err());
        assert!(clean_path(b"a/../../x", &mut out).is_err());
        assert!(clean_path(b"/../x", &mut out).is_err());
    }

    #[test]
    fn is_under_is_component_wise() {
        assert!(is_under(b"a/b", b"a"));
        assert!(is_under(b"a", b"a"));
        assert!(is_under(b"a", b""));
        assert!(!is_under(b"ab", b"a"));
        assert!(!is_under(b"a", b"a/b"));
    }

    #[test]
    fn pax_time() {
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_pax_time(b"12"), Some((12, 0)));
        assert_eq!(parse_pax_time(b"x"), None);
    }
}
