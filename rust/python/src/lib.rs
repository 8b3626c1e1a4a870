//! The `moorage._core` extension module. PyO3 lives only in this crate; the
//! work is done by `moorage-core` (plain Rust, tested with `cargo test`).

use pyo3::prelude::*;

mod detach;
mod errors;
mod layer;
mod overlay;
mod runtime_bin;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(runtime_bin::runtime_binary, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_bin::runtime_digest, m)?)?;
    m.add_function(wrap_pyfunction!(layer::apply_layer, m)?)?;
    m.add_function(wrap_pyfunction!(layer::diff_layer, m)?)?;
    m.add_function(wrap_pyfunction!(layer::sha256_file, m)?)?;
    m.add_function(wrap_pyfunction!(overlay::mount_overlay, m)?)?;
    m.add_function(wrap_pyfunction!(overlay::unmount, m)?)?;
    m.add_function(wrap_pyfunction!(overlay::bind_mount, m)?)?;
    Ok(())
}
