//! v2 cpu controller: cpu.weight (from v1 shares) and cpu.max.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::cgroups::common::{read_keyed, write_file};
use crate::cgroups::{Result, Stats};

const DEFAULT_PERIOD: u64 = 100_000;

/// v1 shares [2, 262144] → v2 weight [1, 10000], the formula runc and crun
/// use, so the same config gives the same weight under either runtime.
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

pub(crate) fn max_line(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let period = period.filter(|p| *p != 0);
    match (quota, period) {
        (None, None) => None,
        (Some(q), p) if q > 0 => Some(format!("{q} {}", p.unwrap_or(DEFAULT_PERIOD))),
        (_, p) => Some(format!("max {}", p.unwrap_or(DEFAULT_PERIOD))),
    }
}

pub(super) fn set(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if let Some(s) = cpu.shares() {
        if s != 0 {
            write_file(&dir.join("cpu.weight"), &shares_to_weight(s).to_string())?;
        }
    }
    if let Some(line) = max_line(cpu.quota(), cpu.period()) {
        write_file(&dir.join("cpu.max"), &line)?;
    }
    Ok(())
}

pub(super) fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    stats.cpu_usage_ns = read_keyed(&dir.join("cpu.stat"), "usage_usec")?.map(|u| u * 1000);
    Ok(())
}
