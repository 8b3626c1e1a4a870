//! v2 against a temp-dir tree laid out like cgroupfs (STYLE habit 19).
//! Interface files are created up front because mkdir on a real cgroupfs
//! creates them, while on tmpfs it does not.

use std::fs;
use std::path::Path;

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};

use super::*;
use crate::cgroups::create_manager_at;

const LEAF_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.controllers",
    "cgroup.subtree_control",
    "cgroup.freeze",
    "cgroup.events",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "memory.current",
    "memory.events",
    "cpu.weight",
    "cpu.max",
    "cpu.stat",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "pids.current",
];

fn fake_tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma\n",
    )
    .unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    fs::create_dir_all(root.join("moorage/c1")).unwrap();
    fs::write(
        root.join("moorage/cgroup.controllers"),
        "cpuset cpu memory pids\n",
    )
    .unwrap();
    fs::write(root.join("moorage/cgroup.subtree_control"), "").unwrap();
    for f in LEAF_FILES {
        fs::write(root.join("moorage/c1").join(f), "").unwrap();
    }
    d
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

#[test]
fn weight_conversion_matches_runc() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(0), 1);
}

#[test]
fn cpu_max_and_swap_conversion() {
    assert_eq!(
        cpu::max_line(Some(50_000), None).as_deref(),
        Some("50000 100000")
    );
    assert_eq!(
        cpu::max_line(Some(-1), Some(20_000)).as_deref(),
        Some("max 20000")
    );
    assert_eq!(cpu::max_line(None, None), None);
    assert_eq!(
        memory::swap_max(Some(100), 300).unwrap().as_deref(),
        Some("200")
    );
    assert_eq!(
        memory::swap_max(Some(100), -1).unwrap().as_deref(),
        Some("max")
    );
    assert_eq!(memory::swap_max(Some(100), 0).unwrap(), None);
    assert!(memory::swap_max(Some(100), 50).is_err());
    assert!(memory::swap_max(None, 50).is_err());
}

#[test]
fn apply_set_stats_destroy() {
    let d = fake_tree();
    let root = d.path();
    let m = create_manager_at(root, "/moorage/c1").unwrap();
    let leaf = root.join("moorage/c1");
    assert_eq!(m.paths(), vec![leaf.clone()]);

    m.apply(4242).unwrap();
    assert_eq!(read(&leaf.join("cgroup.procs")), "4242");
    // hugetlb/rdma are not managed; the others are enabled at every level
    // above the leaf where offered (io is not offered below the root here).
    assert_eq!(
        read(&root.join("cgroup.subtree_control")),
        "+cpu +cpuset +memory +pids +io"
    );
    assert_eq!(
        read(&root.join("moorage/cgroup.subtree_control")),
        "+cpu +cpuset +memory +pids"
    );
    assert_eq!(read(&leaf.join("cgroup.subtree_control")), "");

    let res = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1 << 20)
                .swap(3 << 20)
                .reservation(1 << 19)
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
        .pids(LinuxPidsBuilder::default().limit(64).build().unwrap())
        .build()
        .unwrap();
    m.set(&res).unwrap();
    assert_eq!(read(&leaf.join("memory.max")), "1048576");
    assert_eq!(read(&leaf.join("memory.swap.max")), "2097152");
    assert_eq!(read(&leaf.join("memory.low")), "524288");
    assert_eq!(read(&leaf.join("cpu.weight")), "20");
    assert_eq!(read(&leaf.join("cpu.max")), "50000 100000");
    assert_eq!(read(&leaf.join("cpuset.cpus")), "0");
    assert_eq!(read(&leaf.join("pids.max")), "64");

    fs::write(leaf.join("memory.current"), "4096\n").unwrap();
    fs::write(
        leaf.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n",
    )
    .unwrap();
    fs::write(leaf.join("pids.current"), "3\n").unwrap();
    fs::write(leaf.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
    fs::write(leaf.join("memory.stat"), "anon 100\ninactive_file 512\n").unwrap();
    fs::write(
        leaf.join("io.stat"),
        "254:0 rbytes=7 wbytes=9 rios=1 wios=1\n",
    )
    .unwrap();
    fs::write(leaf.join("cgroup.procs"), "1\n22\n").unwrap();
    let s = m.stats().unwrap();
    assert_eq!(s.memory_usage, Some(4096));
    assert_eq!(s.memory_limit, Some(1 << 20));
    assert_eq!(s.oom_kills, 2);
    assert_eq!(s.pids_current, Some(3));
    assert_eq!(s.cpu_usage_ns, Some(1_500_000));
    assert_eq!(s.memory_inactive_file, Some(512));
    assert_eq!((s.io_read_bytes, s.io_write_bytes), (Some(7), Some(9)));
    assert_eq!(s.pids_limit, Some(64));
    assert_eq!(m.pids().unwrap(), vec![1, 22]);

    // The fake tree cannot delete interface files on rmdir; empty it first.
    for f in LEAF_FILES.iter().chain(&["memory.stat", "io.stat"]) {
        fs::remove_file(leaf.join(f)).unwrap();
    }
    m.destroy().unwrap();
    assert!(!leaf.exists());
    m.destroy().unwrap(); // already gone is fine
}

