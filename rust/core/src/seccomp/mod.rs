//! Compile an OCI `linux.seccomp` section into a classic-BPF program and load it.
//!
//! seccompiler builds one filter with a single on-match action, while an OCI
//! profile mixes actions (Docker's: default `ERRNO`, most rules `ALLOW`, a few
//! `ERRNO` with their own errno). Stacking one kernel filter per action would
//! be wrong: the kernel runs every filter and keeps the *most restrictive*
//! verdict, so an `ALLOW` rule could never override an `ERRNO` default. So we
//! let seccompiler compile one filter per distinct action (in the order the
//! actions first appear), then splice them into a single program: in each
//! segment every "mismatch" return becomes a jump to the next segment, and the
//! profile's default action ends the program. Jumps inside a segment are
//! relative, so they stay valid when segments are concatenated.

#[cfg(target_arch = "x86_64")]
mod table_x86_64;

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: action {0} is not supported (no seccomp notify listener)")]
    UnsupportedAction(&'static str),
    #[error("seccomp: syscall {syscall}: {source}")]
    Rule {
        syscall: String,
        #[source]
        source: seccompiler::BackendError,
    },
    #[error("seccomp: compile: {0}")]
    Compile(#[source] seccompiler::BackendError),
    #[error("seccomp: architecture {0} is not supported")]
    Arch(&'static str),
    #[error("seccomp: program has {0} instructions, the kernel allows 4096")]
    TooLarge(usize),
    #[error("seccomp: load filter: {0}")]
    Load(#[source] std::io::Error),
}

pub type Result<T> = std::result::Result<T, SeccompError>;

/// Largest classic-BPF program the kernel accepts (BPF_MAXINSNS).
const BPF_MAXINSNS: usize = 4096;
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
const BPF_JA: u16 = 0x05; // BPF_JMP | BPF_JA

/// Syscall number for `name` on the architecture we run on; `None` when the
/// name does not exist here (profiles list syscalls of other arches).
pub fn syscall_number(name: &str) -> Option<i64> {
    #[cfg(target_arch = "x86_64")]
    {
        let t = table_x86_64::SYSCALLS;
        t.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| t[i].1)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = name;
        None
    }
}

fn native_arch() -> Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| SeccompError::Arch(std::env::consts::ARCH))
}

/// Map an OCI action (+ its errnoRet) to seccompiler's action.
pub fn map_action(action: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<SeccompAction> {
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => {
            SeccompAction::Errno(errno_ret.unwrap_or(libc::EPERM as u32))
        }
        // libseccomp's SCMP_ACT_KILL is "kill the thread".
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActTrace => {
            SeccompAction::Trace(errno_ret.unwrap_or(libc::EPERM as u32))
        }
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction("SCMP_ACT_NOTIFY"))
        }
    })
}

fn condition(syscall: &str, arg: &LinuxSeccompArg) -> Result<SeccompCondition> {
    let (op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        // OCI (like libseccomp): `value` is the mask, `valueTwo` the datum.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    let index = u8::try_from(arg.index()).unwrap_or(u8::MAX);
    // libseccomp compares the full 64-bit register.
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value).map_err(|source| {
        SeccompError::Rule {
            syscall: syscall.to_owned(),
            source,
        }
    })
}

/// Rules of one OCI syscall entry: several conditions on *different*
/// arguments are ANDed into one rule; several on the *same* argument are
/// ORed (one rule each), which is what runc does with libseccomp.
fn rules_for(syscall: &str, args: &[LinuxSeccompArg]) -> Result<Vec<SeccompRule>> {
    let same_index = args.len() > 1 && args.iter().all(|a| a.index() == args[0].index());
    let mk = |conds: Vec<SeccompCondition>| {
        SeccompRule::new(conds).map_err(|source| SeccompError::Rule {
            syscall: syscall.to_owned(),
            source,
        })
    };
    if same_index {
        args.iter()
            .map(|a| mk(vec![condition(syscall, a)?]))
            .collect()
    } else {
        Ok(vec![mk(args
            .iter()
            .map(|a| condition(syscall, a))
            .collect::<Result<_>>()?)?])
    }
}

/// Per action group: syscall → rules; `None` means unconditional.
type Group = BTreeMap<i64, Option<Vec<SeccompRule>>>;

