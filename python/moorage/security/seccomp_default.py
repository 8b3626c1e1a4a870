"""moorage's default seccomp policy, in the Docker profile format.

The policy follows Docker's default profile: everything not listed fails with
EPERM; ordinary programs' syscalls are allowed; syscalls that reach outside
the container (mount, module loading, kexec, reboot, clock setting, BPF, perf,
the keyring, namespace creation...) are allowed only when the matching
capability is in the container's bounding set. It is written in Docker's
format (``includes``/``excludes`` on caps, arches and kernel version) so that
one converter, :func:`moorage.security.seccomp.to_oci`, serves both this
profile and user profiles given with ``--security-opt seccomp=FILE``.
"""

from __future__ import annotations

from typing import Any

EPERM = 1
ENOSYS = 38

#: clone(2) flags that create namespaces: CLONE_NEWNS | CLONE_NEWCGROUP |
#: CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
CLONE_NAMESPACE_FLAGS = 0x7E020000

#: AF_VSOCK: a socket family that reaches the hypervisor, refused like Docker does
AF_VSOCK = 40

#: personality(2) values a container may set: PER_LINUX, UNAME26,
#: ADDR_NO_RANDOMIZE, UNAME26|ADDR_NO_RANDOMIZE, and 0xffffffff (query only)
ALLOWED_PERSONALITIES = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)

# Syscalls grouped by what they are for; the groups are merged into one
# allow rule. 32-bit and time64 variants are listed beside their base call so
# that x86/arm compat binaries keep working.
_FILE_IO = """
    read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2
    open openat openat2 creat close close_range lseek _llseek
    dup dup2 dup3 pipe pipe2 fcntl fcntl64 ioctl flock
    fsync fdatasync sync syncfs sync_file_range fallocate
    ftruncate ftruncate64 truncate truncate64 readahead fadvise64 fadvise64_64
    sendfile sendfile64 splice tee vmsplice copy_file_range cachestat
"""
_FILE_META = """
    stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
    statfs statfs64 fstatfs fstatfs64 access faccessat faccessat2
    readlink readlinkat getdents getdents64 getcwd chdir fchdir umask
    mkdir mkdirat rmdir mknod mknodat link linkat symlink symlinkat
    unlink unlinkat rename renameat renameat2
    chmod fchmod fchmodat fchmodat2 chown chown32 fchown fchown32 fchownat lchown lchown32
    utime utimes utimensat utimensat_time64 futimesat name_to_handle_at
    getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr
    listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
"""
_MEMORY = """
    brk mmap mmap2 munmap mremap mprotect madvise mincore msync
    mlock mlock2 mlockall munlock munlockall membarrier
    memfd_create memfd_secret remap_file_pages pkey_alloc pkey_free pkey_mprotect
    process_mrelease map_shadow_stack
"""
_PROCESS = """
    fork vfork execve execveat exit exit_group wait4 waitid waitpid
    getpid getppid gettid getpgid setpgid getpgrp getsid setsid
    getpriority setpriority set_tid_address set_robust_list get_robust_list rseq
    prctl capget capset getrlimit setrlimit ugetrlimit prlimit64 getrusage times
    sysinfo uname getcpu getrandom restart_syscall pause seccomp
    landlock_create_ruleset landlock_add_rule landlock_restrict_self
    pidfd_open pidfd_send_signal ioprio_get ioprio_set
    get_thread_area set_thread_area
    sched_getaffinity sched_setaffinity sched_getattr sched_setattr
    sched_getparam sched_setparam sched_getscheduler sched_setscheduler
    sched_get_priority_max sched_get_priority_min
    sched_rr_get_interval sched_rr_get_interval_time64 sched_yield
"""
_IDENTITY = """
    getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
    getresuid getresuid32 getresgid getresgid32 getgroups getgroups32
    setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
    setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid setfsgid32
    setgroups setgroups32
"""
_SIGNALS = """
    kill tkill tgkill rt_sigaction rt_sigprocmask rt_sigreturn rt_sigsuspend
    rt_sigpending rt_sigtimedwait rt_sigtimedwait_time64 rt_sigqueueinfo rt_tgsigqueueinfo
    sigaltstack sigreturn sigprocmask signalfd signalfd4 alarm
"""
_TIME = """
    clock_gettime clock_gettime64 clock_getres clock_getres_time64
    clock_nanosleep clock_nanosleep_time64 nanosleep gettimeofday time
    clock_adjtime clock_adjtime64 adjtimex getitimer setitimer
    timer_create timer_delete timer_gettime timer_gettime64 timer_settime timer_settime64
    timer_getoverrun timerfd_create timerfd_gettime timerfd_gettime64
    timerfd_settime timerfd_settime64
"""
_WAITING = """
    futex futex_time64 futex_waitv futex_wake futex_wait futex_requeue
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old
    epoll_pwait epoll_pwait2 eventfd eventfd2
    poll ppoll ppoll_time64 select _newselect pselect6 pselect6_time64
    inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark
    io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
    io_uring_setup io_uring_enter io_uring_register
"""
_SYSV_IPC = """
    ipc msgget msgsnd msgrcv msgctl semget semop semctl semtimedop semtimedop_time64
    shmget shmat shmdt shmctl
    mq_open mq_unlink mq_timedsend mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64
    mq_notify mq_getsetattr
"""
_NETWORK = """
    socketpair socketcall bind connect listen accept accept4
    getsockname getpeername getsockopt setsockopt
    send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64 shutdown
"""


