//! Builds the `moorage-runtime` binary (OCI runtime + monitor + init) and
//! embeds it in the extension module, so `pip install .` stays one step and
//! the wheel carries everything a running container needs (maturin cannot
//! put a binary and a PyO3 module in one wheel: maturin#368).
//!
//! The binary is linked statically (`+crt-static`) because it is also
//! bind-mounted into containers as `/dev/init`, where no libc may exist.
//! It is built by a nested cargo with its own target dir: sharing the outer
//! target dir would deadlock on cargo's build lock.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.join("../..").canonicalize().unwrap();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target = env::var("TARGET").unwrap();
    let profile = env::var("PROFILE").unwrap();
    // <target-dir>/<profile>/build/<pkg>/out → <target-dir>/embedded
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|p| p.join("embedded"))
        .unwrap_or_else(|| out_dir.join("embedded"));

    for dir in [
        "rust/core/src",
        "rust/runtime/src",
        "rust/core/Cargo.toml",
        "rust/runtime/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "-p",
            "moorage-runtime",
            "--bin",
            "moorage-runtime",
            "--target",
            &target,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    if profile == "release" {
        cmd.arg("--release");
    }
    // The outer build's flags are for a Python extension; the nested build is
    // a static executable. Drop what cargo/maturin exported to us.
    for (key, _) in env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME"
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key.starts_with("PYO3_")
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static");
    let status = cmd
        .status()
        .expect("failed to run nested cargo for moorage-runtime");
    if !status.success() {
        panic!("building moorage-runtime failed");
    }
    let bin = target_dir
        .join(&target)
        .join(&profile)
        .join("moorage-runtime");
    println!("cargo:rustc-env=MOORAGE_RUNTIME_BIN={}", bin.display());
    // The digest names the installed copy; hashing 1.3 MB at every engine
    // start cost ~9 ms per CLI call.
    let bytes = std::fs::read(&bin).expect("read the built moorage-runtime");
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    println!("cargo:rustc-env=MOORAGE_RUNTIME_SHA256={digest}");
}
