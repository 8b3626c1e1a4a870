//! v1 pids controller (same files as v2).

use std::path::Path;

use oci_spec::runtime::LinuxPids;

use crate::cgroups::common::{read_limit, read_u64, write_file};
use crate::cgroups::{Result, Stats};

pub(crate) fn set(dir: &Path, pids: &LinuxPids) -> Result<()> {
    // OCI: 0 or negative means unlimited.
    let v = if pids.limit() > 0 {
        pids.limit().to_string()
    } else {
        "max".to_string()
    };
    write_file(&dir.join("pids.max"), &v)
}

pub(crate) fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    stats.pids_current = Some(read_u64(&dir.join("pids.current"))?);
    // "max" (no limit) reads as None
    stats.pids_limit = read_limit(&dir.join("pids.max"))?;
    Ok(())
}
