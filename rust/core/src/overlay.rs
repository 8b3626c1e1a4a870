//! overlayfs and bind mounts for container root filesystems.
//!
//! The layer count problem: legacy mount(2) takes all options in one page
//! (4096 bytes), so `lowerdir=/var/lib/moorage/overlay/<64 hex>/diff:...`
//! tops out around 40 layers. Two ways around it, both without chdir (which
//! would race with other threads of the Python process):
//!
//! 1. The new mount API with `lowerdir+` (Linux ≥ 6.8): one fsconfig call per
//!    layer, so there is no total limit; each value is capped at 256 bytes,
//!    so a longer path is passed as `/proc/self/fd/N` of an O_PATH fd we hold.
//! 2. Older kernels: legacy mount(2) where every directory is named
//!    `/proc/self/fd/N` (≈18 bytes), which fits ~200 layers in a page and
//!    also sidesteps escaping of `:` and `,` in paths.
//!
//! overlayfs resolves those names when the options are parsed, so the fds
//! can be closed right after the mount.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("{step} {path}: {source}{}", detail_suffix(.detail))]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        /// What the kernel logged on the fs context, if anything.
        detail: String,
    },
    #[error("overlay on {target}: {reason}")]
    Invalid { target: PathBuf, reason: String },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl OverlayError {
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            OverlayError::Io { source, .. } => Some(source),
            OverlayError::Invalid { .. } => None,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            OverlayError::Io { path, .. } => path,
            OverlayError::Invalid { target, .. } => target,
        }
    }
}

pub type Result<T> = std::result::Result<T, OverlayError>;

/// overlayfs refuses deeper stacks (OVL_MAX_STACK).
pub const MAX_LAYERS: usize = 500;

// From <linux/mount.h>; not all are in every libc release.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OverlayError {
    let path = path.to_path_buf();
    move |source| OverlayError::Io {
        step,
        path,
        source,
        detail: String::new(),
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A directory held open (O_PATH) so it can be named `/proc/self/fd/N`.
struct HeldDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl HeldDir {
    fn open(path: &Path, step: &'static str) -> Result<Self> {
        let c = cstring(path).map_err(io_err(step, path))?;
        let fd = cvt(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            ) as libc::c_long
        })
        .map_err(io_err(step, path))?;
        Ok(HeldDir {
            path: path.to_path_buf(),
            fd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
        })
    }

    fn fd_name(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }

    /// The real path if it can go into the options as is, else the fd name.
    fn name(&self, max_len: usize) -> String {
        let bytes = self.path.as_os_str().as_bytes();
        // `:` separates layers, `,` options and `\` escapes in the legacy
        // option string; the fd name needs none of that.
        if bytes.len() < max_len && !bytes.iter().any(|b| matches!(b, b':' | b',' | b'\\')) {
            if let Some(s) = self.path.to_str() {
                return s.to_string();
            }
        }
        self.fd_name()
    }
}

/// Which kernel interface to mount with; `Auto` is what callers want, the
/// others exist so tests can cover both paths on one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountApi {
    Auto,
    FsConfig,
    Legacy,
}

/// Mounts an overlay of `lower` (topmost first, as in Docker's `lowerdir`)
/// on `target`. Without `upper`/`work` the overlay is read-only; a single
/// lower without upper becomes a read-only bind mount (overlayfs wants two
/// lowers when there is no upper on older kernels).
pub fn mount_overlay(
    lower: &[PathBuf],
    upper: Option<&Path>,
    work: Option<&Path>,
    target: &Path,
    readonly: bool,
) -> Result<()> {
    mount_overlay_with(MountApi::Auto, lower, upper, work, target, readonly)
}

