//! v2 freezer: cgroup.freeze, settled when cgroup.events says `frozen 1`
//! (the write returns before every task has stopped).

use std::path::Path;
use std::time::Duration;

use crate::cgroups::common::{read_keyed, wait_until, write_file};
use crate::cgroups::{CgroupError, Result};

const TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn set(dir: &Path, frozen: bool) -> Result<()> {
    let want = u64::from(frozen);
    write_file(&dir.join("cgroup.freeze"), &want.to_string())?;
    let events = dir.join("cgroup.events");
    let ok = wait_until(TIMEOUT, || Ok(read_keyed(&events, "frozen")? == Some(want)))?;
    if ok {
        return Ok(());
    }
    if frozen {
        // Do not leave a half-frozen cgroup behind a failed pause.
        let _ = write_file(&dir.join("cgroup.freeze"), "0");
    }
    Err(CgroupError::Timeout {
        what: if frozen { "frozen" } else { "thawed" },
        path: events,
    })
}
