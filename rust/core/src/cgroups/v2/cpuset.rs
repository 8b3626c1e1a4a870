//! v2 cpuset controller (empty means "inherit" on v2, so nothing to copy).

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::cgroups::common::write_file;
use crate::cgroups::Result;

pub(super) fn set(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(c) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
        write_file(&dir.join("cpuset.cpus"), c)?;
    }
    if let Some(m) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
        write_file(&dir.join("cpuset.mems"), m)?;
    }
    Ok(())
}
