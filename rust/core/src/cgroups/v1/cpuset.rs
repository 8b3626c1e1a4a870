//! v1 cpuset controller.
//!
//! A new v1 cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems`, and
//! adding a task to it fails with ENOSPC until both are set; every level
//! between the hierarchy root and the leaf has that problem, so each is
//! filled from its parent on the way down.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::cgroups::common::{create_dir, read_string, write_file};
use crate::cgroups::Result;

/// Create `dir` (under `mount`) level by level, copying cpus/mems from the
/// parent where empty.
pub(super) fn create(mount: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(mount).unwrap_or(dir);
    let mut parent = mount.to_path_buf();
    for comp in rel.components() {
        let cur = parent.join(comp);
        create_dir(&cur)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let here = cur.join(file);
            if read_string(&here)?.trim().is_empty() {
                let from = read_string(&parent.join(file))?;
                write_file(&here, from.trim())?;
            }
        }
        parent = cur;
    }
    Ok(())
}

pub(super) fn set(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(c) = cpu.cpus() {
        if !c.is_empty() {
            write_file(&dir.join("cpuset.cpus"), c)?;
        }
    }
    if let Some(m) = cpu.mems() {
        if !m.is_empty() {
            write_file(&dir.join("cpuset.mems"), m)?;
        }
    }
    Ok(())
}
