//! Integration tests against the real kernel: need root, skip otherwise.
//! Each test builds a busybox bundle in its own temp dir and uses its own
//! `--root`; every test kills what it started and checks nothing is left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_moorage-runtime");
const APPLETS: &[&str] = &[
    "sh", "true", "false", "cat", "hostname", "id", "ls", "sleep", "grep", "echo", "mkdir", "wc",
    "readlink", "touch",
];

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping: integration tests need root");
    }
    root && Path::new("/bin/busybox").exists()
}

struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new(args: &[&str], tweak: impl FnOnce(&mut Value)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("secret"), "top secret\n").unwrap();
        let mut config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {
                    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "moorage-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
                "maskedPaths": ["/proc/kcore", "/secret", "/proc/acpi", "/does/not/exist"],
                "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        tweak(&mut config);
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        Bundle { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn rt(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(self.root())
            .args(args)
            .output()
            .unwrap()
    }
    /// `create`: the container init inherits the runtime's stdio, so it must
    /// not be a pipe we wait on (it stays open while the container lives).
    fn create(&self, id: &str, extra: &[&str]) -> (std::process::ExitStatus, String) {
        let errf = self.path().join(format!("{id}.create.err"));
        let status = Command::new(BIN)
            .arg("--root")
            .arg(self.root())
            .args(["create", "--bundle", self.path().to_str().unwrap()])
            .args(extra)
            .arg(id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&errf).unwrap())
            .status()
            .unwrap();
        (status, std::fs::read_to_string(&errf).unwrap())
    }
    fn run(&self, id: &str) -> Output {
        let out = self.rt(&["run", "--bundle", self.path().to_str().unwrap(), id]);
        self.assert_clean(id);
        out
    }
    /// No state dir and no mount referring to the bundle remain.
    fn assert_clean(&self, id: &str) {
        assert!(!self.root().join(id).exists(), "state dir left behind");
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mi.contains(self.path().to_str().unwrap()),
            "mount left behind"
        );
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Best effort if a test failed half-way: kill and delete everything.
        if let Ok(entries) = std::fs::read_dir(self.root()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.rt(&["delete", "--force", &id]);
            }
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    (unsafe { libc::kill(pid, 0) }) == 0
}

fn state(b: &Bundle, id: &str) -> Value {
    let o = b.rt(&["state", id]);
    assert!(o.status.success(), "state: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn run_pid1_hostname_caps_masks_readonly() {
    if !is_root() {
        return;
    }
    let script = "echo pid=$$; hostname; grep CapEff /proc/self/status; cat /secret | wc -c; \
                  if [ -e /proc/kcore ]; then cat /proc/kcore | wc -c; else echo 0; fi; \
                  ls /proc/acpi 2>/dev/null | wc -l; \
                  if echo x > /proc/sys/kernel/domainname 2>/dev/null; then echo sys-rw; else echo sys-ro; fi; \
                  if touch /newfile 2>/dev/null; then echo root-rw; else echo root-ro; fi; \
                  ls /dev; readlink /dev/ptmx";
    let b = Bundle::new(&["sh", "-c", script], |_| {});
    let o = b.run("basic");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1], "moorage-test");
    // CAP_CHOWN(0) | CAP_KILL(5) | CAP_NET_BIND_SERVICE(10)
    assert_eq!(lines[2], "CapEff:\t0000000000000421");
    assert_eq!(lines[3], "0", "masked file must read empty");
    assert_eq!(lines[4], "0", "/proc/kcore must read empty");
    assert_eq!(lines[5], "0", "masked dir must be empty");
    assert_eq!(lines[6], "sys-ro");
    assert_eq!(lines[7], "root-ro");
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd", "stdin", "stdout",
        "stderr", "ptmx",
    ] {
        assert!(lines.contains(&dev), "/dev/{dev} missing: {out}");
    }
    assert_eq!(*lines.last().unwrap(), "pts/ptmx");
}

