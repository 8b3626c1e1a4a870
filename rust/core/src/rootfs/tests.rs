//! Mount planning, checked against the recording fake (no root needed).

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use oci_spec::runtime::Spec;

use super::*;
use crate::syscall::{Call, FileKind, RecordingSyscall};

fn spec() -> Spec {
    serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": true},
        "process": {"terminal": true, "args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro", "rslave"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "rootfsPropagation": "rslave",
            "maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/missing"],
            "readonlyPaths": ["/proc/sys"],
            "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}]
        }
    }))
    .unwrap()
}

fn hierarchies() -> Vec<CgroupHierarchy> {
    parse_cgroup_mountinfo(
        "30 25 0:26 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu\n\
         31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n\
         32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
         33 25 0:29 / /proc rw - proc proc rw\n",
    )
}

#[test]
fn mountinfo_hierarchies() {
    let h = hierarchies();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0], CgroupHierarchy { name: "cpu".into(), fstype: "cgroup".into(), data: "cpu".into() });
    assert_eq!(h[1].fstype, "cgroup2");
    assert_eq!(h[2].data, "xattr,name=systemd");
}

#[test]
fn join_stays_inside_rootfs() {
    assert_eq!(join_rootfs(Path::new("/r"), Path::new("/a/../../../etc")), PathBuf::from("/r/etc"));
    assert_eq!(join_rootfs(Path::new("/r"), Path::new("/dev/pts")), PathBuf::from("/r/dev/pts"));
}

#[test]
fn plan_and_prepare_records_mounts_in_order() {
    let plan = RootfsPlan::from_spec(&spec(), Path::new("/b"), &hierarchies()).unwrap();
    assert_eq!(plan.rootfs, PathBuf::from("/b/rootfs"));
    assert_eq!(plan.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
    assert!(plan.console && plan.readonly_root && plan.dev_symlinks);
    assert_eq!(plan.devices.len(), 7);

    let fake = RecordingSyscall::new()
        .with_path("/b/rootfs", FileKind::Dir)
        .with_path("/srv/data", FileKind::Dir);
    apply::prepare(&fake, &plan).unwrap();
    let calls = fake.take();
    let mounts: Vec<_> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Mount { target, fstype, flags, data, .. } => Some((target.clone(), fstype.clone(), *flags, data.clone())),
            _ => None,
        })
        .collect();
    let t = |s: &str| PathBuf::from(s);
    assert_eq!(mounts[0], (t("/"), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None));
    assert_eq!(mounts[1], (t("/b/rootfs"), None, MsFlags::MS_BIND | MsFlags::MS_REC, None));
    assert_eq!(mounts[2], (t("/b/rootfs/proc"), Some("proc".into()), MsFlags::empty(), None));
    assert_eq!(
        mounts[3],
        (t("/b/rootfs/dev"), Some("tmpfs".into()), MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME, Some("mode=755,size=65536k".into()))
    );
    // Bind: the mount, a remount for ro (ignored by MS_BIND), then propagation.
    assert_eq!(mounts[4], (t("/b/rootfs/data"), None, MsFlags::MS_BIND | MsFlags::MS_REC, None));
    assert_eq!(mounts[5], (t("/b/rootfs/data"), None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None));
    assert_eq!(mounts[6], (t("/b/rootfs/data"), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None));
    // cgroup: tmpfs, one mount per hierarchy (ro), then the tmpfs remounted ro.
    assert_eq!(mounts[7].0, t("/b/rootfs/sys/fs/cgroup"));
    assert_eq!(mounts[7].1.as_deref(), Some("tmpfs"));
    assert_eq!(mounts[8].0, t("/b/rootfs/sys/fs/cgroup/cpu"));
    assert_eq!(mounts[8].3.as_deref(), Some("cpu"));
    assert!(mounts[8].2.contains(MsFlags::MS_RDONLY));
    assert_eq!(mounts[9].1.as_deref(), Some("cgroup2"));
    assert_eq!(mounts[11].0, t("/b/rootfs/sys/fs/cgroup"));
    assert!(mounts[11].2.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY));
    assert_eq!(mounts.len(), 12);

    assert!(calls.contains(&Call::Mknod {
        path: t("/b/rootfs/dev/null"),
        kind: nix::sys::stat::SFlag::S_IFCHR,
        perm: nix::sys::stat::Mode::from_bits_truncate(0o666),
        dev: nix::sys::stat::makedev(1, 3),
    }));
    assert!(calls.contains(&Call::Chown { path: t("/b/rootfs/dev/fuse"), uid: Some(0), gid: Some(0) }));
    assert!(calls.contains(&Call::Symlink { target: t("pts/ptmx"), link: t("/b/rootfs/dev/ptmx") }));
    assert!(calls.contains(&Call::Touch(t("/b/rootfs/dev/console"))));
}

