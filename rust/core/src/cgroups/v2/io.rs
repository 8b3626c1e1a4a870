//! v2 io controller: bytes read and written (`io.stat`), for `stats`.

use std::path::Path;

use crate::cgroups::common::read_string;
use crate::cgroups::{Result, Stats};

/// Counters only: a missing io.stat (the controller not delegated this far)
/// leaves them unknown rather than failing the other statistics, which the
/// monitor reads for OOM detection.
pub(super) fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    let file = dir.join("io.stat");
    if !file.exists() {
        return Ok(());
    }
    let (read, write) = parse_io_stat(&read_string(&file)?);
    stats.io_read_bytes = Some(read);
    stats.io_write_bytes = Some(write);
    Ok(())
}

/// Sum `rbytes=` and `wbytes=` over the `MAJ:MIN key=value ...` lines.
pub(crate) fn parse_io_stat(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for kv in text.lines().flat_map(|l| l.split_whitespace().skip(1)) {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let Ok(v) = v.parse::<u64>() else { continue };
        match k {
            "rbytes" => read = read.saturating_add(v),
            "wbytes" => write = write.saturating_add(v),
            _ => {}
        }
    }
    (read, write)
}
