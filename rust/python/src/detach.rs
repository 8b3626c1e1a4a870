//! The one helper every IO-doing pyfunction of the layer/overlay bindings goes
//! through: release the GIL, turn a panic into a Python exception instead of
//! unwinding through the interpreter, map the error in one place.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;

use crate::errors::MoorageError;

pub fn detached<T, E, F, M>(py: Python<'_>, work: F, map: M) -> PyResult<T>
where
    T: Send,
    E: Send,
    F: FnOnce() -> Result<T, E> + Send,
    M: FnOnce(E) -> PyErr,
{
    match py.detach(|| catch_unwind(AssertUnwindSafe(work))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(map(err)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(MoorageError::new_err(format!(
                "internal error (panic): {what}"
            )))
        }
    }
}
