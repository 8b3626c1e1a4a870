//! The embedded `moorage-runtime` binary, written once per content digest
//! into the runroot and reused (no copy per container start).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::errors::os_failure;
use pyo3::prelude::*;

static RUNTIME: &[u8] = include_bytes!(env!("MOORAGE_RUNTIME_BIN"));

/// sha256 of `RUNTIME`, computed by build.rs.
static DIGEST: &str = env!("MOORAGE_RUNTIME_SHA256");

fn digest() -> String {
    DIGEST.to_string()
}

/// sha256 of the embedded runtime binary.
#[pyfunction]
pub fn runtime_digest() -> String {
    digest()
}

fn install(dir: &Path) -> std::io::Result<PathBuf> {
    let target = dir.join(format!("moorage-runtime-{}", &digest()[..16]));
    if let Ok(meta) = fs::metadata(&target) {
        if meta.len() == RUNTIME.len() as u64 {
            return Ok(target);
        }
    }
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".moorage-runtime.{}.tmp", std::process::id()));
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&tmp)?;
        f.write_all(RUNTIME)?;
        f.sync_all()?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(&tmp, &target)?;
    Ok(target)
}

/// Path of the runtime binary under `<dir>`, written there first if missing.
#[pyfunction]
pub fn runtime_binary(py: Python<'_>, dir: PathBuf) -> PyResult<String> {
    py.detach(|| install(&dir))
        .map(|p| p.display().to_string())
        .map_err(|e| os_failure("install runtime binary into", &dir, e))
}
