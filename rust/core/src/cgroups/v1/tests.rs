//! v1 on the real cgroupfs of this host (root only; skipped with a message
//! otherwise). Every test works below a unique `/moorage-test-<pid>-<n>` and
//! removes it, and kills what it started, even when an assertion fails.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

use crate::cgroups::{create_manager, Layout};

static N: AtomicUsize = AtomicUsize::new(0);

fn v1_host() -> Option<Layout> {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: v1 cgroup tests need root");
        return None;
    }
    let l = Layout::detect().unwrap();
    if !l.v1.contains_key("memory") {
        eprintln!("skipped: no v1 memory hierarchy on this host");
        return None;
    }
    Some(l)
}

/// Kills the child and removes the test cgroups on drop.
struct Guard {
    child: Option<Child>,
    top: String,
    mounts: Vec<PathBuf>,
}

impl Guard {
    fn new(layout: &Layout) -> Guard {
        let top = format!(
            "moorage-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut mounts: Vec<PathBuf> = layout.v1.values().cloned().collect();
        mounts.dedup();
        Guard {
            child: None,
            top,
            mounts,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        for m in &self.mounts {
            let top = m.join(&self.top);
            if let Ok(rd) = fs::read_dir(&top) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        let _ = fs::remove_dir(e.path());
                    }
                }
            }
            let _ = fs::remove_dir(&top);
        }
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap().trim().to_string()
}

fn resources() -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .swap(128 << 20)
                .reservation(32 << 20)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000)
                .period(100_000u64)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(32).build().unwrap())
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .access("rwm")
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap()
}

#[test]
fn real_v1_lifecycle() {
    let Some(layout) = v1_host() else { return };
    let mut g = Guard::new(&layout);
    // Nested, so cpuset has to fill an intermediate level too.
    let path = format!("/{}/c1", g.top);
    let m = create_manager(&path).unwrap();
    let mem = layout.v1["memory"].join(&g.top).join("c1");
    assert!(m.paths().contains(&mem));

    let child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    g.child = Some(child);

    m.set(&resources()).unwrap();
    m.apply(pid).unwrap();
    assert_eq!(
        read(&mem.join("memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(&mem.join("memory.memsw.limit_in_bytes")),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        read(&mem.join("memory.soft_limit_in_bytes")),
        (32u64 << 20).to_string()
    );
    let cpu = layout.v1["cpu"].join(&g.top).join("c1");
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    let cpuset = layout.v1["cpuset"].join(&g.top).join("c1");
    assert_eq!(read(&cpuset.join("cpuset.cpus")), "0");
    assert!(!read(&layout.v1["cpuset"].join(&g.top).join("cpuset.mems")).is_empty());
    assert_eq!(
        read(&layout.v1["pids"].join(&g.top).join("c1/pids.max")),
        "32"
    );
    assert_eq!(
        read(&layout.v1["devices"].join(&g.top).join("c1/devices.list")),
        "c 1:3 rwm"
    );

    assert_eq!(m.pids().unwrap(), vec![pid]);
    for p in m.paths() {
        let procs = read(&p.join("cgroup.procs"));
        assert_eq!(procs, pid.to_string(), "{}", p.display());
    }
    let s = m.stats().unwrap();
    assert_eq!(s.memory_limit, Some(64 << 20));
    assert_eq!(s.pids_current, Some(1));
    assert_eq!(s.pids_limit, Some(32));
    assert!(s.memory_inactive_file.is_some());
    assert_eq!((s.io_read_bytes, s.io_write_bytes), (None, None)); // blkio is not joined on v1
    assert_eq!(s.oom_kills, 0);
    assert!(s.cpu_usage_ns.is_some());

    m.freeze().unwrap();
    assert_eq!(
        read(&layout.v1["freezer"].join(&g.top).join("c1/freezer.state")),
        "FROZEN"
    );
    m.thaw().unwrap();
    assert_eq!(
        read(&layout.v1["freezer"].join(&g.top).join("c1/freezer.state")),
        "THAWED"
    );

    // Busy while the task lives: destroy must fail, not pretend.
    assert!(m.destroy().is_err());
    if let Some(mut c) = g.child.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    m.destroy().unwrap();
    for p in m.paths() {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    m.destroy().unwrap();
}

#[test]
fn real_v1_oom_kill_is_counted() {
    let Some(layout) = v1_host() else { return };
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipped: /bin/busybox missing");
        return;
    }
    let mut g = Guard::new(&layout);
    let m = create_manager(&format!("/{}", g.top)).unwrap();
    let res = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(16 << 20)
                .swap(16 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    m.set(&res).unwrap();
    // The shell waits on stdin so it is inside the cgroup before dd
    // allocates its 64 MiB buffer.
    let mut child = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            "read x; exec /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let stdin = child.stdin.take();
    g.child = Some(child);
    m.apply(pid).unwrap();
    stdin.unwrap().write_all(b"go\n").unwrap();
    let status = g.child.as_mut().unwrap().wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "dd should be OOM-killed: {status:?}"
    );
    assert!(m.stats().unwrap().oom_kills >= 1);
    g.child = None;
    m.destroy().unwrap();
}

#[test]
fn empty_path_is_disabled_and_root_is_refused() {
    let m = create_manager("").unwrap();
    assert!(m.paths().is_empty());
    m.apply(1).unwrap();
    assert_eq!(m.stats().unwrap().oom_kills, 0);
    assert!(create_manager("/").is_err());
    assert!(create_manager("/../etc").is_err());
}

#[test]
fn device_rule_lines() {
    use super::devices::rule_line;
    let all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .build()
        .unwrap();
    assert_eq!(rule_line(&all), "a *:* rwm");
    let any_minor = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::B)
        .major(8)
        .access("r")
        .build()
        .unwrap();
    assert_eq!(rule_line(&any_minor), "b 8:* r");
}
