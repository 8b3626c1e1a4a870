//! The do-nothing manager, used when the config has no `cgroupsPath`: the
//! container then stays in the caller's cgroups (STYLE habit 8: a null
//! object instead of `Option` checks at every call site).

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use super::{Manager, Result, Stats};

#[derive(Debug, Clone, Copy, Default)]
pub struct Disabled;

impl Manager for Disabled {
    fn apply(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    fn set(&self, _resources: &LinuxResources) -> Result<()> {
        Ok(())
    }
    fn freeze(&self) -> Result<()> {
        Ok(())
    }
    fn thaw(&self) -> Result<()> {
        Ok(())
    }
    fn pids(&self) -> Result<Vec<i32>> {
        Ok(Vec::new())
    }
    fn stats(&self) -> Result<Stats> {
        Ok(Stats::default())
    }
    fn destroy(&self) -> Result<()> {
        Ok(())
    }
    fn paths(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}
