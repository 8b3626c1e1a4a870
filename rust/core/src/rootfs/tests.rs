//! Mount planning, checked against the recording fake (no root needed).

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use oci_spec::runtime::Spec;

use super::*;
use crate::syscall::{Call, FileKind, RecordingSyscall, Syscall};

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
    assert_eq!(
        h[0],
        CgroupHierarchy {
            name: "cpu".into(),
            fstype: "cgroup".into(),
            data: "cpu".into()
        }
    );
    assert_eq!(h[1].fstype, "cgroup2");
    assert_eq!(h[2].data, "xattr,name=systemd");
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
            Call::Mount {
                target,
                fstype,
                flags,
                data,
                ..
            } => Some((target.clone(), fstype.clone(), *flags, data.clone())),
            _ => None,
        })
        .collect();
    let t = |s: &str| PathBuf::from(s);
    assert_eq!(
        mounts[0],
        (t("/"), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)
    );
    assert_eq!(
        mounts[1],
        (
            t("/b/rootfs"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None
        )
    );
    assert_eq!(
        mounts[2],
        (
            t("/b/rootfs/proc"),
            Some("proc".into()),
            MsFlags::empty(),
            None
        )
    );
    assert_eq!(
        mounts[3],
        (
            t("/b/rootfs/dev"),
            Some("tmpfs".into()),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k".into())
        )
    );
    // Bind: the mount, a remount for ro (ignored by MS_BIND), then propagation.
    assert_eq!(
        mounts[4],
        (
            t("/b/rootfs/data"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None
        )
    );
    assert_eq!(
        mounts[5],
        (
            t("/b/rootfs/data"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None
        )
    );
    assert_eq!(
        mounts[6],
        (
            t("/b/rootfs/data"),
            None,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None
        )
    );
    // cgroup: tmpfs, one mount per hierarchy (ro), then the tmpfs remounted ro.
    assert_eq!(mounts[7].0, t("/b/rootfs/sys/fs/cgroup"));
    assert_eq!(mounts[7].1.as_deref(), Some("tmpfs"));
    assert_eq!(mounts[8].0, t("/b/rootfs/sys/fs/cgroup/cpu"));
    assert_eq!(mounts[8].3.as_deref(), Some("cpu"));
    assert!(mounts[8].2.contains(MsFlags::MS_RDONLY));
    assert_eq!(mounts[9].1.as_deref(), Some("cgroup2"));
    assert_eq!(mounts[11].0, t("/b/rootfs/sys/fs/cgroup"));
    assert!(mounts[11]
        .2
        .contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY));
    assert_eq!(mounts.len(), 12);

    assert!(calls.contains(&Call::Mknod {
        path: t("/b/rootfs/dev/null"),
        kind: nix::sys::stat::SFlag::S_IFCHR,
        perm: nix::sys::stat::Mode::from_bits_truncate(0o666),
        dev: nix::sys::stat::makedev(1, 3),
    }));
    assert!(calls.contains(&Call::Chown {
        path: t("/b/rootfs/dev/fuse"),
        uid: Some(0),
        gid: Some(0)
    }));
    assert!(calls.contains(&Call::Symlink {
        target: t("pts/ptmx"),
        link: t("/b/rootfs/dev/ptmx")
    }));
    assert!(calls.contains(&Call::Touch(t("/b/rootfs/dev/console"))));
}

#[test]
fn mknod_eperm_falls_back_to_bind() {
    let mut plan = RootfsPlan::from_spec(&spec(), Path::new("/b"), &[]).unwrap();
    plan.mounts.clear();
    plan.devices.truncate(1);
    let fake = RecordingSyscall::new()
        .with_path("/b/rootfs", FileKind::Dir)
        .failing("mknod");
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
            Call::PivotRoot {
                new_root: dot.clone(),
                put_old: dot.clone()
            },
            Call::Mount {
                source: None,
                target: dot.clone(),
                fstype: None,
                flags: MsFlags::MS_SLAVE | MsFlags::MS_REC,
                data: None
            },
            Call::Umount2 {
                target: dot,
                flags: MntFlags::MNT_DETACH
            },
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
            m(
                Some("/proc/sys"),
                "/proc/sys",
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC
            ),
            m(
                None,
                "/proc/sys",
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY
            ),
            m(Some("/dev/null"), "/proc/kcore", None, MsFlags::MS_BIND),
            m(
                Some("tmpfs"),
                "/proc/acpi",
                Some("tmpfs"),
                MsFlags::MS_RDONLY
            ),
            m(
                None,
                "/",
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY
            ),
        ]
    );
}

