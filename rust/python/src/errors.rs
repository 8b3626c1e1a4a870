//! The one place where Rust errors become Python exceptions (defined in
//! `moorage.errors`).

use pyo3::import_exception;
use pyo3::PyErr;

import_exception!(moorage.errors, MoorageError);
import_exception!(moorage.errors, OSFailure);
import_exception!(moorage.errors, InvalidArgument);
import_exception!(moorage.errors, InvalidLayer);

/// An OS error with the failing step and path kept.
pub fn os_failure(step: &str, path: &std::path::Path, err: std::io::Error) -> PyErr {
    let errno = err.raw_os_error().unwrap_or(0);
    OSFailure::new_err((
        errno,
        format!("{step} {}: {err}", path.display()),
        path.display().to_string(),
    ))
}

/// OSFailure when an errno is behind it (message keeps step and entry/path).
fn with_errno(
    err: &dyn std::fmt::Display,
    io: Option<&std::io::Error>,
    subject: Option<String>,
) -> Option<PyErr> {
    let errno = io?.raw_os_error()?;
    Some(OSFailure::new_err((errno, err.to_string(), subject)))
}

pub fn layer_error(err: moorage_core::layer::LayerError) -> PyErr {
    use moorage_core::layer::LayerError;
    if let Some(e) = with_errno(&err, err.io_error(), err.subject()) {
        return e;
    }
    match err {
        LayerError::InvalidWhiteoutFormat(_) => InvalidArgument::new_err(err.to_string()),
        _ => InvalidLayer::new_err(err.to_string()),
    }
}

pub fn overlay_error(err: moorage_core::overlay::OverlayError) -> PyErr {
    let path = Some(err.path().display().to_string());
    if let Some(e) = with_errno(&err, err.io_error(), path) {
        return e;
    }
    InvalidArgument::new_err(err.to_string())
}

pub fn digest_error(err: moorage_core::digest::DigestError) -> PyErr {
    let moorage_core::digest::DigestError::Io { path, source, .. } = &err;
    let path = Some(path.display().to_string());
    with_errno(&err, Some(source), path).unwrap_or_else(|| MoorageError::new_err(err.to_string()))
}
