//! Bindings for mounts: mount_overlay, unmount, bind_mount.

use std::path::PathBuf;

use moorage_core::overlay;
use pyo3::prelude::*;

use crate::detach::detached;
use crate::errors::overlay_error;

/// Mounts an overlay of `lower` (topmost first) on `target`. Without
/// `upper`/`work` it is read-only.
#[pyfunction]
#[pyo3(signature = (lower, upper, work, target, readonly = false))]
pub fn mount_overlay(
    py: Python<'_>,
    lower: Vec<PathBuf>,
    upper: Option<PathBuf>,
    work: Option<PathBuf>,
    target: PathBuf,
    readonly: bool,
) -> PyResult<()> {
    detached(
        py,
        || overlay::mount_overlay(&lower, upper.as_deref(), work.as_deref(), &target, readonly),
        overlay_error,
    )
}

/// Unmounts `target`; "not mounted" raises OSFailure (errno EINVAL).
#[pyfunction]
#[pyo3(signature = (target, detach = false))]
pub fn unmount(py: Python<'_>, target: PathBuf, detach: bool) -> PyResult<()> {
    detached(py, || overlay::unmount(&target, detach), overlay_error)
}

/// Recursive bind mount of `source` on `target`, read-only throughout when
/// `readonly`.
#[pyfunction]
#[pyo3(signature = (source, target, readonly = false))]
pub fn bind_mount(
    py: Python<'_>,
    source: PathBuf,
    target: PathBuf,
    readonly: bool,
) -> PyResult<()> {
    detached(
        py,
        || overlay::bind_mount(&source, &target, readonly),
        overlay_error,
    )
}