pub fn mount_overlay_with(
    api: MountApi,
    lower: &[PathBuf],
    upper: Option<&Path>,
    work: Option<&Path>,
    target: &Path,
    readonly: bool,
) -> Result<()> {
    let invalid = |reason: &str| OverlayError::Invalid {
        target: target.to_path_buf(),
        reason: reason.into(),
    };
    if lower.is_empty() {
        return Err(invalid("no lower layer given"));
    }
    if lower.len() > MAX_LAYERS {
        return Err(invalid(&format!(
            "{} layers; overlayfs allows at most {MAX_LAYERS}",
            lower.len()
        )));
    }
    let rw = match (upper, work) {
        (Some(u), Some(w)) => Some((
            HeldDir::open(u, "open upper dir")?,
            HeldDir::open(w, "open work dir")?,
        )),
        (None, None) => None,
        _ => return Err(invalid("upper and work must be given together")),
    };
    if rw.is_none() && lower.len() == 1 {
        return bind(&lower[0], target, true, false);
    }
    let lowers = lower
        .iter()
        .map(|p| HeldDir::open(p, "open lower dir"))
        .collect::<Result<Vec<_>>>()?;
    let readonly = readonly || rw.is_none();
    if api != MountApi::Legacy {
        match mount_fsconfig(&lowers, rw.as_ref(), target, readonly) {
            Ok(()) => return Ok(()),
            // ENOSYS: no new mount API; EINVAL on the first lowerdir+: the
            // overlay is older than 6.8. Both mean: use mount(2).
            Err(FsConfigError::Unsupported) if api == MountApi::Auto => {}
            Err(FsConfigError::Unsupported) => {
                return Err(invalid(
                    "this kernel's overlayfs lacks lowerdir+ (Linux 6.8)",
                ))
            }
            Err(FsConfigError::Failed(e)) => return Err(e),
        }
    }
    mount_legacy(&lowers, rw.as_ref(), target, readonly)
}

enum FsConfigError {
    Unsupported,
    Failed(OverlayError),
}

/// The kernel's log lines on an fs context ("e overlay: ..."), for errors.
fn fs_context_log(fsfd: RawFd) -> String {
    let mut lines = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = unsafe { libc::read(fsfd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        lines.push(
            String::from_utf8_lossy(&buf[..n as usize])
                .trim_end()
                .to_string(),
        );
    }
    lines.join("; ")
}

fn fsconfig_string(fsfd: RawFd, key: &CStr, value: &str) -> io::Result<()> {
    let value = CString::new(value)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in value"))?;
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd,
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    })
    .map(drop)
}

fn mount_fsconfig(
    lowers: &[HeldDir],
    rw: Option<&(HeldDir, HeldDir)>,
    target: &Path,
    readonly: bool,
) -> std::result::Result<(), FsConfigError> {
    let fsfd = match cvt(unsafe {
        libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC)
    }) {
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return Err(FsConfigError::Unsupported),
        Err(e) => {
            return Err(FsConfigError::Failed(io_err("fsopen overlay for", target)(
                e,
            )))
        }
    };
    let fs = fsfd.as_raw_fd();
    let failed = |step: &'static str, e: io::Error| {
        FsConfigError::Failed(OverlayError::Io {
            step,
            path: target.to_path_buf(),
            source: e,
            detail: fs_context_log(fs),
        })
    };
    // fsconfig string values are limited to 256 bytes including the NUL.
    for (i, layer) in lowers.iter().enumerate() {
        if let Err(e) = fsconfig_string(fs, c"lowerdir+", &layer.name(256)) {
            if i == 0 && e.raw_os_error() == Some(libc::EINVAL) {
                let log = fs_context_log(fs);
                if log.contains("lowerdir+") || log.is_empty() || log.contains("Unknown parameter")
                {
                    return Err(FsConfigError::Unsupported);
                }
            }
            return Err(failed("add lower layer for", e));
        }
    }
    if let Some((upper, work)) = rw {
        fsconfig_string(fs, c"upperdir", &upper.name(256))
            .map_err(|e| failed("set upperdir for", e))?;
        fsconfig_string(fs, c"workdir", &work.name(256))
            .map_err(|e| failed("set workdir for", e))?;
        // diff_layer reads the upper as Docker's overlay driver does; a
        // renamed lower directory recorded as a redirect xattr cannot be
        // expressed in a tar diff, so renames must copy up instead.
        fsconfig_string(fs, c"redirect_dir", "off")
            .map_err(|e| failed("set redirect_dir for", e))?;
    }
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs,
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })
    .map_err(|e| failed("create overlay for", e))?;
    let attrs = if readonly { MOUNT_ATTR_RDONLY } else { 0 };
    let mfd = cvt(unsafe { libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs) })
        .map_err(|e| failed("fsmount overlay for", e))?;
    let mfd = unsafe { OwnedFd::from_raw_fd(mfd as RawFd) };
    let c_target = cstring(target).map_err(|e| failed("mount overlay on", e))?;
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mfd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map_err(|e| failed("mount overlay on", e))?;
    Ok(())
}

