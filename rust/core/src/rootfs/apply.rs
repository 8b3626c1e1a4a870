//! Executing a [`RootfsPlan`] in the container's mount namespace.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::{at, devices, sys, MountKind, MountOp, Result, RootfsError, RootfsPlan};
use crate::syscall::{FileKind, Syscall, SyscallError};

/// Phase 1, before pivot_root: propagation, rootfs bind, config mounts, /dev.
/// Every container path is resolved inside the rootfs (see the module docs
/// of [`super::resolve`]); nothing is joined onto the rootfs as text.
pub fn prepare(s: &dyn Syscall, plan: &RootfsPlan) -> Result<()> {
    let root = Path::new("/");
    // Nothing we mount may propagate back to the host (the new mount
    // namespace starts as a copy whose mounts may be shared with the host).
    s.mount(None, root, None, plan.propagation, None)
        .map_err(sys("set / propagation"))?;
    if s.kind(&plan.rootfs) != Some(FileKind::Dir) {
        return Err(RootfsError::BadRoot {
            path: plan.rootfs.clone(),
        });
    }
    // pivot_root needs the new root to be a mount point.
    s.mount(
        Some(&plan.rootfs),
        &plan.rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(sys("bind rootfs"))?;
    for m in &plan.mounts {
        mount_one(s, &plan.rootfs, m)?;
    }
    for d in &plan.devices {
        create_device(s, &plan.rootfs, d)?;
    }
    if plan.dev_symlinks {
        let dev = Path::new("/dev");
        let dir = s
            .resolve_in_root(&plan.rootfs, dev, Some(FileKind::Dir))
            .map_err(at("dev symlink dir", dev))?;
        for (link, target) in devices::SYMLINKS {
            let link = Path::new(link);
            let name = link.file_name().ok_or_else(|| bad_dest(link))?;
            // symlink(2) never follows its last component, and the parent is
            // the pinned /dev, so the link is created inside the rootfs.
            s.symlink(Path::new(target), &dir.path().join(name))
                .map_err(at("dev symlink", link))?;
        }
    }
    if plan.console {
        // Only a mount point for the pty (bound in `bind_console`).
        let console = Path::new("/dev/console");
        s.resolve_in_root(&plan.rootfs, console, Some(FileKind::Other))
            .map_err(at("create", console))?;
    }
    Ok(())
}

fn bad_dest(dest: &Path) -> RootfsError {
    let e = std::io::Error::from_raw_os_error(libc::EINVAL);
    RootfsError::At {
        step: "path",
        dest: dest.to_owned(),
        source: SyscallError::io("file name", dest, e),
    }
}

fn mount_one(s: &dyn Syscall, rootfs: &Path, m: &MountOp) -> Result<()> {
    let o = &m.options;
    let dest = m.destination.as_path();
    let data = (!o.data.is_empty()).then_some(o.data.as_str());
    // After a mount the target must be resolved again: the descriptor used
    // for the mount still names the directory underneath, and a remount,
    // propagation change or mkdir through it would miss the new mount.
    let reopen = || {
        s.resolve_in_root(rootfs, dest, None)
            .map_err(at("reopen mount target", dest))
    };
    match &m.kind {
        MountKind::Bind => {
            // The source is a host path from the config, not from the image.
            let src = m.source.as_deref().unwrap_or(Path::new(""));
            let Some(kind) = s.kind(src) else {
                let e = std::io::Error::from_raw_os_error(libc::ENOENT);
                return Err(RootfsError::Sys {
                    step: "bind mount source",
                    source: SyscallError::io("stat", src, e),
                });
            };
            let target = s
                .resolve_in_root(rootfs, dest, Some(kind))
                .map_err(at("bind mount target", dest))?;
            let bind = o.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
            s.mount(Some(src), target.path(), None, bind, None)
                .map_err(at("bind mount", dest))?;
            // mount(2) ignores other flags with MS_BIND: they need a remount.
            let rest = o.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
            if !rest.is_empty() {
                s.mount(
                    None,
                    reopen()?.path(),
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rest,
                    None,
                )
                .map_err(at("remount bind mount", dest))?;
            }
        }
        MountKind::Fs => {
            let target = s
                .resolve_in_root(rootfs, dest, Some(FileKind::Dir))
                .map_err(at("mount target", dest))?;
            let src = m.source.as_deref().or(m.fstype.as_deref().map(Path::new));
            s.mount(src, target.path(), m.fstype.as_deref(), o.flags, data)
                .map_err(at("mount", dest))?;
        }
        MountKind::Cgroup(hierarchies) => {
            let target = s
                .resolve_in_root(rootfs, dest, Some(FileKind::Dir))
                .map_err(at("cgroup mount target", dest))?;
            let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            s.mount(
                Some(Path::new("tmpfs")),
                target.path(),
                Some("tmpfs"),
                base,
                Some("mode=755"),
            )
            .map_err(at("mount cgroup tmpfs", dest))?;
            let flags = base | (o.flags & MsFlags::MS_RDONLY);
            for h in hierarchies {
                let sub = dest.join(&h.name);
                let dir = s
                    .resolve_in_root(rootfs, &sub, Some(FileKind::Dir))
                    .map_err(at("cgroup hierarchy dir", &sub))?;
                let hdata = (!h.data.is_empty()).then_some(h.data.as_str());
                s.mount(
                    Some(Path::new("cgroup")),
                    dir.path(),
                    Some(&h.fstype),
                    flags,
                    hdata,
                )
                .map_err(at("mount cgroup hierarchy", &sub))?;
            }
            if o.flags.contains(MsFlags::MS_RDONLY) {
                let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base;
                s.mount(None, reopen()?.path(), None, flags, Some("mode=755"))
                    .map_err(at("remount cgroup tmpfs ro", dest))?;
            }
        }
    }
    if !o.propagation.is_empty() {
        let target = reopen()?;
        for p in &o.propagation {
            s.mount(None, target.path(), None, *p, None)
                .map_err(at("mount propagation", dest))?;
        }
    }
    Ok(())
}

fn create_device(s: &dyn Syscall, rootfs: &Path, d: &devices::Device) -> Result<()> {
    let dest = d.path.as_path();
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(bad_dest(dest));
    };
    let dir = s
        .resolve_in_root(rootfs, parent, Some(FileKind::Dir))
        .map_err(at("device dir", dest))?;
    // mknod(2) never follows its last component and the parent is pinned,
    // so the node is created inside the rootfs (or EEXIST).
    match s.mknod(
        &dir.path().join(name),
        d.kind,
        Mode::from_bits_truncate(d.mode),
        d.dev(),
    ) {
        Ok(()) => {}
        // Whatever the image has there (even a symlink) stays untouched.
        Err(e) if e.errno() == Some(libc::EEXIST) => return Ok(()),
        // Without CAP_MKNOD (or in a user namespace) fall back to binding the
        // host's node, as runc does.
        Err(e) if e.errno() == Some(libc::EPERM) => {
            let target = s
                .resolve_in_root(rootfs, dest, Some(FileKind::Other))
                .map_err(at("device bind target", dest))?;
            s.mount(Some(dest), target.path(), None, MsFlags::MS_BIND, None)
                .map_err(at("bind device", dest))?;
            return Ok(());
        }
        Err(e) => {
            return Err(RootfsError::At {
                step: "mknod",
                dest: dest.to_owned(),
                source: e,
            })
        }
    }
    if d.uid.is_some() || d.gid.is_some() {
        // chown(2) follows symlinks: go through the pinned node, not the name.
        let node = s
            .resolve_in_root(rootfs, dest, None)
            .map_err(at("reopen device", dest))?;
        s.chown(node.path(), d.uid, d.gid)
            .map_err(at("chown device", dest))?;
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
    s.mount(None, dot, None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)
        .map_err(sys("make old root slave"))?;
    s.umount2(dot, MntFlags::MNT_DETACH)
        .map_err(sys("detach old root"))?;
    s.chdir(Path::new("/")).map_err(sys("chdir /"))?;
    Ok(())
}

/// Phase 3, after pivot_root (container paths): read-only paths, masked
/// paths, then the read-only root. No resolution needed here: the old root
/// is detached, `/` is the rootfs and `..` at `/` stays at `/`, so an image
/// symlink can only redirect these paths to another place in the container.
pub fn finish(s: &dyn Syscall, plan: &RootfsPlan) -> Result<()> {
    for p in &plan.readonly {
        if s.kind(p).is_none() {
            continue;
        }
        s.mount(Some(p), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
            .map_err(sys("bind readonly path"))?;
        s.mount(
            None,
            p,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )
        .map_err(sys("remount readonly path"))?;
    }
    for p in &plan.masked {
        match s.kind(p) {
            None => continue,
            Some(FileKind::Dir) => s
                .mount(
                    Some(Path::new("tmpfs")),
                    p,
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    None,
                )
                .map_err(sys("mask directory"))?,
            Some(FileKind::Other) => s
                .mount(
                    Some(Path::new("/dev/null")),
                    p,
                    None,
                    MsFlags::MS_BIND,
                    None,
                )
                .map_err(sys("mask file"))?,
        }
    }
    if plan.readonly_root {
        s.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )
        .map_err(sys("remount / read-only"))?;
    }
    Ok(())
}

/// Bind the terminal's pty slave (a /dev/pts path) over /dev/console.
pub fn bind_console(s: &dyn Syscall, pts: &Path) -> Result<()> {
    s.mount(
        Some(pts),
        Path::new("/dev/console"),
        None,
        MsFlags::MS_BIND,
        None,
    )
    .map_err(sys("bind /dev/console"))
}
