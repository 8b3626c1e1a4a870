//! moorage's kernel-facing core. Plain Rust, no PyO3: the extension module
//! (`rust/python`) and the runtime binary (`rust/runtime`) both build on it.
//!
//! Ownership of modules (for parallel work): runtime pieces (`namespaces`,
//! `process`, `rootfs`, `capabilities`, `seccomp`, `container`, `exec`,
//! `init`, `syscall`), cgroups (`cgroups`), byte work (`layer`, `overlay`,
//! `digest`).

pub mod capabilities;
pub mod cgroups;
pub mod container;
pub mod digest;
pub mod error;
pub mod exec;
pub mod init;
pub mod layer;
pub mod namespaces;
pub mod overlay;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod syscall;
