//! v1 freezer. Writing FROZEN starts the freeze; the state reads FREEZING
//! until every task is stopped, and a task that was in an uninterruptible
//! sleep can leave it stuck there, so the write is repeated while waiting.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::cgroups::common::{read_string, write_file};
use crate::cgroups::{CgroupError, Result};

const TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn set_state(dir: &Path, want: &'static str) -> Result<()> {
    let file = dir.join("freezer.state");
    let deadline = Instant::now() + TIMEOUT;
    let mut last;
    loop {
        write_file(&file, want)?;
        for _ in 0..20 {
            last = read_string(&file)?.trim().to_string();
            if last == want {
                return Ok(());
            }
            sleep(Duration::from_millis(2));
        }
        if Instant::now() >= deadline {
            // Do not leave a half-frozen cgroup behind a failed pause.
            if want == "FROZEN" {
                let _ = write_file(&file, "THAWED");
            }
            return Err(CgroupError::Timeout {
                what: want,
                path: file,
            });
        }
    }
}
