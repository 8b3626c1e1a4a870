//! Executing a [`RootfsPlan`] in the container's mount namespace.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::{devices, join_rootfs, sys, MountKind, MountOp, Result, RootfsError, RootfsPlan};
use crate::syscall::{FileKind, Syscall, SyscallError};

/// Phase 1, before pivot_root: propagation, rootfs bind, config mounts, /dev.
pub fn prepare(s: &dyn Syscall, plan: &RootfsPlan) -> Result<()> {
    let root = Path::new("/");
    // Nothing we mount may propagate back to the host (the new mount
    // namespace starts as a copy whose mounts may be shared with the host).
    s.mount(None, root, None, plan.propagation, None).map_err(sys("set / propagation"))?;
    if s.kind(&plan.rootfs) != Some(FileKind::Dir) {
        return Err(RootfsError::BadRoot { path: plan.rootfs.clone() });
    }
    // pivot_root needs the new root to be a mount point.
    s.mount(Some(&plan.rootfs), &plan.rootfs, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
        .map_err(sys("bind rootfs"))?;
    for m in &plan.mounts {
        mount_one(s, m)?;
    }
    for d in &plan.devices {
        create_device(s, &plan.rootfs, d)?;
    }
    if plan.dev_symlinks {
        for (link, target) in devices::SYMLINKS {
            s.symlink(Path::new(target), &join_rootfs(&plan.rootfs, Path::new(link)))
                .map_err(sys("dev symlink"))?;
        }
    }
    if plan.console {
        s.touch(&join_rootfs(&plan.rootfs, Path::new("/dev/console"))).map_err(sys("create /dev/console"))?;
    }
    Ok(())
}

fn mount_one(s: &dyn Syscall, m: &MountOp) -> Result<()> {
    let o = &m.options;
    let data = (!o.data.is_empty()).then_some(o.data.as_str());
    match &m.kind {
        MountKind::Bind => {
            let src = m.source.as_deref().unwrap_or(Path::new(""));
            match s.kind(src) {
                Some(FileKind::Dir) => s.mkdir_all(&m.target).map_err(sys("bind mount target"))?,
                Some(FileKind::Other) => s.touch(&m.target).map_err(sys("bind mount target"))?,
                None => {
                    let e = std::io::Error::from_raw_os_error(libc::ENOENT);
                    return Err(RootfsError::Sys { step: "bind mount source", source: SyscallError::io("stat", src, e) });
                }
            }
            let bind = o.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
            s.mount(Some(src), &m.target, None, bind, None).map_err(sys("bind mount"))?;
            // mount(2) ignores other flags with MS_BIND: they need a remount.
            let rest = o.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
            if !rest.is_empty() {
                s.mount(None, &m.target, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rest, None)
                    .map_err(sys("remount bind mount"))?;
            }
        }
        MountKind::Fs => {
            s.mkdir_all(&m.target).map_err(sys("mount target"))?;
            let src = m.source.as_deref().or(m.fstype.as_deref().map(Path::new));
            s.mount(src, &m.target, m.fstype.as_deref(), o.flags, data).map_err(sys("mount"))?;
        }
        MountKind::Cgroup(hierarchies) => {
            s.mkdir_all(&m.target).map_err(sys("cgroup mount target"))?;
            let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            s.mount(Some(Path::new("tmpfs")), &m.target, Some("tmpfs"), base, Some("mode=755"))
                .map_err(sys("mount cgroup tmpfs"))?;
            let flags = base | (o.flags & MsFlags::MS_RDONLY);
            for h in hierarchies {
                let dir = m.target.join(&h.name);
                s.mkdir_all(&dir).map_err(sys("cgroup hierarchy dir"))?;
                let hdata = (!h.data.is_empty()).then_some(h.data.as_str());
                s.mount(Some(Path::new("cgroup")), &dir, Some(&h.fstype), flags, hdata)
                    .map_err(sys("mount cgroup hierarchy"))?;
            }
            if o.flags.contains(MsFlags::MS_RDONLY) {
                s.mount(None, &m.target, None, MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base, Some("mode=755"))
                    .map_err(sys("remount cgroup tmpfs ro"))?;
            }
        }
    }
    for p in &o.propagation {
        s.mount(None, &m.target, None, *p, None).map_err(sys("mount propagation"))?;
    }
    Ok(())
}

fn create_device(s: &dyn Syscall, rootfs: &Path, d: &devices::Device) -> Result<()> {
    let target = join_rootfs(rootfs, &d.path);
    if let Some(parent) = target.parent() {
        s.mkdir_all(parent).map_err(sys("device dir"))?;
    }
    match s.mknod(&target, d.kind, Mode::from_bits_truncate(d.mode), d.dev()) {
        Ok(()) => {}
        Err(e) if e.errno() == Some(libc::EEXIST) => return Ok(()),
        // Without CAP_MKNOD (or in a user namespace) fall back to binding the
        // host's node, as runc does.
        Err(e) if e.errno() == Some(libc::EPERM) => {
            s.touch(&target).map_err(sys("device bind target"))?;
            s.mount(Some(&d.path), &target, None, MsFlags::MS_BIND, None).map_err(sys("bind device"))?;
            return Ok(());
        }
        Err(e) => return Err(RootfsError::Sys { step: "mknod", source: e }),
    }
    if d.uid.is_some() || d.gid.is_some() {
        s.chown(&target, d.uid, d.gid).map_err(sys("chown device"))?;
    }
    Ok(())
}

/// Phase 2: make the rootfs `/`. pivot_root(".", ".") stacks the old root on
/// top of the new one, so no put_old directory is needed in the rootfs (the
/// rootfs may be read-only); the old root is then made a slave (so the
/// detach never propagates to the host) and lazily unmounted.
pub fn pivot(s: &dyn Syscall, plan: &RootfsPlan) -> Result<()> {
    let dot = Path::new(".");
    s.chdir(&plan.rootfs).map_err(sys("chdir rootfs"))?;
    s.pivot_root(dot, dot).map_err(sys("pivot_root"))?;
    s.mount(None, dot, None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None).map_err(sys("make old root slave"))?;
    s.umount2(dot, MntFlags::MNT_DETACH).map_err(sys("detach old root"))?;
    s.chdir(Path::new("/")).map_err(sys("chdir /"))?;
    Ok(())
}

/// Phase 3, after pivot_root (container paths): read-only paths, masked
/// paths, then the read-only root.
pub fn finish(s: &dyn Syscall, plan: &RootfsPlan) -> Result<()> {
    for p in &plan.readonly {
        if s.kind(p).is_none() {
            continue;
        }
        s.mount(Some(p), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None).map_err(sys("bind readonly path"))?;
        s.mount(None, p, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)
            .map_err(sys("remount readonly path"))?;
    }
    for p in &plan.masked {
        match s.kind(p) {
            None => continue,
            Some(FileKind::Dir) => s
                .mount(Some(Path::new("tmpfs")), p, Some("tmpfs"), MsFlags::MS_RDONLY, None)
                .map_err(sys("mask directory"))?,
            Some(FileKind::Other) => s
                .mount(Some(Path::new("/dev/null")), p, None, MsFlags::MS_BIND, None)
                .map_err(sys("mask file"))?,
        }
    }
    if plan.readonly_root {
        s.mount(None, Path::new("/"), None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)
            .map_err(sys("remount / read-only"))?;
    }
    Ok(())
}

/// Bind the terminal's pty slave (a /dev/pts path) over /dev/console.
pub fn bind_console(s: &dyn Syscall, pts: &Path) -> Result<()> {
    s.mount(Some(pts), Path::new("/dev/console"), None, MsFlags::MS_BIND, None).map_err(sys("bind /dev/console"))
}