fn mount_targets(calls: &[Call]) -> Vec<PathBuf> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Mount { target, .. } => Some(target.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn hostile_symlinks_keep_mounts_and_devices_inside_rootfs() {
    let spec: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "/b/rootfs"},
        "mounts": [
            {"destination": "/mnt/x", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro", "rprivate"]},
            {"destination": "/etc2/y", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}
        ]
    }))
    .unwrap();
    let plan = RootfsPlan::from_spec(&spec, Path::new("/b"), &[]).unwrap();
    let fake = RecordingSyscall::new()
        .with_path("/b/rootfs", FileKind::Dir)
        .with_path("/srv/data", FileKind::Dir)
        .with_link("/b/rootfs/mnt", "/")
        .with_link("/b/rootfs/etc2", "../../../../tmp/escape")
        // /dev itself a symlink out: device nodes and /dev symlinks follow it inside.
        .with_link("/b/rootfs/dev", "/../host-dev");
    apply::prepare(&fake, &plan).unwrap();
    let calls = fake.take();
    let t = |s: &str| PathBuf::from(s);
    let targets = mount_targets(&calls);
    // "/", the rootfs bind, then: bind + remount(ro) + propagation on /x.
    assert_eq!(
        targets[2..5],
        [t("/b/rootfs/x"), t("/b/rootfs/x"), t("/b/rootfs/x")]
    );
    assert_eq!(targets[5], t("/b/rootfs/tmp/escape/y"));
    assert_eq!(targets[6], t("/b/rootfs/host-dev"));
    assert!(calls.contains(&Call::MkdirAll(t("/b/rootfs/x"))));
    assert!(calls.contains(&Call::MkdirAll(t("/b/rootfs/tmp"))));
    assert!(calls.contains(&Call::MkdirAll(t("/b/rootfs/tmp/escape/y"))));
    assert!(calls
        .iter()
        .any(|c| matches!(c, Call::Mknod { path, .. } if path == &t("/b/rootfs/host-dev/null"))));
    assert!(calls.contains(&Call::Symlink {
        target: t("pts/ptmx"),
        link: t("/b/rootfs/host-dev/ptmx")
    }));
    // Every path any call touched is under the rootfs.
    for c in &calls {
        let p = match c {
            Call::Mount { target, .. } if target != Path::new("/") => target,
            Call::Mknod { path, .. } | Call::MkdirAll(path) | Call::Touch(path) => path,
            Call::Symlink { link, .. } => link,
            _ => continue,
        };
        assert!(p.starts_with("/b/rootfs"), "{c:?} escapes the rootfs");
    }
}

#[test]
fn fake_resolver_cases() {
    let fake = RecordingSyscall::new()
        .with_path("/r/a", FileKind::Dir)
        .with_path("/r/a/f", FileKind::Other)
        .with_link("/r/root", "/")
        .with_link("/r/a/up", "../../..")
        .with_link("/r/chain1", "/chain2")
        .with_link("/r/chain2", "a/../root/a")
        .with_link("/r/loop1", "/loop2")
        .with_link("/r/loop2", "loop1");
    let r = |p: &str| {
        fake.resolve_in_root(Path::new("/r"), Path::new(p), None)
            .map(|x| x.path().to_owned())
    };
    assert_eq!(r("/root/root/a").unwrap(), PathBuf::from("/r/a"));
    assert_eq!(r("/a/up/a/f").unwrap(), PathBuf::from("/r/a/f"));
    assert_eq!(r("/../../a").unwrap(), PathBuf::from("/r/a"));
    assert_eq!(r("/chain1/f").unwrap(), PathBuf::from("/r/a/f"));
    assert_eq!(r("/root").unwrap(), PathBuf::from("/r"));
    assert_eq!(r("/loop1/x").unwrap_err().errno(), Some(libc::ELOOP));
    assert_eq!(r("/nope").unwrap_err().errno(), Some(libc::ENOENT));
    assert_eq!(r("/a/f/g").unwrap_err().errno(), Some(libc::ENOTDIR));
    assert!(
        fake.take().is_empty(),
        "lookups without create create nothing"
    );

    let got = fake
        .resolve_in_root(
            Path::new("/r"),
            Path::new("/a/up/new/dir/file"),
            Some(FileKind::Other),
        )
        .unwrap();
    assert_eq!(got.path(), Path::new("/r/new/dir/file"));
    assert_eq!(
        fake.take(),
        vec![
            Call::MkdirAll(PathBuf::from("/r/new")),
            Call::MkdirAll(PathBuf::from("/r/new/dir")),
            Call::Touch(PathBuf::from("/r/new/dir/file")),
        ]
    );
}

