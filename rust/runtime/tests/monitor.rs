//! Integration tests of `moorage-runtime monitor` against runc with a
//! busybox bundle in a temp dir. Root, runc and /bin/busybox are needed;
//! otherwise each test prints why it is skipped. Every fixture removes its
//! runc state, cgroups and processes on drop, even when an assertion fails.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

static N: AtomicUsize = AtomicUsize::new(0);
const BIN: &str = env!("CARGO_BIN_EXE_moorage-runtime");

fn runc() -> Option<PathBuf> {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: monitor tests need root");
        return None;
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipped: /bin/busybox missing");
        return None;
    }
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join("runc"))
        .find(|p| p.exists());
    if found.is_none() {
        eprintln!("skipped: runc not on PATH");
    }
    found
}

/// The runtime the monitor drives: runc, or MOORAGE_TEST_RUNTIME (e.g.
/// this crate's own binary) when set. Bundles are still made by `runc spec`.
fn runtime_under_test(runc: &Path) -> PathBuf {
    std::env::var_os("MOORAGE_TEST_RUNTIME").map_or_else(|| runc.to_path_buf(), PathBuf::from)
}

struct Fixture {
    dir: tempfile::TempDir,
    runc: PathBuf,
    id: String,
    cgroup: String,
}

impl Fixture {
    fn new(script: &str) -> Option<Fixture> {
        Fixture::with(script, false)
    }

