//! v1 memory controller: limit, reservation (soft limit), memory+swap,
//! swappiness, OOM-killer switch; OOM kill counter for stats.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use crate::cgroups::common::{read_keyed, read_limit, write_file};
use crate::cgroups::{CgroupError, Result, Stats};

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

pub(super) fn set(dir: &Path, mem: &LinuxMemory) -> Result<()> {
    if let Some(r) = mem.reservation() {
        write_file(&dir.join("memory.soft_limit_in_bytes"), &r.to_string())?;
    }
    let memsw = dir.join(MEMSW);
    // OCI `swap` is memory+swap, like memsw. Without swap accounting there is
    // no memsw file; "no swap beyond memory" and "unlimited" need none.
    let swap = match mem.swap() {
        Some(s) if !memsw.exists() => {
            if s == -1 || Some(s) == mem.limit() {
                None
            } else {
                return Err(CgroupError::Unsupported(format!(
                    "memory swap limit {s}: {} missing (swap accounting disabled)",
                    memsw.display()
                )));
            }
        }
        other => other,
    };
    match (mem.limit(), swap) {
        (Some(limit), Some(swap)) => set_limit_and_swap(dir, limit, swap)?,
        (Some(limit), None) => write_file(&dir.join(LIMIT), &limit.to_string())?,
        (None, Some(swap)) => write_file(&memsw, &swap.to_string())?,
        (None, None) => {}
    }
    if let Some(s) = mem.swappiness() {
        write_file(&dir.join("memory.swappiness"), &s.to_string())?;
    }
    if let Some(d) = mem.disable_oom_killer() {
        write_file(&dir.join("memory.oom_control"), if d { "1" } else { "0" })?;
    }
    Ok(())
}

/// The kernel keeps limit <= memsw at every moment, so the order of the two
/// writes depends on whether the new limit is above the current memsw.
fn set_limit_and_swap(dir: &Path, limit: i64, swap: i64) -> Result<()> {
    let limit_s = limit.to_string();
    let swap_s = swap.to_string();
    match write_file(&dir.join(LIMIT), &limit_s) {
        Ok(()) => write_file(&dir.join(MEMSW), &swap_s),
        Err(CgroupError::Write { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {
            write_file(&dir.join(MEMSW), &swap_s)?;
            write_file(&dir.join(LIMIT), &limit_s)
        }
        Err(e) => Err(e),
    }
}

pub(super) fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    stats.memory_usage = read_limit(&dir.join("memory.usage_in_bytes"))?;
    stats.memory_limit = read_limit(&dir.join(LIMIT))?;
    stats.oom_kills = read_keyed(&dir.join("memory.oom_control"), "oom_kill")?.unwrap_or(0);
    // only for display: never fail the OOM counter above over it
    stats.memory_inactive_file = read_keyed(&dir.join("memory.stat"), "total_inactive_file")
        .ok()
        .flatten();
    Ok(())
}