/// Compile the profile into one BPF program for the running architecture.
/// Syscall names unknown on this architecture are skipped.
pub fn compile(profile: &LinuxSeccomp) -> Result<BpfProgram> {
    let arch = native_arch()?;
    let default = map_action(profile.default_action(), profile.default_errno_ret())?;

    let mut groups: Vec<(SeccompAction, Group)> = Vec::new();
    for entry in profile.syscalls().iter().flatten() {
        let action = map_action(entry.action(), entry.errno_ret())?;
        if action == default {
            continue; // same verdict as the fall-through: nothing to encode
        }
        let idx = match groups.iter().position(|(a, _)| *a == action) {
            Some(i) => i,
            None => {
                groups.push((action, Group::new()));
                groups.len() - 1
            }
        };
        let group = &mut groups[idx].1;
        let args = entry.args().as_deref().unwrap_or(&[]);
        for name in entry.names() {
            let Some(nr) = syscall_number(name) else {
                continue;
            };
            if args.is_empty() {
                group.insert(nr, None);
            } else {
                let new_rules = rules_for(name, args)?;
                // `None` means already unconditional: nothing to add.
                if let Some(rules) = group.entry(nr).or_insert_with(|| Some(Vec::new())) {
                    rules.extend(new_rules);
                }
            }
        }
    }

    // Prologue: arch check + load of the syscall number, taken from an empty
    // filter (its last instruction is the mismatch return, dropped here).
    let empty = SeccompFilter::new(
        BTreeMap::new(),
        SeccompAction::Allow,
        SeccompAction::KillProcess,
        arch,
    )
    .map_err(SeccompError::Compile)?;
    let empty: BpfProgram = empty.try_into().map_err(SeccompError::Compile)?;
    let prologue_len = empty.len() - 1;
    let mut program: Vec<sock_filter> = empty[..prologue_len].to_vec();

    for (action, group) in groups {
        // Any action different from the match action works as the mismatch
        // marker: a segment only ever returns these two values.
        let marker = if action == SeccompAction::Allow {
            SeccompAction::KillProcess
        } else {
            SeccompAction::Allow
        };
        let marker_k = u32::from(marker.clone());
        let rules = group
            .into_iter()
            .map(|(nr, r)| (nr, r.unwrap_or_default()))
            .collect();
        let filter =
            SeccompFilter::new(rules, marker, action, arch).map_err(SeccompError::Compile)?;
        let bpf: BpfProgram = filter.try_into().map_err(SeccompError::Compile)?;
        let body = &bpf[prologue_len..];
        let end = body.len();
        for (i, insn) in body.iter().enumerate() {
            if insn.code == BPF_RET_K && insn.k == marker_k {
                // Fall through to the next segment: jump past this segment's end.
                program.push(sock_filter {
                    code: BPF_JA,
                    jt: 0,
                    jf: 0,
                    k: (end - i - 1) as u32,
                });
            } else {
                program.push(insn.clone());
            }
        }
    }
    program.push(sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: u32::from(default),
    });
    if program.len() > BPF_MAXINSNS {
        return Err(SeccompError::TooLarge(program.len()));
    }
    Ok(program)
}

/// Install the program on the calling thread. Needs no_new_privs or
/// CAP_SYS_ADMIN; it is the last step before execve.
pub fn load(program: &BpfProgram) -> Result<()> {
    seccompiler::apply_filter(program).map_err(|e| match e {
        seccompiler::Error::Seccomp(io) => SeccompError::Load(io),
        other => SeccompError::Load(std::io::Error::other(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    /// Run the BPF program the way the kernel would, on a fake seccomp_data.
    fn run(prog: &[sock_filter], nr: i64, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_ne_bytes());
        data[4..8].copy_from_slice(&0xC000_003Eu32.to_ne_bytes()); // AUDIT_ARCH_X86_64
        for (i, a) in args.iter().enumerate() {
            data[16 + i * 8..24 + i * 8].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let ins = &prog[pc];
            let class = ins.code & 0x07;
            match class {
                0x00 => {
                    let off = ins.k as usize;
                    acc = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap());
                    pc += 1;
                }
                0x04 => {
                    assert_eq!(ins.code, 0x54, "only AND is generated");
                    acc &= ins.k;
                    pc += 1;
                }
                0x05 => {
                    let op = ins.code & 0xf0;
                    if op == 0x00 {
                        pc += 1 + ins.k as usize;
                        continue;
                    }
                    let t = match op {
                        0x10 => acc == ins.k,
                        0x20 => acc > ins.k,
                        0x30 => acc >= ins.k,
                        0x40 => acc & ins.k != 0,
                        o => panic!("jump op {o:#x}"),
                    };
                    pc += 1 + if t { ins.jt as usize } else { ins.jf as usize };
                }
                0x06 => return ins.k,
                c => panic!("class {c:#x}"),
            }
        }
    }

    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;

    #[test]
    fn mixed_actions_in_one_program() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
                "syscalls":[
                  {"names":["read","write","nosuch_syscall_xyz"],"action":"SCMP_ACT_ALLOW"},
                  {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                  {"names":["personality"],"action":"SCMP_ACT_ALLOW",
                   "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                  {"names":["getpid"],"action":"SCMP_ACT_KILL_PROCESS"}
                ]}"#,
        );
        let prog = compile(&p).unwrap();
        let nr = |n| syscall_number(n).unwrap();
        assert_eq!(run(&prog, nr("read"), [0; 6]), ALLOW);
        assert_eq!(run(&prog, nr("write"), [0; 6]), ALLOW);
        assert_eq!(run(&prog, nr("open"), [0; 6]), ERRNO | 1);
        assert_eq!(run(&prog, nr("clone3"), [0; 6]), ERRNO | 38);
        assert_eq!(run(&prog, nr("personality"), [8, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&prog, nr("personality"), [0; 6]), ALLOW);
        assert_eq!(run(&prog, nr("personality"), [9, 0, 0, 0, 0, 0]), ERRNO | 1);
        assert_eq!(run(&prog, nr("getpid"), [0; 6]), 0x8000_0000);
    }

    #[test]
    fn anded_args_and_masked_eq() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "syscalls":[{"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
                  "args":[{"index":0,"value":16,"op":"SCMP_CMP_EQ"},
                          {"index":1,"value":15,"valueTwo":3,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        );
        let prog = compile(&p).unwrap();
        let nr = syscall_number("socket").unwrap();
        assert_eq!(run(&prog, nr, [16, 3, 0, 0, 0, 0]), ERRNO | 13);
        assert_eq!(run(&prog, nr, [16, 0x13, 0, 0, 0, 0]), ERRNO | 13);
        assert_eq!(run(&prog, nr, [16, 4, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&prog, nr, [2, 3, 0, 0, 0, 0]), ALLOW);
    }

    #[test]
    fn notify_is_a_clear_error() {
        let p = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
        assert!(matches!(
            compile(&p),
            Err(SeccompError::UnsupportedAction(_))
        ));
    }

    #[test]
    fn table_is_sorted_and_known() {
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("clone3"), Some(435));
        assert_eq!(syscall_number("not_a_syscall"), None);
    }
}
