//! A hostile image must not make mounts, directories or device nodes land
//! outside its rootfs: `mnt -> /` and `etc2 -> ../../../../tmp/escape-<pid>`
//! symlinks are followed inside the rootfs, never on the host. Needs root;
//! skips otherwise. Everything created is removed by guards, even on failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_moorage-runtime");
const APPLETS: &[&str] = &["sh", "cat", "grep", "ls", "test", "["];

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping: integration tests need root");
    }
    root && Path::new("/bin/busybox").exists()
}

/// Host paths the container would create if it escaped; removed on drop if
/// they appear anyway (only if empty, so nothing pre-existing is lost), and
/// the container is force-deleted.
struct Guard {
    bundle: tempfile::TempDir,
    id: &'static str,
    escapes: Vec<PathBuf>,
}

impl Guard {
    fn state_root(&self) -> PathBuf {
        self.bundle.path().join("state")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .arg("--root")
            .arg(self.state_root())
            .args(["delete", "--force", self.id])
            .output();
        for p in &self.escapes {
            // Deepest first: an escaped /etc2/y mount point lives in the
            // escape target. remove_dir only removes empty directories.
            let _ = std::fs::remove_dir(p.join("y"));
            let _ = std::fs::remove_dir(p);
            if std::fs::symlink_metadata(p).is_ok_and(|m| !m.is_dir()) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn symlinks_in_rootfs_cannot_redirect_mounts_to_the_host() {
    if !is_root() {
        return;
    }
    let pid = std::process::id();
    let escape = PathBuf::from(format!("/tmp/escape-{pid}"));
    let host_x = PathBuf::from("/x");
    let host_dev = PathBuf::from(format!("/devnull2-{pid}"));
    for p in [&escape, &host_x, &host_dev] {
        assert!(
            std::fs::symlink_metadata(p).is_err(),
            "{} exists on the host already; cannot test",
            p.display()
        );
    }
    let guard = Guard {
        bundle: tempfile::tempdir().unwrap(),
        id: "escape",
        escapes: vec![escape.clone(), host_x.clone(), host_dev.clone()],
    };
    let bundle = guard.bundle.path();
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "proc", "dev", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    // The hostile part of the image. etc2 climbs far enough to reach the
    // host's / from <bundle>/rootfs whatever the temp dir's depth.
    std::os::unix::fs::symlink("/", rootfs.join("mnt")).unwrap();
    let climb = "../".repeat(bundle.components().count() + 4);
    std::os::unix::fs::symlink(format!("{climb}tmp/escape-{pid}"), rootfs.join("etc2")).unwrap();

    let hostsrc = bundle.join("hostsrc");
    std::fs::create_dir(&hostsrc).unwrap();
    std::fs::write(hostsrc.join("marker"), "from-host\n").unwrap();

    let script = format!(
        "cat /x/marker; \
         grep -q ' /x ' /proc/self/mountinfo && echo x-mounted; \
         grep ' /tmp/escape-{pid}/y ' /proc/self/mountinfo | grep -q tmpfs && echo y-tmpfs; \
         [ -c /devnull2-{pid} ] && echo dev-inside; \
         ls -d /x /tmp/escape-{pid}/y"
    );
    let config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", script],
            "env": ["PATH=/bin"],
            "cwd": "/"
        },
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/mnt/x", "type": "bind", "source": hostsrc, "options": ["rbind", "ro", "rprivate"]},
            {"destination": "/etc2/y", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "devices": [{"path": format!("/mnt/devnull2-{pid}"), "type": "c", "major": 1, "minor": 3, "fileMode": 438}]
        }
    });
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();

    let o = Command::new(BIN)
        .arg("--root")
        .arg(guard.state_root())
        .args(["run", "--bundle", bundle.to_str().unwrap(), guard.id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {out}\nstderr: {}",
        stderr(&o)
    );
    assert_eq!(
        out,
        format!("from-host\nx-mounted\ny-tmpfs\ndev-inside\n/tmp/escape-{pid}/y\n/x\n"),
        "stderr: {}",
        stderr(&o)
    );

    // Nothing on the host; everything in the rootfs instead.
    for p in [&escape, &host_x, &host_dev] {
        assert!(
            std::fs::symlink_metadata(p).is_err(),
            "{} appeared on the host",
            p.display()
        );
    }
    assert!(rootfs.join("x").is_dir());
    assert!(rootfs.join(format!("tmp/escape-{pid}/y")).is_dir());
    // `mnt -> /` resolved inside the rootfs puts the node in the rootfs's /.
    assert!(std::fs::symlink_metadata(rootfs.join(format!("devnull2-{pid}"))).is_ok());
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(bundle.to_str().unwrap()), "mount left behind");
    assert!(
        !mi.contains(&format!("/tmp/escape-{pid}")),
        "mount on the host"
    );
    assert!(
        !guard.state_root().join(guard.id).exists(),
        "state dir left behind"
    );
}
