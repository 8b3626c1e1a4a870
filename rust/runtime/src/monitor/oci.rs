//! Driving the OCI runtime through runc's command line, so the monitor
//! works the same with runc, crun or moorage's own runtime:
//! `RUNTIME [ARGS...] --root R --log F <verb> ...`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::error::{sys, MonitorError, Result};

pub struct Runtime {
    pub path: PathBuf,
    pub args: Vec<String>,
    pub root: PathBuf,
    pub log: PathBuf,
    pub id: String,
}

/// stdio for `create`; the container's init inherits it.
pub struct CreateStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl Runtime {
    fn command(&self, verb: &str) -> Command {
        let mut c = Command::new(&self.path);
        c.args(&self.args)
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg(verb);
        super::sys::unblock_signals_in_child(&mut c);
        c
    }

    /// Spawn `create`; returns its pid (reaped by `wait_pid`, never by the
    /// monitor's waitpid(-1) loop, which only runs while no helper is alive).
    pub fn spawn_create(
        &self,
        bundle: &Path,
        pid_file: &Path,
        console: Option<&Path>,
        stdio: CreateStdio,
    ) -> Result<Pid> {
        let mut c = self.command("create");
        c.arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file);
        if let Some(sock) = console {
            c.arg("--console-socket").arg(sock);
        }
        c.arg(&self.id)
            .stdin(Stdio::from(stdio.stdin))
            .stdout(Stdio::from(stdio.stdout))
            .stderr(Stdio::from(stdio.stderr));
        let child = c.spawn().map_err(|source| MonitorError::Spawn {
            path: self.path.clone(),
            source,
        })?;
        Ok(Pid::from_raw(child.id() as i32))
    }

    /// Run a verb with /dev/null stdio and wait; returns the exit code.
    pub fn run(&self, verb: &str, extra: &[&str]) -> Result<i32> {
        let mut c = self.command(verb);
        c.args(extra)
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = c.spawn().map_err(|source| MonitorError::Spawn {
            path: self.path.clone(),
            source,
        })?;
        wait_pid(Pid::from_raw(child.id() as i32))
    }

    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }
}

/// Wait for one specific child; exit code, or 128+signal.
pub fn wait_pid(pid: Pid) -> Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(sys("waitpid runtime")(e)),
        }
    }
}

/// The runtime's error message: the last line it logged since `from`
/// (runc logs JSON lines `{"level":"error","msg":…}`), else its stderr.
pub fn error_message(log: &Path, from: u64, stderr: &[u8]) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(log) {
        if f.seek(SeekFrom::Start(from)).is_ok() {
            let _ = f.by_ref().take(64 * 1024).read_to_string(&mut text);
        }
    }
    let last = text.lines().rev().map(str::trim).find(|l| !l.is_empty());
    let msg = match last {
        Some(line) => match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => v
                .get("msg")
                .and_then(|m| m.as_str())
                .map_or_else(|| line.to_string(), str::to_string),
            Err(_) => line.to_string(),
        },
        None => String::from_utf8_lossy(stderr)
            .trim()
            .lines()
            .last()
            .unwrap_or("")
            .to_string(),
    };
    if msg.is_empty() {
        "OCI runtime create failed".to_string()
    } else {
        msg
    }
}

/// Docker's convention: 126 cannot execute, 127 not found, 125 anything
/// else. moorage's runtime exits 126/127 itself; runc exits 1, so its
/// message decides.
pub fn exit_code_for(runtime_code: i32, msg: &str) -> i32 {
    if runtime_code == 126 || runtime_code == 127 {
        return runtime_code;
    }
    let m = msg.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") {
        126
    } else {
        125
    }
}

pub fn read_pid_file(path: &Path) -> Result<i32> {
    let s = std::fs::read_to_string(path).map_err(super::error::io("read pid file", path))?;
    s.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| MonitorError::Args(format!("bad pid {:?} in {}", s.trim(), path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code_for(127, "whatever"), 127);
        assert_eq!(exit_code_for(126, ""), 126);
        assert_eq!(
            exit_code_for(1, "exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(exit_code_for(1, "exec /x: no such file or directory"), 127);
        assert_eq!(exit_code_for(1, "exec /etc: Permission denied"), 126);
        assert_eq!(exit_code_for(1, "cgroup busy"), 125);
    }

    #[test]
    fn message_from_log_or_stderr() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("runtime.log");
        std::fs::write(&log, "{\"level\":\"error\",\"msg\":\"old\"}\n").unwrap();
        let from = std::fs::metadata(&log).unwrap().len();
        assert_eq!(
            error_message(&log, from, b"boom\nlast words\n"),
            "last words"
        );
        std::fs::write(
            &log,
            "{\"level\":\"error\",\"msg\":\"old\"}\n{\"level\":\"error\",\"msg\":\"runc create failed: x\",\"time\":\"t\"}\n",
        )
        .unwrap();
        assert_eq!(error_message(&log, from, b""), "runc create failed: x");
        std::fs::write(
            &log,
            "{\"level\":\"error\",\"msg\":\"old\"}\nplain text error\n",
        )
        .unwrap();
        assert_eq!(error_message(&log, from, b""), "plain text error");
        assert_eq!(
            error_message(&d.path().join("missing"), 0, b""),
            "OCI runtime create failed"
        );
    }
}
