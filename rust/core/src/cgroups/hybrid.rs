//! Hybrid layout where some managed controllers exist only on the cgroup2
//! mount: the v1 manager handles the v1 ones, a v2 manager restricted to
//! the rest handles those. (On this VM the cgroup2 mount has only hugetlb,
//! so `create_manager` returns a plain v1 manager instead.)

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use super::{v1, v2, Manager, Result, Stats};

#[derive(Debug, Clone)]
pub struct Hybrid {
    v1: v1::Manager,
    v2: v2::Manager,
    /// Whether the v1 freezer is mounted; if not, cgroup.freeze on v2 is used.
    v1_freezer: bool,
}

impl Hybrid {
    pub fn new(v1: v1::Manager, v2: v2::Manager, v1_freezer: bool) -> Hybrid {
        Hybrid { v1, v2, v1_freezer }
    }
}

impl Manager for Hybrid {
    fn apply(&self, pid: i32) -> Result<()> {
        self.v1.apply(pid)?;
        self.v2.apply(pid)
    }
    fn set(&self, r: &LinuxResources) -> Result<()> {
        // Each side writes only the controllers it holds; a resource whose
        // controller is on the other side must not fail here, so split.
        let mut for_v1 = r.clone();
        let mut for_v2 = r.clone();
        for_v2.set_devices(None);
        let v2_has = |c: &str| self.v2_has(c);
        if v2_has("memory") {
            for_v1.set_memory(None);
        } else {
            for_v2.set_memory(None);
        }
        if v2_has("pids") {
            for_v1.set_pids(None);
        } else {
            for_v2.set_pids(None);
        }
        if let Some(cpu) = r.cpu() {
            let mut c1 = cpu.clone();
            let mut c2 = cpu.clone();
            if v2_has("cpu") {
                c1.set_shares(None).set_quota(None).set_period(None);
            } else {
                c2.set_shares(None).set_quota(None).set_period(None);
            }
            if v2_has("cpuset") {
                c1.set_cpus(None).set_mems(None);
            } else {
                c2.set_cpus(None).set_mems(None);
            }
            for_v1.set_cpu(Some(c1));
            for_v2.set_cpu(Some(c2));
        }
        self.v1.set(&for_v1)?;
        self.v2.set(&for_v2)
    }
    fn freeze(&self) -> Result<()> {
        if self.v1_freezer {
            self.v1.freeze()
        } else {
            self.v2.freeze()
        }
    }
    fn thaw(&self) -> Result<()> {
        if self.v1_freezer {
            self.v1.thaw()
        } else {
            self.v2.thaw()
        }
    }
    fn pids(&self) -> Result<Vec<i32>> {
        self.v2.pids()
    }
    fn stats(&self) -> Result<Stats> {
        let a = self.v1.stats()?;
        let b = self.v2.stats()?;
        Ok(Stats {
            memory_usage: a.memory_usage.or(b.memory_usage),
            memory_limit: a.memory_limit.or(b.memory_limit),
            memory_inactive_file: a.memory_inactive_file.or(b.memory_inactive_file),
            oom_kills: a.oom_kills.max(b.oom_kills),
            pids_current: a.pids_current.or(b.pids_current),
            pids_limit: a.pids_limit.or(b.pids_limit),
            cpu_usage_ns: a.cpu_usage_ns.or(b.cpu_usage_ns),
            io_read_bytes: a.io_read_bytes.or(b.io_read_bytes),
            io_write_bytes: a.io_write_bytes.or(b.io_write_bytes),
        })
    }
    fn destroy(&self) -> Result<()> {
        let r1 = self.v1.destroy();
        let r2 = self.v2.destroy();
        r1.and(r2)
    }
    fn paths(&self) -> Vec<PathBuf> {
        let mut p = self.v1.paths();
        p.extend(self.v2.paths());
        p
    }
}

impl Hybrid {
    fn v2_has(&self, c: &str) -> bool {
        self.v2.controllers().iter().any(|x| x == c)
    }
}
