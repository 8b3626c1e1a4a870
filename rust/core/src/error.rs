//! Crate-wide error: each module has its own `thiserror` enum; this one
//! gathers them so the binary and the PyO3 layer map one type.
