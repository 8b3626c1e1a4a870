//! v2 memory controller: memory.max, memory.swap.max, memory.low;
//! OOM kills from memory.events.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use crate::cgroups::common::{read_keyed, read_limit, write_file};
use crate::cgroups::{CgroupError, Result, Stats};

fn limit_value(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// OCI `swap` is memory+swap (the v1 meaning); v2's memory.swap.max is swap
/// alone. Same conversion as runc's ConvertMemorySwapToCgroupV2Value.
pub(crate) fn swap_max(limit: Option<i64>, swap: i64) -> Result<Option<String>> {
    match (limit, swap) {
        (_, -1) => Ok(Some("max".into())),
        (_, 0) => Ok(None),
        (None, _) | (Some(0), _) => Err(CgroupError::Unsupported(format!(
            "memory swap {swap} without a memory limit"
        ))),
        (Some(-1), _) => Ok(Some("max".into())),
        (Some(l), s) if s < l => Err(CgroupError::Unsupported(format!(
            "memory+swap {s} is below the memory limit {l}"
        ))),
        (Some(l), s) => Ok(Some((s - l).to_string())),
    }
}

pub(super) fn set(dir: &Path, mem: &LinuxMemory) -> Result<()> {
    if let Some(l) = mem.limit() {
        write_file(&dir.join("memory.max"), &limit_value(l))?;
    }
    if let Some(s) = mem.swap() {
        if let Some(v) = swap_max(mem.limit(), s)? {
            write_file(&dir.join("memory.swap.max"), &v)?;
        }
    }
    if let Some(r) = mem.reservation() {
        write_file(&dir.join("memory.low"), &limit_value(r))?;
    }
    Ok(())
}

pub(super) fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    stats.memory_usage = read_limit(&dir.join("memory.current"))?;
    stats.memory_limit = read_limit(&dir.join("memory.max"))?;
    stats.oom_kills = read_keyed(&dir.join("memory.events"), "oom_kill")?.unwrap_or(0);
    // only for display: never fail the OOM counter above over it
    stats.memory_inactive_file = read_keyed(&dir.join("memory.stat"), "inactive_file")
        .ok()
        .flatten();
    Ok(())
}