#[test]
fn seccomp_profile_is_loaded_and_enforced() {
    if !is_root() {
        return;
    }
    let b = Bundle::new(
        &[
            "sh",
            "-c",
            "grep '^Seccomp:' /proc/self/status; mkdir /tmp/x 2>&1; echo done",
        ],
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                    {"names": ["no_such_syscall_on_this_arch"], "action": "SCMP_ACT_KILL"}
                ]
            });
        },
    );
    let o = b.run("secc");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("Seccomp:\t2\n"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.ends_with("done\n"));
}

#[test]
fn exit_codes_pass_through() {
    if !is_root() {
        return;
    }
    for (args, code) in [
        (vec!["true"], 0),
        (vec!["false"], 1),
        (vec!["sh", "-c", "exit 42"], 42),
    ] {
        let b = Bundle::new(&args, |_| {});
        let o = b.run("codes");
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
    }
    // Killed from outside (PID 1 ignores signals sent from inside its own
    // namespace, even SIGKILL): `run` exits with 128 + signal.
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let mut run = Command::new(BIN)
        .arg("--root")
        .arg(b.root())
        .args(["run", "--bundle", b.path().to_str().unwrap(), "killed"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.rt(&["state", "killed"]).status.success() || state(&b, "killed")["status"] != "running"
    {
        assert!(Instant::now() < deadline, "run did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(b.rt(&["kill", "killed", "9"]).status.success());
    assert_eq!(run.wait().unwrap().code(), Some(137));
    b.assert_clean("killed");
}

#[test]
fn create_fails_127_126_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let cases = [
        (
            vec!["nosuchcmd"],
            127,
            "exec: \"nosuchcmd\": executable file not found in $PATH",
        ),
        (vec!["/etc/passwd"], 126, "permission denied"),
        (vec!["/bin"], 126, "is a directory"),
    ];
    for (args, code, msg) in cases {
        let b = Bundle::new(&args, |_| {});
        let log = b.path().join("runtime.log");
        let o = Command::new(BIN)
            .arg("--root")
            .arg(b.root())
            .arg("--log")
            .arg(&log)
            .args([
                "create",
                "--bundle",
                b.path().to_str().unwrap(),
                "--pid-file",
            ])
            .arg(b.path().join("pid"))
            .arg("bad")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        // With --log the message goes only there: stderr is the container's.
        assert!(!stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains(msg), "{args:?}: {logged}");
        assert_eq!(logged.lines().count(), 1, "one-line message: {logged}");
        std::fs::remove_file(&log).unwrap();
        assert!(!b.path().join("pid").exists());
        b.assert_clean("bad");
    }
}

#[test]
fn lifecycle_create_start_state_kill_delete() {
    if !is_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "100"], |c| {
        c["annotations"] = json!({"org.moorage.test": "yes"});
    });
    let pidfile = b.path().join("pid");
    let (st, err) = b.create("lc", &["--pid-file", pidfile.to_str().unwrap()]);
    assert!(st.success(), "{err}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let s = state(&b, "lc");
    assert_eq!(s["status"], "created");
    assert_eq!(s["pid"], pid);
    assert_eq!(s["id"], "lc");
    assert_eq!(s["annotations"]["org.moorage.test"], "yes");
    assert_eq!(
        s["bundle"],
        b.path().canonicalize().unwrap().to_str().unwrap()
    );
    // The init has not exec'd yet: it is still the runtime binary.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert!(comm.starts_with("moorage-runtim"), "{comm}");

    assert!(b.rt(&["start", "lc"]).status.success());
    assert_eq!(state(&b, "lc")["status"], "running");
    assert!(
        !b.rt(&["start", "lc"]).status.success(),
        "second start must fail"
    );
    let o = b.rt(&["delete", "lc"]);
    assert!(
        !o.status.success(),
        "delete of a running container needs --force"
    );

    let o = b.rt(&["ps", "--format", "json", "lc"]);
    assert_eq!(
        serde_json::from_slice::<Vec<i32>>(&o.stdout).unwrap(),
        vec![pid]
    );

    assert!(b.rt(&["kill", "lc", "KILL"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while state(&b, "lc")["status"] != "stopped" {
        assert!(Instant::now() < deadline, "container did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(state(&b, "lc")["pid"], 0);
    let o = b.rt(&["delete", "lc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    b.assert_clean("lc");
    let o = b.rt(&["delete", "lc"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("container lc does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(b.rt(&["delete", "--force", "lc"]).status.success());
}

#[test]
fn delete_force_kills_created_and_running() {
    if !is_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "100"], |_| {});
    for (id, start) in [("c1", false), ("c2", true)] {
        let pidfile = b.path().join(format!("{id}.pid"));
        let (st, err) = b.create(id, &["--pid-file", pidfile.to_str().unwrap()]);
        assert!(st.success(), "{err}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if start {
            assert!(b.rt(&["start", id]).status.success());
        }
        let o = b.rt(&["delete", "--force", id]);
        assert!(o.status.success(), "{}", stderr(&o));
        // The init is not our child: it may linger as a zombie until the host
        // init reaps it; it must not be running.
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(pid)
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z")
        {
            assert!(
                Instant::now() < deadline,
                "init {pid} survived delete --force"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        b.assert_clean(id);
    }
}

#[test]
fn exec_joins_the_container() {
    if !is_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "100"], |_| {});
    let (st, err) = b.create("ex", &[]);
    assert!(st.success(), "{err}");
    assert!(b.rt(&["start", "ex"]).status.success());

    let o = b.rt(&[
        "exec",
        "--env",
        "FOO=bar",
        "ex",
        "sh",
        "-c",
        "echo $$ $FOO; hostname; cat /proc/1/cmdline | wc -c; grep CapEff /proc/self/status",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let (pid, foo) = lines[0].split_once(' ').unwrap();
    assert!(
        pid.parse::<i32>().unwrap() > 1,
        "exec'd process is not init: {out}"
    );
    assert_eq!(foo, "bar");
    assert_eq!(lines[1], "moorage-test");
    assert_eq!(
        lines[2], "10",
        "pid 1 is the container's `sleep 100`: {out}"
    );
    assert_eq!(lines[3], "CapEff:\t0000000000000421");

    let o = b.rt(&["exec", "ex", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    let o = b.rt(&["exec", "ex", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    // no --log: the one-line message is on stderr
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("nosuchcmd"), "{}", stderr(&o));
    let o = b.rt(&["exec", "--user", "1000:1000", "ex", "id"]);
    assert_eq!(stdout(&o).trim(), "uid=1000 gid=1000", "{}", stderr(&o));

    let o = b.rt(&["delete", "--force", "ex"]);
    assert!(o.status.success(), "{}", stderr(&o));
    b.assert_clean("ex");
}

#[test]
fn init_reaps_orphans_and_passes_status() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("orphan");
    // The inner shell leaves an orphan that exits quickly; init (a
    // subreaper here, PID 1 in a container) must reap it.
    let script = format!(
        "busybox sh -c 'busybox sleep 0.1 & echo $! > {p}'; busybox sleep 0.5; \
         if [ -e /proc/$(busybox cat {p})/stat ]; then busybox cat /proc/$(busybox cat {p})/stat; else echo reaped; fi; exit 3",
        p = pidfile.display()
    );
    let o = Command::new(BIN)
        .args(["init", "--", "/bin/busybox", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "reaped");

    let o = Command::new(BIN)
        .args(["init", "/bin/busybox", "sh", "-c", "kill -9 $$"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(137));
    // Forwarded TERM ends the child; its status is passed through.
    let mut child = Command::new(BIN)
        .args(["init", "--", "/bin/busybox", "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(128 + libc::SIGTERM));
}

#[test]
fn cgroup_resources_pause_resume_and_cleanup() {
    if !is_root() || !Path::new("/sys/fs/cgroup/freezer").is_dir() {
        return;
    }
    let cg = format!("/moorage-rt-itest-{}", std::process::id());
    let b = Bundle::new(&["sleep", "100"], |c| {
        c["linux"]["cgroupsPath"] = json!(cg);
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}});
    });
    let pidfile = b.path().join("pid");
    let (st, err) = b.create("cg", &["--pid-file", pidfile.to_str().unwrap()]);
    assert!(st.success(), "{err}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(host_view.contains(&format!("memory:{cg}")), "{host_view}");
    let mem = format!("/sys/fs/cgroup/memory{cg}");
    assert_eq!(
        std::fs::read_to_string(format!("{mem}/memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        "67108864"
    );
    assert!(b.rt(&["start", "cg"]).status.success());

    // Inside its cgroup namespace the container sees its cgroup as `/`.
    let o = b.rt(&["exec", "cg", "cat", "/proc/1/cgroup"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(":memory:/\n"), "{}", stdout(&o));
    let o = b.rt(&["ps", "--format", "json", "cg"]);
    assert_eq!(
        serde_json::from_slice::<Vec<i32>>(&o.stdout).unwrap(),
        vec![pid]
    );
    // runc's `events --stats` shape, read from the cgroup
    let o = b.rt(&["events", "--stats", "cg"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ev: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (ev["type"].as_str(), ev["id"].as_str()),
        (Some("stats"), Some("cg"))
    );
    let data = &ev["data"];
    assert_eq!(data["memory"]["usage"]["limit"], 67108864);
    assert!(data["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(data["memory"]["raw"]["inactive_file"].is_u64());
    assert_eq!(data["pids"], json!({"current": 1, "limit": 20}));
    assert!(data["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert!(!b.rt(&["events", "cg"]).status.success()); // no event stream

    // runc's `update -r`: new limits on the live cgroup
    let res = b.path().join("resources.json");
    std::fs::write(
        &res,
        r#"{"memory": {"limit": 134217728}, "pids": {"limit": 30}}"#,
    )
    .unwrap();
    let o = b.rt(&["update", "-r", res.to_str().unwrap(), "cg"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(format!("{mem}/memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        "134217728"
    );
    assert_eq!(
        std::fs::read_to_string(format!("/sys/fs/cgroup/pids{cg}/pids.max"))
            .unwrap()
            .trim(),
        "30"
    );
    std::fs::write(&res, "{not json").unwrap();
    let o = b.rt(&["update", "-r", res.to_str().unwrap(), "cg"]);
    assert!(!o.status.success() && stderr(&o).contains("invalid resources JSON"));

    assert!(b.rt(&["pause", "cg"]).status.success());
    assert_eq!(state(&b, "cg")["status"], "paused");
    let freezer = format!("/sys/fs/cgroup/freezer{cg}/freezer.state");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    assert!(b.rt(&["resume", "cg"]).status.success());
    assert_eq!(state(&b, "cg")["status"], "running");

    let o = b.rt(&["delete", "--force", "cg"]);
    assert!(o.status.success(), "{}", stderr(&o));
    b.assert_clean("cg");
    assert!(!Path::new(&mem).exists(), "cgroup left behind");
    // The parent directory was created for us; remove it (best effort).
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(ctrl.path().join(cg.trim_start_matches('/')));
    }
}

#[test]
fn terminal_master_goes_to_console_socket() {
    if !is_root() {
        return;
    }
    use std::os::unix::net::UnixListener;
    let b = Bundle::new(&["sh", "-c", "tty; echo hello; sleep 100"], |c| {
        c["process"]["terminal"] = json!(true);
    });
    let sock = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let (st, err) = b.create("tty", &["--console-socket", sock.to_str().unwrap()]);
    assert!(st.success(), "{err}");
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&conn),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut master = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            master = Some(fds[0]);
        }
    }
    let master = master.expect("no fd received");
    assert!(b.rt(&["start", "tty"]).status.success());
    // SAFETY: the descriptor was just received and is ours.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(master) };
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&out).contains("hello") && Instant::now() < deadline {
        let mut chunk = [0u8; 256];
        let n = std::io::Read::read(&mut f, &mut chunk).unwrap();
        out.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("/dev/pts/0") && text.contains("hello"),
        "{text}"
    );
    let o = b.rt(&["delete", "--force", "tty"]);
    assert!(o.status.success(), "{}", stderr(&o));
    b.assert_clean("tty");
}
