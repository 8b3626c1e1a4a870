//! cgroup v2 (unified hierarchy).
//!
//! Controllers are enabled top-down through each ancestor's
//! `cgroup.subtree_control`. Limitation: device rules
//! (`linux.resources.devices`) need an eBPF program attached to the cgroup
//! on v2; this manager does not load one, so on a pure v2 host device
//! access is restricted only by the device nodes the runtime creates.

mod cpu;
mod cpuset;
mod freezer;
mod io;
mod memory;

pub use cpu::shares_to_weight;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::common::{create_dir, join, read_pids, read_string, remove_dir, write_file};
use super::layout::MANAGED_V2;
use super::{v1, CgroupError, Manager as ManagerTrait, Result, Stats};

#[derive(Debug, Clone)]
pub struct Manager {
    root: PathBuf,
    dir: PathBuf,
    /// v2 controllers this manager enables and writes (on a hybrid host
    /// only those not served by v1).
    controllers: Vec<String>,
}

impl Manager {
    /// Manager for `cgroups_path` under the cgroup2 mount `root`, using the
    /// managed controllers `root/cgroup.controllers` offers. `root` may be a
    /// temp dir laid out like cgroupfs (tests).
    pub fn new(root: &Path, cgroups_path: &str) -> Result<Manager> {
        let avail = read_string(&root.join("cgroup.controllers"))?;
        let controllers = MANAGED_V2
            .iter()
            .filter(|c| avail.split_whitespace().any(|a| a == **c))
            .map(|c| c.to_string())
            .collect();
        Manager::with_controllers(root, cgroups_path, controllers)
    }

    pub fn with_controllers(
        root: &Path,
        cgroups_path: &str,
        controllers: Vec<String>,
    ) -> Result<Manager> {
        Ok(Manager {
            root: root.to_path_buf(),
            dir: join(root, cgroups_path)?,
            controllers,
        })
    }

    pub fn controllers(&self) -> &[String] {
        &self.controllers
    }

    fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }

    fn need(&self, c: &str, what: &str) -> Result<()> {
        if self.has(c) {
            Ok(())
        } else {
            Err(CgroupError::Unsupported(format!(
                "{what}: the {c} controller is not available on cgroup v2"
            )))
        }
    }

    /// Create the leaf and enable our controllers in every ancestor's
    /// subtree_control (root included, leaf excluded: a cgroup with
    /// processes cannot also delegate controllers — "no internal processes").
    fn create(&self) -> Result<()> {
        create_dir(&self.dir)?;
        let Ok(rel) = self.dir.strip_prefix(&self.root) else {
            return Err(CgroupError::InvalidPath(self.dir.display().to_string()));
        };
        let mut cur = self.root.clone();
        let comps: Vec<_> = rel.components().collect();
        for comp in &comps {
            let avail = read_string(&cur.join("cgroup.controllers"))?;
            let line = self
                .controllers
                .iter()
                .filter(|c| avail.split_whitespace().any(|a| a == c.as_str()))
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            if !line.is_empty() {
                // One write for all: the kernel applies each token in turn.
                write_file(&cur.join("cgroup.subtree_control"), &line)?;
            }
            cur.push(comp);
        }
        Ok(())
    }
}

impl ManagerTrait for Manager {
    fn apply(&self, pid: i32) -> Result<()> {
        self.create()?;
        write_file(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        self.create()?;
        if let Some(m) = r.memory() {
            self.need("memory", "memory limits")?;
            memory::set(&self.dir, m)?;
        }
        if let Some(c) = r.cpu() {
            if c.shares().is_some() || c.quota().is_some() || c.period().is_some() {
                self.need("cpu", "cpu weight/max")?;
                cpu::set(&self.dir, c)?;
            }
            if c.cpus().is_some() || c.mems().is_some() {
                self.need("cpuset", "cpuset")?;
                cpuset::set(&self.dir, c)?;
            }
        }
        if let Some(p) = r.pids() {
            self.need("pids", "pids limit")?;
            v1::pids::set(&self.dir, p)?;
        }
        // Devices: see the module doc (needs eBPF; not done).
        Ok(())
    }

    fn freeze(&self) -> Result<()> {
        freezer::set(&self.dir, true)
    }

    fn thaw(&self) -> Result<()> {
        freezer::set(&self.dir, false)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        read_pids(&self.dir.join("cgroup.procs"))
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if self.has("memory") {
            memory::stats(&self.dir, &mut s)?;
        }
        if self.has("pids") {
            v1::pids::stats(&self.dir, &mut s)?;
        }
        if self.has("cpu") {
            cpu::stats(&self.dir, &mut s)?;
        }
        if self.has("io") {
            io::stats(&self.dir, &mut s)?;
        }
        Ok(s)
    }

    fn destroy(&self) -> Result<()> {
        remove_dir(&self.dir)
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }
}

#[cfg(test)]
mod tests;