/// The real O_PATH walk, on a temp dir (no root needed): `host/` sits next to
/// the rootfs and stands for the host; nothing may ever appear in it.
mod real {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::rootfs::resolve::{walk, FdTree};

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            std::fs::create_dir_all(root.join("a/b")).unwrap();
            std::fs::create_dir_all(dir.path().join("host")).unwrap();
            std::fs::write(root.join("a/f"), "").unwrap();
            symlink("/", root.join("slash")).unwrap();
            symlink("../../..", root.join("a/b/up")).unwrap();
            symlink("../../../../host/escape", root.join("evil")).unwrap();
            // Absolute chain: abs1 -> /abs2 -> /a/b (the host's /abs2 and
            // /a/b must not matter).
            symlink("/abs2", root.join("abs1")).unwrap();
            symlink("/a/b", root.join("abs2")).unwrap();
            // An absolute link naming the host dir by its real path.
            symlink(dir.path().join("host"), root.join("hostabs")).unwrap();
            symlink("loop2", root.join("loop1")).unwrap();
            symlink("/loop1", root.join("loop2")).unwrap();
            Fixture { dir }
        }
        fn root(&self) -> PathBuf {
            self.dir.path().join("root")
        }
        /// Resolve and report the host path the descriptor ended up on.
        fn resolve(&self, path: &str, create: Option<FileKind>) -> std::io::Result<PathBuf> {
            let root = self.root();
            let fd = walk(&FdTree { root: &root }, Path::new(path), create)?;
            Ok(std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap())
        }
        fn host_is_empty(&self) -> bool {
            std::fs::read_dir(self.dir.path().join("host"))
                .unwrap()
                .next()
                .is_none()
        }
    }

    /// What the kernel's own scoped lookup says, to check the walk agrees.
    fn openat2_in_root(root: &Path, path: &str) -> Option<PathBuf> {
        let rootc = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: NUL-terminated path; fresh fd owned below.
        let rfd = unsafe {
            libc::open(
                rootc.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        assert!(rfd >= 0);
        // SAFETY: fresh descriptor.
        let rfd = unsafe { OwnedFd::from_raw_fd(rfd) };
        // SAFETY: open_how is plain integers; all-zero is valid.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        let c = std::ffi::CString::new(path).unwrap();
        // SAFETY: valid pointers and size for openat2.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                rfd.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fresh descriptor from openat2.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Some(std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap())
    }

    #[test]
    fn existing_paths_resolve_like_openat2_resolve_in_root() {
        let f = Fixture::new();
        let root = f.root();
        let cases = [
            ("/slash/slash/a", "a"),
            ("/a/b/up/a/f", "a/f"),
            ("/../../../a/b", "a/b"),
            ("/abs1", "a/b"),
            ("/abs1/up/abs1/../f", "a/f"),
            ("/slash", ""),
        ];
        for (path, want) in cases {
            let got = f.resolve(path, None).unwrap();
            let want = if want.is_empty() {
                root.clone()
            } else {
                root.join(want)
            };
            assert_eq!(got, want, "{path}");
            assert_eq!(
                openat2_in_root(&root, path),
                Some(want),
                "openat2 disagrees on {path}"
            );
        }
    }

    #[test]
    fn errors_loop_missing_notdir() {
        let f = Fixture::new();
        assert_eq!(
            f.resolve("/loop1", None).unwrap_err().raw_os_error(),
            Some(libc::ELOOP)
        );
        assert_eq!(
            f.resolve("/loop1/x", Some(FileKind::Dir))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ELOOP)
        );
        assert_eq!(
            f.resolve("/a/missing", None).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
        assert_eq!(
            f.resolve("/a/f/x", Some(FileKind::Dir))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOTDIR)
        );
        assert!(f.host_is_empty());
    }

    #[test]
    fn missing_components_are_created_inside() {
        let f = Fixture::new();
        let root = f.root();
        // Dangling relative link climbing out: created at <root>/host/escape.
        let got = f.resolve("/evil/y", Some(FileKind::Dir)).unwrap();
        assert_eq!(got, root.join("host/escape/y"));
        assert!(root.join("host/escape/y").is_dir());
        // Absolute link naming the real host dir: lands under the rootfs.
        let got = f.resolve("/hostabs/file", Some(FileKind::Other)).unwrap();
        let inner = root.join(f.dir.path().join("host/file").strip_prefix("/").unwrap());
        assert_eq!(got, inner);
        assert!(inner.is_file());
        // Through `slash` and `up`: a file and its parents.
        let got = f
            .resolve("/slash/a/b/up/new/sub/file", Some(FileKind::Other))
            .unwrap();
        assert_eq!(got, root.join("new/sub/file"));
        assert!(root.join("new/sub/file").is_file());
        // Existing entries are reused, not replaced.
        assert_eq!(
            f.resolve("/a/f", Some(FileKind::Other)).unwrap(),
            root.join("a/f")
        );
        assert!(
            f.host_is_empty(),
            "something was created outside the rootfs"
        );
    }
}
