//! The one place where Rust errors become Python exceptions (defined in
//! `moorage.errors`).

use pyo3::import_exception;
use pyo3::PyErr;

import_exception!(moorage.errors, MoorageError);
import_exception!(moorage.errors, OSFailure);

/// An OS error with the failing step and path kept.
pub fn os_failure(step: &str, path: &std::path::Path, err: std::io::Error) -> PyErr {
    let errno = err.raw_os_error().unwrap_or(0);
    OSFailure::new_err((errno, format!("{step} {}: {err}", path.display()), path.display().to_string()))
}