def _names(*groups: str) -> list[str]:
    out: list[str] = []
    for group in groups:
        out.extend(group.split())
    return sorted(set(out))


#: syscalls every container may make, whatever its capabilities
ALWAYS_ALLOWED: list[str] = _names(
    _FILE_IO, _FILE_META, _MEMORY, _PROCESS, _IDENTITY, _SIGNALS, _TIME, _WAITING,
    _SYSV_IPC, _NETWORK,
)

#: syscalls unlocked by a capability in the bounding set (Docker's ``includes.caps``)
BY_CAPABILITY: dict[str, list[str]] = {
    "CAP_SYS_ADMIN": _names(
        """bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
        mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd
        setdomainname sethostname setns syslog umount umount2 unshare"""
    ),
    "CAP_SYS_BOOT": ["reboot"],
    "CAP_SYS_CHROOT": ["chroot"],
    "CAP_SYS_MODULE": ["delete_module", "finit_module", "init_module"],
    "CAP_SYS_PACCT": ["acct"],
    "CAP_SYS_PTRACE": _names(
        "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"
    ),
    "CAP_SYS_RAWIO": ["ioperm", "iopl"],
    "CAP_SYS_TIME": ["clock_settime", "clock_settime64", "settimeofday", "stime"],
    "CAP_SYS_TTY_CONFIG": ["vhangup"],
    "CAP_SYS_NICE": ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
    "CAP_SYSLOG": ["syslog"],
    "CAP_BPF": ["bpf"],
    "CAP_PERFMON": ["perf_event_open"],
    "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
}

#: syscalls that exist only on some architectures (Go/Docker arch names)
BY_ARCH: list[tuple[list[str], list[str]]] = [
    (["arch_prctl"], ["amd64", "x32"]),
    (["modify_ldt"], ["amd64", "x32", "x86"]),
    (
        ["arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
         "sync_file_range2"],
        ["arm", "arm64"],
    ),
    (["riscv_flush_icache"], ["riscv64"]),
    (["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"], ["s390", "s390x"]),
]


def _arg(index: int, value: int, op: str, value_two: int = 0) -> dict[str, Any]:
    arg: dict[str, Any] = {"index": index, "value": value, "op": op}
    if value_two:
        arg["valueTwo"] = value_two
    return arg


def default_profile() -> dict[str, Any]:
    """Return a fresh copy of the default profile in Docker's format."""
    rules: list[dict[str, Any]] = [{"names": list(ALWAYS_ALLOWED), "action": "SCMP_ACT_ALLOW"}]
    # ptrace from inside a container cannot bypass seccomp since Linux 4.8.
    rules.append(
        {
            "names": ["process_vm_readv", "process_vm_writev", "ptrace"],
            "action": "SCMP_ACT_ALLOW",
            "includes": {"minKernel": "4.8"},
        }
    )
    rules.append(
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [_arg(0, AF_VSOCK, "SCMP_CMP_NE")]}
    )
    for persona in ALLOWED_PERSONALITIES:
        # One rule per value: conditions inside a rule are ANDed, rules are ORed.
        rules.append(
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [_arg(0, persona, "SCMP_CMP_EQ")]}
        )
    for names, arches in BY_ARCH:
        rules.append({"names": list(names), "action": "SCMP_ACT_ALLOW", "includes": {"arches": arches}})
    for cap, names in BY_CAPABILITY.items():
        rules.append({"names": list(names), "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}})
    # Without CAP_SYS_ADMIN, clone may run but not create namespaces. s390 swaps
    # clone's first two arguments, hence the second rule.
    rules.append(
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [_arg(0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ")],
            "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]},
        }
    )
    rules.append(
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [_arg(1, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ")],
            "includes": {"arches": ["s390", "s390x"]},
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        }
    )
    # clone3 passes its flags in a struct seccomp cannot read: answer ENOSYS so
    # that glibc and others fall back to clone, whose flags are checked above.
    rules.append(
        {
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": ENOSYS,
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        }
    )
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            {"architecture": "SCMP_ARCH_PPC64LE", "subArchitectures": []},
            {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]},
            {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": []},
        ],
        "syscalls": rules,
    }
