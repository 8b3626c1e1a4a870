//! Bindings for layer byte work: apply_layer, diff_layer, sha256_file.

use std::path::PathBuf;

use moorage_core::digest;
use moorage_core::layer::{self, WhiteoutFormat};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::detach::detached;
use crate::errors::{digest_error, layer_error};

/// Applies the layer tar at `source` (plain, gzip or zstd, by magic bytes)
/// onto the existing directory `dest`. On error `dest` holds a partial layer:
/// the caller removes it.
#[pyfunction]
#[pyo3(signature = (source, dest, whiteout_format = "overlay"))]
pub fn apply_layer<'py>(
    py: Python<'py>,
    source: PathBuf,
    dest: PathBuf,
    whiteout_format: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let format: WhiteoutFormat = whiteout_format.parse().map_err(layer_error)?;
    let report = detached(
        py,
        || layer::apply_layer(&source, &dest, format),
        layer_error,
    )?;
    let out = PyDict::new(py);
    out.set_item("digest", report.digest)?;
    out.set_item("diff_id", report.diff_id)?;
    out.set_item("size", report.size)?;
    out.set_item("compressed_size", report.compressed_size)?;
    out.set_item("compression", report.compression.as_str())?;
    out.set_item("entries", report.entries)?;
    Ok(out)
}

/// Writes the tar diff of the overlay upper dir `upper` to `output`,
/// leaving out the regular files at the `exclude` paths (relative to `upper`).
#[pyfunction]
#[pyo3(signature = (upper, output, exclude = None))]
pub fn diff_layer<'py>(
    py: Python<'py>,
    upper: PathBuf,
    output: PathBuf,
    exclude: Option<Vec<PathBuf>>,
) -> PyResult<Bound<'py, PyDict>> {
    let exclude = exclude.unwrap_or_default();
    let report = detached(
        py,
        || layer::diff_layer(&upper, &output, &exclude),
        layer_error,
    )?;
    let out = PyDict::new(py);
    out.set_item("diff_id", report.diff_id)?;
    out.set_item("size", report.size)?;
    Ok(out)
}

/// `sha256:<hex>` of a file's content.
#[pyfunction]
pub fn sha256_file(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    detached(py, || digest::sha256_file(&path), digest_error)
}
