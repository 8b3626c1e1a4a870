//! The `moorage._core` extension module. PyO3 lives only in this crate; the
//! work is done by `moorage-core` (plain Rust, tested with `cargo test`).

use pyo3::prelude::*;

mod errors;
mod runtime_bin;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(runtime_bin::runtime_binary, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_bin::runtime_digest, m)?)?;
    Ok(())
}
