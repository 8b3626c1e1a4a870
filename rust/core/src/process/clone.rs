//! Fork-like raw clone with namespace flags.
//!
//! Why raw `clone` and not `fork` + `unshare`: a new pid namespace only
//! applies to children of the unsharing process, so fork+unshare would need a
//! second fork to get the container's PID 1; clone with CLONE_NEWPID makes the
//! child PID 1 directly. A NULL stack pointer without CLONE_VM gives fork
//! semantics (the child runs on its copy of our stack), so no separate stack
//! is allocated. libc's `clone()` wrapper insists on a stack and a function,
//! hence the raw syscall. The caller must be single-threaded.

use nix::sched::CloneFlags;
use nix::unistd::Pid;

pub enum Cloned {
    Parent(Pid),
    Child,
}

/// Clone the calling (single-threaded) process into new namespaces.
///
/// # Safety
/// Like `fork`: the child must only call async-signal-safe code if other
/// threads existed (the runtime has none), and must end with execve/_exit.
pub unsafe fn clone_fork(flags: CloneFlags) -> nix::Result<Cloned> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // x86_64/aarch64 argument order: flags, newsp, parent_tid, child_tid, tls.
    let rc = libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize);
    match rc {
        -1 => Err(nix::Error::last()),
        0 => Ok(Cloned::Child),
        pid => Ok(Cloned::Parent(Pid::from_raw(pid as i32))),
    }
}
