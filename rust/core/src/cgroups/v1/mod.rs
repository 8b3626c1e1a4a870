//! cgroup v1: one hierarchy per controller (or per co-mounted group such as
//! `cpu,cpuacct`), the container's cgroup is the same relative path in each.

mod cpu;
mod cpuacct;
mod cpuset;
pub(crate) mod devices;
mod freezer;
mod memory;
pub(crate) mod pids;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::common::{create_dir, join, read_pids, remove_dir, write_file};
use super::{CgroupError, Manager as ManagerTrait, Result, Stats};

#[derive(Debug, Clone)]
struct Controller {
    mount: PathBuf,
    dir: PathBuf,
}

/// A container's cgroup on the v1 hierarchies given at construction.
#[derive(Debug, Clone)]
pub struct Manager {
    controllers: BTreeMap<String, Controller>,
}

impl Manager {
    /// `mounts`: controller name → hierarchy mount point (see
    /// `Layout::v1`); `cgroups_path`: OCI `linux.cgroupsPath`.
    pub fn new(mounts: &BTreeMap<String, PathBuf>, cgroups_path: &str) -> Result<Manager> {
        let mut controllers = BTreeMap::new();
        for (name, mount) in mounts {
            let dir = join(mount, cgroups_path)?;
            controllers.insert(
                name.clone(),
                Controller {
                    mount: mount.clone(),
                    dir,
                },
            );
        }
        Ok(Manager { controllers })
    }

    fn dir(&self, name: &str) -> Option<&Path> {
        self.controllers.get(name).map(|c| c.dir.as_path())
    }

    fn need(&self, name: &str, what: &str) -> Result<&Path> {
        self.dir(name).ok_or_else(|| {
            CgroupError::Unsupported(format!("{what}: the {name} controller is not mounted"))
        })
    }

    fn create(&self) -> Result<()> {
        for (name, c) in &self.controllers {
            if name == "cpuset" {
                cpuset::create(&c.mount, &c.dir)?;
            } else {
                create_dir(&c.dir)?;
            }
        }
        Ok(())
    }

    /// Distinct directories (co-mounted controllers share one).
    fn unique_dirs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.controllers.values().map(|c| c.dir.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

impl ManagerTrait for Manager {
    fn apply(&self, pid: i32) -> Result<()> {
        self.create()?;
        for dir in self.unique_dirs() {
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        self.create()?;
        if let Some(m) = r.memory() {
            memory::set(self.need("memory", "memory limits")?, m)?;
        }
        if let Some(c) = r.cpu() {
            if c.shares().is_some() || c.quota().is_some() || c.period().is_some() {
                cpu::set(self.need("cpu", "cpu shares/quota")?, c)?;
            }
            if c.cpus().is_some() || c.mems().is_some() {
                cpuset::set(self.need("cpuset", "cpuset")?, c)?;
            }
        }
        if let Some(p) = r.pids() {
            pids::set(self.need("pids", "pids limit")?, p)?;
        }
        if let Some(d) = r.devices() {
            if !d.is_empty() {
                devices::set(self.need("devices", "device rules")?, d)?;
            }
        }
        Ok(())
    }

    fn freeze(&self) -> Result<()> {
        freezer::set_state(self.need("freezer", "freeze")?, "FROZEN")
    }

    fn thaw(&self) -> Result<()> {
        freezer::set_state(self.need("freezer", "thaw")?, "THAWED")
    }

    fn pids(&self) -> Result<Vec<i32>> {
        // Any hierarchy holds every process of the container; prefer the
        // ones moorage always has.
        let dir = ["pids", "memory", "freezer", "cpu"]
            .iter()
            .find_map(|n| self.dir(n))
            .or_else(|| self.controllers.values().next().map(|c| c.dir.as_path()))
            .ok_or_else(|| CgroupError::Unsupported("no v1 hierarchy".into()))?;
        read_pids(&dir.join("cgroup.procs"))
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("memory") {
            memory::stats(d, &mut s)?;
        }
        if let Some(d) = self.dir("pids") {
            pids::stats(d, &mut s)?;
        }
        if let Some(d) = self.dir("cpuacct") {
            cpuacct::stats(d, &mut s)?;
        }
        Ok(s)
    }

    fn destroy(&self) -> Result<()> {
        // Try every hierarchy even if one fails; report the first error.
        let mut first = None;
        for dir in self.unique_dirs() {
            if let Err(e) = remove_dir(&dir) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.unique_dirs()
    }
}

#[cfg(test)]
mod tests;