fn mount_legacy(
    lowers: &[HeldDir],
    rw: Option<&(HeldDir, HeldDir)>,
    target: &Path,
    readonly: bool,
) -> Result<()> {
    let page = 4096usize;
    let build = |use_fds: bool| {
        let name = |d: &HeldDir| if use_fds { d.fd_name() } else { d.name(page) };
        let mut data = String::from("lowerdir=");
        data.push_str(&lowers.iter().map(name).collect::<Vec<_>>().join(":"));
        if let Some((upper, work)) = rw {
            data.push_str(&format!(
                ",upperdir={},workdir={},redirect_dir=off",
                name(upper),
                name(work)
            ));
        }
        data
    };
    let mut data = build(false);
    if data.len() >= page || data.contains("/proc/self/fd/") {
        data = build(true);
    }
    if data.len() >= page {
        return Err(OverlayError::Invalid {
            target: target.to_path_buf(),
            reason: format!(
                "{} layers do not fit in mount options on this kernel (needs Linux 6.8)",
                lowers.len()
            ),
        });
    }
    let c_data = CString::new(data).map_err(|e| io_err("mount overlay on", target)(e.into()))?;
    let c_target = cstring(target).map_err(io_err("mount overlay on", target))?;
    let flags = if readonly { libc::MS_RDONLY } else { 0 };
    cvt(unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            c_target.as_ptr(),
            c"overlay".as_ptr(),
            flags,
            c_data.as_ptr().cast(),
        ) as libc::c_long
    })
    .map(drop)
    .map_err(io_err("mount overlay on", target))
}

/// Unmounts `target` (never following a symlink there); `detach` makes it
/// lazy (MNT_DETACH). "Not mounted" is an error: the caller decides.
pub fn unmount(target: &Path, detach: bool) -> Result<()> {
    let c = cstring(target).map_err(io_err("unmount", target))?;
    let flags = libc::UMOUNT_NOFOLLOW | if detach { libc::MNT_DETACH } else { 0 };
    cvt(unsafe { libc::umount2(c.as_ptr(), flags) as libc::c_long })
        .map(drop)
        .map_err(io_err("unmount", target))
}

/// Bind-mounts `source` on `target`, recursively (like `docker run -v`),
/// read-only through every submount when `readonly`.
pub fn bind_mount(source: &Path, target: &Path, readonly: bool) -> Result<()> {
    bind(source, target, readonly, true)
}

