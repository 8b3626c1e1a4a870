//! DIR/status.json, replaced atomically (write a temp file, rename) so the
//! engine never reads a half-written file.

use std::path::Path;

use serde::Serialize;

use super::error::{io, MonitorError, Result};

#[derive(Debug, Clone, Serialize)]
pub struct Running<'a> {
    pub status: &'static str,
    pub pid: i32,
    pub started_at: &'a str,
    pub restart_count: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Exited<'a> {
    /// "exited", or "restarting" while waiting for the next run.
    pub status: &'static str,
    pub pid: i32,
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub oom_killed: bool,
    pub started_at: Option<&'a str>,
    pub finished_at: &'a str,
    pub restart_count: u32,
    pub error: Option<&'a str>,
}

pub fn write<T: Serialize>(dir: &Path, value: &T) -> Result<()> {
    let tmp = dir.join("status.json.tmp");
    let dst = dir.join("status.json");
    let mut data = serde_json::to_vec(value).map_err(|source| MonitorError::Json {
        path: dst.clone(),
        source,
    })?;
    data.push(b'\n');
    std::fs::write(&tmp, &data).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, &dst).map_err(io("rename", &dst))
}