    fn with(script: &str, terminal: bool) -> Option<Fixture> {
        let runc = runc()?;
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = format!("mt-{}-{n}", std::process::id());
        let cgroup = format!("/moorage-test-{}-{n}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("bundle/rootfs/bin");
        fs::create_dir_all(&rootfs).unwrap();
        fs::create_dir_all(dir.path().join("state")).unwrap();
        fs::create_dir_all(dir.path().join("root")).unwrap();
        fs::copy("/bin/busybox", rootfs.join("busybox")).unwrap();
        for applet in ["sh", "echo", "sleep", "cat", "tty"] {
            std::os::unix::fs::symlink("busybox", rootfs.join(applet)).unwrap();
        }
        let st = Command::new(&runc)
            .arg("spec")
            .current_dir(dir.path().join("bundle"))
            .status()
            .unwrap();
        assert!(st.success());
        let cfg_path = dir.path().join("bundle/config.json");
        let mut cfg: Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
        cfg["process"]["terminal"] = Value::Bool(terminal);
        cfg["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        cfg["linux"]["cgroupsPath"] = Value::String(cgroup.clone());
        fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
        Some(Fixture {
            dir,
            runc,
            id,
            cgroup,
        })
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("c.log")
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("monitor")
            .args(["--id", &self.id])
            .arg("--bundle")
            .arg(self.dir.path().join("bundle"))
            .arg("--runtime")
            .arg(runtime_under_test(&self.runc))
            .arg("--runtime-root")
            .arg(self.dir.path().join("root"))
            .arg("--state-dir")
            .arg(self.state())
            .arg("--log-path")
            .arg(self.log())
            .args(extra);
        c
    }

    /// Start detached; the monitor's parent exits 0 at once.
    fn start(&self, extra: &[&str]) {
        let st = self
            .command(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "monitor parent exited {st:?}");
        assert!(self.state().join("monitor.pid").exists());
    }

    /// Start with a sync pipe on fd `N`; returns its read end.
    fn start_with_sync(&self, extra: &[&str]) -> BufReader<fs::File> {
        let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let wfd = w.as_raw_fd();
        let fd_arg = wfd.to_string();
        let mut c = self.command(extra);
        c.args(["--sync-fd", &fd_arg])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Only this child gets the write end (CLOEXEC cleared after fork),
        // so parallel tests cannot keep it open by accident.
        unsafe {
            c.pre_exec(move || {
                if libc::fcntl(wfd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let st = c.status().unwrap();
        drop(w);
        assert!(st.success());
        BufReader::new(fs::File::from(r))
    }

    fn status(&self) -> Option<Value> {
        let b = fs::read(self.state().join("status.json")).ok()?;
        serde_json::from_slice(&b).ok()
    }

    fn wait_status(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.status() {
                if pred(&s) {
                    return s;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status {:?}",
                self.status()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Final status: "exited" and the monitor process gone.
    fn wait_done(&self) -> Value {
        let s = self.wait_status("exited", |s| s["status"] == "exited");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.monitor_alive().is_some() {
            assert!(Instant::now() < deadline, "monitor did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn wait_running(&self) -> i32 {
        let s = self.wait_status("running", |s| s["status"] == "running");
        s["pid"].as_i64().unwrap() as i32
    }

    /// The monitor's pid if that process is still our monitor.
    fn monitor_alive(&self) -> Option<i32> {
        let pid: i32 = fs::read_to_string(self.state().join("monitor.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'));
        (!zombie && String::from_utf8_lossy(&cmdline).contains(&self.id)).then_some(pid)
    }

    fn log_entries(&self) -> Vec<Value> {
        fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(pid) = self.monitor_alive() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = Command::new(runtime_under_test(&self.runc))
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .args(["delete", "-f", &self.id])
            .stderr(Stdio::null())
            .status();
        if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let _ = fs::remove_dir(e.path().join(self.cgroup.trim_start_matches('/')));
            }
        }
    }
}

fn vm_rss_kib(pid: i32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn detached_logs_both_streams_and_exit_0() {
    let Some(f) = Fixture::new("echo hi; echo err >&2") else {
        return;
    };
    f.start(&[]);
    let s = f.wait_done();
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["signal"], Value::Null);
    assert_eq!(s["oom_killed"], false);
    assert_eq!(s["restart_count"], 0);
    assert_eq!(s["error"], Value::Null);
    assert!(s["started_at"].as_str().unwrap().ends_with('Z'));
    let logs = f.log_entries();
    let out: Vec<(&str, &str)> = logs
        .iter()
        .map(|e| (e["log"].as_str().unwrap(), e["stream"].as_str().unwrap()))
        .collect();
    assert!(out.contains(&("hi\n", "stdout")), "{out:?}");
    assert!(out.contains(&("err\n", "stderr")), "{out:?}");
    assert_eq!(out.len(), 2);
    assert!(logs[0]["time"].as_str().unwrap().starts_with("20"));
}

#[test]
fn exit_code_is_recorded() {
    let Some(f) = Fixture::new("exit 3") else {
        return;
    };
    f.start(&[]);
    let s = f.wait_done();
    assert_eq!(s["exit_code"], 3);
    assert_eq!(s["status"], "exited");
}

#[test]
fn on_failure_restarts_three_times() {
    let Some(f) = Fixture::new("echo run; exit 1") else {
        return;
    };
    f.start(&["--restart", "on-failure:3"]);
    let s = f.wait_done();
    assert_eq!(s["exit_code"], 1);
    assert_eq!(s["restart_count"], 3);
    let runs = f
        .log_entries()
        .iter()
        .filter(|e| e["log"] == "run\n")
        .count();
    assert_eq!(runs, 4, "one first run and three restarts, same log file");
}

#[test]
fn stop_requested_prevents_restart() {
    let Some(f) = Fixture::new("sleep 100") else {
        return;
    };
    f.start(&["--restart", "always"]);
    let pid = f.wait_running();
    fs::write(f.state().join("stop-requested"), "").unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let s = f.wait_done();
    assert_eq!(s["restart_count"], 0);
    assert_eq!(s["exit_code"], 137);
}

#[test]
fn always_restarts_after_kill() {
    let Some(f) = Fixture::new("sleep 100") else {
        return;
    };
    f.start(&["--restart", "always"]);
    let pid = f.wait_running();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let s = f.wait_status("restart", |s| {
        s["status"] == "running" && s["restart_count"] == 1
    });
    assert_ne!(s["pid"].as_i64().unwrap() as i32, pid);
    // Stop it for good: the engine's way.
    fs::write(f.state().join("stop-requested"), "").unwrap();
    unsafe { libc::kill(s["pid"].as_i64().unwrap() as i32, libc::SIGKILL) };
    assert_eq!(f.wait_done()["restart_count"], 1);
}

#[test]
fn sigkill_gives_signal_9_and_137() {
    let Some(f) = Fixture::new("sleep 100") else {
        return;
    };
    f.start(&[]);
    let pid = f.wait_running();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let s = f.wait_done();
    assert_eq!(s["exit_code"], 137);
    assert_eq!(s["signal"], 9);
}

#[test]
fn sigterm_to_monitor_is_forwarded() {
    // pid 1 has no default signal actions, so the trap proves delivery.
    let Some(f) = Fixture::new("trap 'exit 7' TERM; echo ready; while true; do sleep 0.05; done")
    else {
        return;
    };
    f.start(&[]);
    f.wait_running();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f.log_entries().iter().any(|e| e["log"] == "ready\n") {
        assert!(Instant::now() < deadline, "container never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mon = f.monitor_alive().unwrap();
    unsafe { libc::kill(mon, libc::SIGTERM) };
    assert_eq!(f.wait_done()["exit_code"], 7);
}

#[test]
fn sync_fd_gets_pid_then_exit_code() {
    let Some(f) = Fixture::new("sleep 0.2; exit 5") else {
        return;
    };
    let mut r = f.start_with_sync(&[]);
    let mut lines = Vec::new();
    let mut line = String::new();
    while r.read_line(&mut line).unwrap() > 0 {
        lines.push(serde_json::from_str::<Value>(&line).unwrap());
        line.clear();
    }
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0]["pid"].as_i64().unwrap() > 1);
    assert_eq!(lines[1]["exit_code"], 5);
    assert_eq!(f.wait_done()["exit_code"], 5);
}

#[test]
fn create_failure_reports_127() {
    let Some(f) = Fixture::new("unused") else {
        return;
    };
    let cfg_path = f.dir.path().join("bundle/config.json");
    let mut cfg: Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"]["args"] = serde_json::json!(["/no/such/binary"]);
    fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let mut r = f.start_with_sync(&[]);
    let mut text = String::new();
    r.read_to_string(&mut text).unwrap();
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["exit_code"], 127, "{text}");
    assert!(!v["error"].as_str().unwrap().is_empty());
    let s = f.wait_done();
    assert_eq!(s["exit_code"], 127);
    assert!(s["error"].as_str().is_some());
}

#[test]
fn attach_copies_stdin_and_stdout() {
    let Some(f) = Fixture::new("cat; echo done >&2") else {
        return;
    };
    let mut child = f
        .command(&["--attach", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    assert!(child.wait().unwrap().success());
    stdin.write_all(b"hello\n").unwrap();
    drop(stdin); // EOF → cat ends
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap(); // EOF when the monitor exits
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert_eq!(out, "hello\n");
    assert_eq!(err, "done\n");
    assert_eq!(f.wait_done()["exit_code"], 0);
    assert!(f
        .log_entries()
        .iter()
        .any(|e| e["log"] == "hello\n" && e["stream"] == "stdout"));
}

#[test]
fn tty_output_is_one_stream() {
    let Some(f) = Fixture::with("echo out; echo err >&2; tty", true) else {
        return;
    };
    f.start(&["--tty"]);
    let s = f.wait_done();
    assert_eq!(s["exit_code"], 0, "{s}");
    let logs = f.log_entries();
    let all: String = logs.iter().map(|e| e["log"].as_str().unwrap()).collect();
    assert!(logs.iter().all(|e| e["stream"] == "stdout"));
    assert!(
        all.contains("out\r\n") && all.contains("err\r\n"),
        "{all:?}"
    );
    assert!(all.contains("/dev/pts/"), "{all:?}");
}

#[test]
fn idle_monitor_rss() {
    let Some(f) = Fixture::new("sleep 100") else {
        return;
    };
    f.start(&[]);
    let pid = f.wait_running();
    std::thread::sleep(Duration::from_millis(200));
    let mon = f.monitor_alive().unwrap();
    let rss = vm_rss_kib(mon);
    println!("monitor VmRSS of an idle detached container: {rss} KiB");
    eprintln!("monitor VmRSS of an idle detached container: {rss} KiB");
    // Debug builds are far bigger than release; this only catches leaks
    // such as a buffer per line. The release figure is in the report.
    assert!(rss < 8 * 1024, "{rss} KiB");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    f.wait_done();
}
