//! v1 cpuacct controller: total CPU time of the cgroup.

use std::path::Path;

use crate::cgroups::common::read_u64;
use crate::cgroups::{Result, Stats};

pub(super) fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    stats.cpu_usage_ns = Some(read_u64(&dir.join("cpuacct.usage"))?);
    Ok(())
}
