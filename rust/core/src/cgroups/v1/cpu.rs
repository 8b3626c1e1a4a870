//! v1 cpu controller: shares and CFS quota/period.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::cgroups::common::write_file;
use crate::cgroups::Result;

pub(super) fn set(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(s) = cpu.shares() {
        if s != 0 {
            write_file(&dir.join("cpu.shares"), &s.to_string())?;
        }
    }
    // Period before quota: the kernel checks quota against the current
    // period, and a fresh cgroup has quota -1 so any period is accepted.
    if let Some(p) = cpu.period() {
        if p != 0 {
            write_file(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
        }
    }
    if let Some(q) = cpu.quota() {
        let v = if q > 0 { q } else { -1 };
        write_file(&dir.join("cpu.cfs_quota_us"), &v.to_string())?;
    }
    Ok(())
}