#[test]
fn mknod_eperm_falls_back_to_bind() {
    let mut plan = RootfsPlan::from_spec(&spec(), Path::new("/b"), &[]).unwrap();
    plan.mounts.clear();
    plan.devices.truncate(1);
    let fake = RecordingSyscall::new().with_path("/b/rootfs", FileKind::Dir).failing("mknod");
    apply::prepare(&fake, &plan).unwrap();
    let calls = fake.take();
    assert!(calls.contains(&Call::Mount {
        source: Some(PathBuf::from("/dev/null")),
        target: PathBuf::from("/b/rootfs/dev/null"),
        fstype: None,
        flags: MsFlags::MS_BIND,
        data: None
    }));
}

#[test]
fn missing_bind_source_names_the_path() {
    let plan = RootfsPlan::from_spec(&spec(), Path::new("/b"), &[]).unwrap();
    let fake = RecordingSyscall::new().with_path("/b/rootfs", FileKind::Dir);
    let err = apply::prepare(&fake, &plan).unwrap_err().to_string();
    assert!(err.contains("/srv/data"), "{err}");
}

#[test]
fn pivot_and_finish() {
    let plan = RootfsPlan::from_spec(&spec(), Path::new("/b"), &[]).unwrap();
    let fake = RecordingSyscall::new()
        .with_path("/proc/kcore", FileKind::Other)
        .with_path("/proc/acpi", FileKind::Dir)
        .with_path("/proc/sys", FileKind::Dir);
    apply::pivot(&fake, &plan).unwrap();
    let dot = PathBuf::from(".");
    assert_eq!(
        fake.take(),
        vec![
            Call::Chdir(PathBuf::from("/b/rootfs")),
            Call::PivotRoot { new_root: dot.clone(), put_old: dot.clone() },
            Call::Mount { source: None, target: dot.clone(), fstype: None, flags: MsFlags::MS_SLAVE | MsFlags::MS_REC, data: None },
            Call::Umount2 { target: dot, flags: MntFlags::MNT_DETACH },
            Call::Chdir(PathBuf::from("/")),
        ]
    );
    apply::finish(&fake, &plan).unwrap();
    let calls = fake.take();
    let m = |src: Option<&str>, target: &str, fstype: Option<&str>, flags| Call::Mount {
        source: src.map(PathBuf::from),
        target: PathBuf::from(target),
        fstype: fstype.map(str::to_owned),
        flags,
        data: None,
    };
    assert_eq!(
        calls,
        vec![
            m(Some("/proc/sys"), "/proc/sys", None, MsFlags::MS_BIND | MsFlags::MS_REC),
            m(None, "/proc/sys", None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY),
            m(Some("/dev/null"), "/proc/kcore", None, MsFlags::MS_BIND),
            m(Some("tmpfs"), "/proc/acpi", Some("tmpfs"), MsFlags::MS_RDONLY),
            m(None, "/", None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY),
        ]
    );
}