#[test]
fn freeze_waits_for_events() {
    let d = fake_tree();
    let m = Manager::new(d.path(), "/moorage/c1").unwrap();
    let leaf = d.path().join("moorage/c1");
    fs::write(leaf.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    m.freeze().unwrap();
    assert_eq!(read(&leaf.join("cgroup.freeze")), "1");
    fs::write(leaf.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    m.thaw().unwrap();
    assert_eq!(read(&leaf.join("cgroup.freeze")), "0");
}

#[test]
fn freeze_times_out_and_thaws_back() {
    let d = fake_tree();
    let m = Manager::new(d.path(), "/moorage/c1").unwrap();
    let leaf = d.path().join("moorage/c1");
    fs::write(leaf.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    let err = m.freeze().unwrap_err();
    assert!(matches!(err, CgroupError::Timeout { .. }), "{err}");
    assert_eq!(read(&leaf.join("cgroup.freeze")), "0");
}

#[test]
fn missing_controller_is_an_error() {
    let d = fake_tree();
    let m = Manager::with_controllers(d.path(), "/moorage/c1", vec!["cpu".into()]).unwrap();
    let res = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .build()
        .unwrap();
    assert!(matches!(m.set(&res), Err(CgroupError::Unsupported(_))));
}

/// The real cgroup2 mount of this host (the hybrid `unified` one, or
/// `/sys/fs/cgroup` on a pure v2 host), for what v2 does without any
/// controller: placement, cgroup.freeze, cgroup.procs, rmdir.
fn real_v2_root() -> Option<std::path::PathBuf> {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: real cgroup v2 tests need root");
        return None;
    }
    let layout = crate::cgroups::Layout::detect().ok()?;
    let root = layout.unified.clone();
    if root.is_none() {
        eprintln!("skipped: no cgroup2 mount on this host");
    }
    root
}

/// Kills the child and removes the test cgroups on drop, also after a failed assertion.
struct RealGuard {
    child: Option<std::process::Child>,
    top: std::path::PathBuf,
}

impl Drop for RealGuard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = fs::write(self.top.join("c1/cgroup.freeze"), "0");
        let _ = fs::remove_dir(self.top.join("c1"));
        let _ = fs::remove_dir(&self.top);
    }
}

#[test]
fn real_v2_placement_freeze_and_destroy() {
    let Some(root) = real_v2_root() else { return };
    let top_name = format!("moorage-v2test-{}", std::process::id());
    let mut g = RealGuard {
        child: None,
        top: root.join(&top_name),
    };
    // No controllers: on a hybrid host v1 serves them; what is left is v2's own.
    let m = Manager::with_controllers(&root, &format!("/{top_name}/c1"), Vec::new()).unwrap();
    let child = std::process::Command::new("/bin/sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    g.child = Some(child);

    m.apply(pid).unwrap();
    assert_eq!(m.paths(), vec![g.top.join("c1")]);
    assert_eq!(m.pids().unwrap(), vec![pid]);
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        own.lines()
            .any(|l| l.starts_with("0::") && l.ends_with(&format!("/{top_name}/c1"))),
        "{own}"
    );

    m.freeze().unwrap();
    assert!(read_keyed_frozen(&g.top.join("c1")));
    m.thaw().unwrap();
    assert!(!read_keyed_frozen(&g.top.join("c1")));

    // Busy while the task lives: destroy must fail, not pretend.
    assert!(m.destroy().is_err());
    if let Some(mut c) = g.child.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    m.destroy().unwrap();
    assert!(!g.top.join("c1").exists());
}

fn read_keyed_frozen(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.events"))
        .unwrap()
        .lines()
        .any(|l| l == "frozen 1")
}

#[test]
fn io_stat_sums_reads_and_writes_over_devices() {
    let text = "254:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n\
                8:16 rbytes=10 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n";
    assert_eq!(io::parse_io_stat(text), (1034, 2048));
    assert_eq!(io::parse_io_stat(""), (0, 0));
}