fn bind(source: &Path, target: &Path, readonly: bool, recursive: bool) -> Result<()> {
    let c_source = cstring(source).map_err(io_err("bind mount", source))?;
    let c_target = cstring(target).map_err(io_err("bind mount onto", target))?;
    let mut flags = libc::MS_BIND;
    if recursive {
        flags |= libc::MS_REC;
    }
    cvt(unsafe {
        libc::mount(
            c_source.as_ptr(),
            c_target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        ) as libc::c_long
    })
    .map_err(io_err("bind mount onto", target))?;
    if !readonly {
        return Ok(());
    }
    // MS_RDONLY is ignored on the bind itself; it takes a remount.
    // mount_setattr (5.12) reaches submounts too; remount only the top.
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let set = cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_target.as_ptr(),
            if recursive { AT_RECURSIVE } else { 0 },
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    });
    let result = match set {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => cvt(unsafe {
            libc::mount(
                std::ptr::null(),
                c_target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            ) as libc::c_long
        })
        .map(drop),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        // Never leave a writable bind behind a failed read-only request.
        let _ = unmount(target, true);
        return Err(io_err("make bind mount read-only", target)(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn is_root() -> bool {
        unsafe { libc::geteuid() == 0 }
    }

    /// Unmounts on drop, so a failing assertion leaves no mount behind
    /// (the tempdir is removed after, being declared first).
    struct Mounted(PathBuf);
    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = unmount(&self.0, true);
        }
    }

    /// Empty upper, work and mount-target directories under `base`.
    fn upper_work_merged(base: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let dirs = (base.join("upper"), base.join("work"), base.join("merged"));
        for d in [&dirs.0, &dirs.1, &dirs.2] {
            fs::create_dir(d).unwrap();
        }
        dirs
    }

    fn layers(root: &Path, n: usize) -> Vec<PathBuf> {
        (0..n)
            .map(|i| {
                // Long names on purpose: 130 of these overflow a page.
                let dir = root.join(format!("layer-{i:03}-{}", "x".repeat(40)));
                fs::create_dir(&dir).unwrap();
                fs::write(dir.join(format!("only-{i}")), format!("{i}")).unwrap();
                fs::write(dir.join("shared"), format!("{i}")).unwrap();
                dir
            })
            .collect()
    }

    fn check_stack(api: MountApi, n: usize) {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let lowers = layers(tmp.path(), n);
        let target = tmp.path().join("merged");
        fs::create_dir(&target).unwrap();
        mount_overlay_with(api, &lowers, None, None, &target, false).unwrap();
        let _guard = Mounted(target.clone());
        // lower[0] is the top: its "shared" wins.
        assert_eq!(fs::read_to_string(target.join("shared")).unwrap(), "0");
        for i in 0..n {
            assert_eq!(
                fs::read_to_string(target.join(format!("only-{i}"))).unwrap(),
                i.to_string()
            );
        }
        // No upper: read-only.
        let err = fs::write(target.join("new"), "x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    }

    #[test]
    fn two_layers_auto() {
        check_stack(MountApi::Auto, 2);
    }

    #[test]
    fn many_layers_fsconfig() {
        check_stack(MountApi::FsConfig, 130);
    }

    #[test]
    fn many_layers_legacy_uses_fd_names() {
        check_stack(MountApi::Legacy, 130);
    }

    #[test]
    fn more_layers_than_a_page_of_fd_names() {
        check_stack(MountApi::Auto, 300);
    }

    #[test]
    fn upper_gets_writes_and_whiteouts() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let lowers = layers(tmp.path(), 2);
        let (upper, work, target) = upper_work_merged(tmp.path());
        mount_overlay(&lowers, Some(&upper), Some(&work), &target, false).unwrap();
        let guard = Mounted(target.clone());
        fs::write(target.join("new"), "n").unwrap();
        fs::remove_file(target.join("only-1")).unwrap();
        drop(guard);
        assert_eq!(fs::read_to_string(upper.join("new")).unwrap(), "n");
        let st = fs::symlink_metadata(upper.join("only-1")).unwrap();
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        assert!(
            st.file_type().is_char_device() && st.rdev() == 0,
            "whiteout expected"
        );
    }

    #[test]
    fn readonly_overlay_with_upper_refuses_writes() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let lowers = layers(tmp.path(), 1);
        let (upper, work, target) = upper_work_merged(tmp.path());
        mount_overlay(&lowers, Some(&upper), Some(&work), &target, true).unwrap();
        let _guard = Mounted(target.clone());
        assert_eq!(fs::read_to_string(target.join("shared")).unwrap(), "0");
        assert_eq!(
            fs::write(target.join("x"), "x").unwrap_err().raw_os_error(),
            Some(libc::EROFS)
        );
    }

    #[test]
    fn single_lower_is_a_readonly_bind() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let lowers = layers(tmp.path(), 1);
        let target = tmp.path().join("merged");
        fs::create_dir(&target).unwrap();
        mount_overlay(&lowers, None, None, &target, false).unwrap();
        let _guard = Mounted(target.clone());
        assert_eq!(fs::read_to_string(target.join("only-0")).unwrap(), "0");
        assert_eq!(
            fs::write(target.join("x"), "x").unwrap_err().raw_os_error(),
            Some(libc::EROFS)
        );
    }

    #[test]
    fn bind_mount_readonly_and_unmount() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (src, target) = (tmp.path().join("src"), tmp.path().join("dst"));
        fs::create_dir(&src).unwrap();
        fs::create_dir(&target).unwrap();
        fs::write(src.join("f"), "hello").unwrap();
        bind_mount(&src, &target, true).unwrap();
        let guard = Mounted(target.clone());
        assert_eq!(fs::read_to_string(target.join("f")).unwrap(), "hello");
        assert_eq!(
            fs::write(target.join("f"), "x").unwrap_err().raw_os_error(),
            Some(libc::EROFS)
        );
        std::mem::forget(guard);
        unmount(&target, false).unwrap();
        assert!(!target.join("f").exists());
        // Not mounted any more: an error, with errno and path kept.
        let err = unmount(&target, false).unwrap_err();
        assert_eq!(
            err.io_error().and_then(|e| e.raw_os_error()),
            Some(libc::EINVAL)
        );
        assert!(err.to_string().contains("dst"), "{err}");
    }

    #[test]
    fn bad_arguments_are_rejected_before_any_syscall() {
        let t = Path::new("/nonexistent-target");
        assert!(matches!(
            mount_overlay(&[], None, None, t, false),
            Err(OverlayError::Invalid { .. })
        ));
        let l = vec![PathBuf::from("/")];
        assert!(matches!(
            mount_overlay(&l, Some(Path::new("/")), None, t, false),
            Err(OverlayError::Invalid { .. })
        ));
        let many = vec![PathBuf::from("/"); MAX_LAYERS + 1];
        assert!(matches!(
            mount_overlay(&many, None, None, t, false),
            Err(OverlayError::Invalid { .. })
        ));
    }

    #[test]
    fn missing_lower_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        let err = mount_overlay(
            &[missing.clone(), tmp.path().to_path_buf()],
            None,
            None,
            tmp.path(),
            false,
        )
        .unwrap_err();
        assert_eq!(err.path(), missing.as_path());
    }
}
