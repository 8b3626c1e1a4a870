//! The per-container monitor (moorage's conmon): one small process per
//! container that starts it through the OCI runtime's CLI, reaps it, writes
//! its output to a Docker json-file log, records its exit in
//! DIR/status.json and applies the restart policy.
//!
//! ```text
//! moorage-runtime monitor --id ID --bundle DIR --runtime PATH [--runtime-arg ARG]...
//!     --runtime-root DIR --state-dir DIR --log-path FILE
//!     [--restart no|always|unless-stopped|on-failure[:N]] [--stdin] [--tty] [--attach]
//!     [--sync-fd N] [--exit-command PATH [--exit-command-arg ARG]...]
//! ```
//!
//! Protocol with the engine (caller), in time order:
//!
//! ```text
//! caller                       monitor (forked child, setsid, subreaper)        runtime
//!   | spawn, reap parent (exit 0)  |
//!   |                              | write STATE/monitor.pid
//!   |                              |-- RUNTIME --root R --log STATE/runtime.log
//!   |                              |     create --bundle B --pid-file STATE/pid ID -->|
//!   |   sync fd: {"error": M, "exit_code": 125|126|127}\n, close  (create failed)    |
//!   |                              |-- RUNTIME start ID ---------------------------->|
//!   |   sync fd: {"pid": P}\n      |   status.json {"status":"running",…}
//!   |                              |   … logs, signals forwarded, SIGCHLD reaped …
//!   |   sync fd: {"exit_code": N}\n, close (first exit only)
//!   |                              |   status.json "exited" | "restarting"
//!   |                              |-- RUNTIME delete --force ID ------------------->|
//!   |                              |   restart? back-off, then create again
//!   |                              |   else run --exit-command, exit 0
//! ```
//!
//! STATE/restart-policy, when present, replaces --restart from the next exit
//! on (`moorage update --restart`).
//! The engine writes STATE/stop-requested before a user stop/kill: no
//! restart follows then. SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 sent
//! to the monitor are forwarded to the container; during a restart back-off
//! SIGTERM/SIGINT/SIGHUP/SIGQUIT cancel the restart instead.
//!
//! Limits: the console socket path must fit in sun_path (108 bytes); pty
//! window size changes are not relayed; a relative linux.cgroupsPath is
//! looked up from the cgroup root (runc makes it relative to its own cgroup),
//! so OOM detection may miss for such configs.

mod attach;
mod console;
mod error;
mod logfile;
mod oci;
mod pump;
mod restart;
mod status;
mod sys;
mod timefmt;

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use error::{MonitorError, Result};
use logfile::{JsonLog, LineBuf, Stream};
use restart::{Backoff, Policy};

#[derive(Parser, Debug)]
#[command(
    name = "moorage-runtime monitor",
    no_binary_name = true,
    about = "Per-container monitor"
)]
struct Args {
    #[arg(long)]
    id: String,
    #[arg(long)]
    bundle: PathBuf,
    /// OCI runtime executable with runc's command line.
    #[arg(long)]
    runtime: PathBuf,
    /// Global option for the runtime, placed before the verb (repeatable).
    #[arg(long = "runtime-arg", allow_hyphen_values = true)]
    runtime_args: Vec<String>,
    #[arg(long)]
    runtime_root: PathBuf,
    /// Per-container state dir: monitor.pid, pid, status.json, runtime.log.
    #[arg(long)]
    state_dir: PathBuf,
    /// json-file log (appended).
    #[arg(long)]
    log_path: PathBuf,
    #[arg(long, default_value = "no")]
    restart: Policy,
    #[arg(long)]
    stdin: bool,
    #[arg(long)]
    tty: bool,
    /// Where to listen for the pty master with --tty (default
    /// STATE_DIR/console.sock). sun_path holds 108 bytes, so a caller with a
    /// long state dir names a shorter place.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    attach: bool,
    /// Listen here for `moorage attach` clients (see `attach`).
    #[arg(long)]
    attach_socket: Option<PathBuf>,
    #[arg(long)]
    sync_fd: Option<i32>,
    #[arg(long)]
    exit_command: Option<PathBuf>,
    #[arg(long = "exit-command-arg", allow_hyphen_values = true)]
    exit_command_args: Vec<String>,
}

pub fn main(args: &[String]) -> i32 {
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    if let Some(fd) = args.sync_fd {
        if fd < 3 {
            eprintln!("moorage-runtime monitor: --sync-fd must be 3 or above");
            return 125;
        }
    }
    match sys::daemonize(&args.state_dir, args.sync_fd, !args.attach) {
        Ok(sys::Role::Parent) => 0,
        Ok(sys::Role::Child) => {
            Monitor::run(args);
            0
        }
        Err(e) => {
            eprintln!("moorage-runtime monitor: {e}");
            if let Some(fd) = args.sync_fd {
                let _ = sys::write_all_raw(fd, error_line(&e.to_string(), 125).as_bytes());
            }
            125
        }
    }
}

fn error_line(msg: &str, code: i32) -> String {
    let msg = serde_json::to_string(msg).unwrap_or_else(|_| "\"error\"".into());
    format!("{{\"error\": {msg}, \"exit_code\": {code}}}\n")
}

/// The engine's end of the sync pipe, open until the first exit is reported.
struct SyncFd(Option<OwnedFd>);

impl SyncFd {
    fn send(&mut self, line: &str) {
        if let Some(fd) = &self.0 {
            if sys::write_all_raw(fd.as_raw_fd(), line.as_bytes()).is_err() {
                self.0 = None; // the engine went away (EPIPE)
            }
        }
    }
    fn send_and_close(&mut self, line: &str) {
        self.send(line);
        self.0 = None;
    }
}

enum Outcome {
    /// create or start failed; nothing ran.
    Failed { msg: String, code: i32 },
    Exited {
        code: i32,
        signal: Option<i32>,
        oom: bool,
        started_at: String,
        ran_for: Duration,
    },
}

struct Monitor {
    args: Args,
    runtime: oci::Runtime,
    sigfd: SignalFd,
    log: JsonLog,
    bufs: [LineBuf; 2],
    sync: SyncFd,
    cgroup: Box<dyn moorage_core::cgroups::Manager>,
    hub: Option<attach::Hub>,
}

impl Monitor {
    fn run(args: Args) {
        let sync = SyncFd(args.sync_fd.map(sys::adopt_fd));
        let mut m = match Monitor::new(args, sync) {
            Ok(m) => m,
            Err((e, mut sync, dir)) => {
                let msg = e.to_string();
                sync.send_and_close(&error_line(&msg, 125));
                let _ = write_failed(&dir, &msg, 125, 0);
                return;
            }
        };
        m.supervise();
        m.exit_command();
    }

    #[allow(clippy::result_large_err)]
    fn new(
        args: Args,
        sync: SyncFd,
    ) -> std::result::Result<Monitor, (MonitorError, SyncFd, PathBuf)> {
        let dir = args.state_dir.clone();
        type Setup = (
            SignalFd,
            JsonLog,
            Box<dyn moorage_core::cgroups::Manager>,
            Option<attach::Hub>,
        );
        let setup = || -> Result<Setup> {
            let sigfd = sys::signal_fd()?;
            let log = JsonLog::open(&args.log_path)?;
            let hub = match &args.attach_socket {
                Some(p) => Some(attach::Hub::bind(p, args.tty)?),
                None => None,
            };
            Ok((sigfd, log, cgroup_manager(&args.bundle), hub))
        };
        let (sigfd, log, cgroup, hub) = match setup() {
            Ok(v) => v,
            Err(e) => return Err((e, sync, dir)),
        };
        let runtime = oci::Runtime {
            path: args.runtime.clone(),
            args: args.runtime_args.clone(),
            root: args.runtime_root.clone(),
            log: dir.join("runtime.log"),
            id: args.id.clone(),
        };
        Ok(Monitor {
            args,
            runtime,
            sigfd,
            log,
            bufs: [LineBuf::new(), LineBuf::new()],
            sync,
            cgroup,
            hub,
        })
    }

    fn dir(&self) -> &Path {
        &self.args.state_dir
    }

    /// Runs, restarts, until no restart follows.
    fn supervise(&mut self) {
        let mut restarts = 0u32;
        let mut backoff = Backoff::default();
        loop {
            let outcome = self.run_once(restarts).unwrap_or_else(|e| Outcome::Failed {
                msg: e.to_string(),
                code: 125,
            });
            let (code, signal, oom, started_at, ran_for) = match outcome {
                Outcome::Failed { msg, code } => {
                    self.sync.send_and_close(&error_line(&msg, code));
                    let _ = write_failed(self.dir(), &msg, code, restarts);
                    self.delete();
                    return;
                }
                Outcome::Exited {
                    code,
                    signal,
                    oom,
                    started_at,
                    ran_for,
                } => (code, signal, oom, started_at, ran_for),
            };
            self.sync
                .send_and_close(&format!("{{\"exit_code\": {code}}}\n"));
            let finished_at = timefmt::now();
            let mut restart = self
                .policy()
                .should_restart(code, restarts, self.stop_requested());
            let mut record = status::Exited {
                status: if restart { "restarting" } else { "exited" },
                pid: 0,
                exit_code: code,
                signal,
                oom_killed: oom,
                started_at: Some(&started_at),
                finished_at: &finished_at,
                restart_count: restarts,
                error: None,
            };
            let _ = status::write(self.dir(), &record);
            self.delete();
            if restart {
                restart = self.back_off(backoff.delay(ran_for)) && !self.stop_requested();
                if !restart {
                    record.status = "exited";
                    let _ = status::write(self.dir(), &record);
                }
            }
            if !restart {
                return;
            }
            restarts += 1;
        }
    }

    fn stop_requested(&self) -> bool {
        self.dir().join("stop-requested").exists()
    }

    /// The restart policy now: `update --restart` writes DIR/restart-policy,
    /// read at each exit, over the one the monitor was started with.
    fn policy(&self) -> Policy {
        std::fs::read_to_string(self.dir().join("restart-policy"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(self.args.restart)
    }

    /// `RUNTIME delete --force ID`, then collect whatever it killed (the
    /// init of a container that never started is our child too).
    fn delete(&self) {
        let _ = self.runtime.run("delete", &["--force"]);
        sys::reap_all(None);
    }

    /// Sleep before a restart. false when a stop signal cancels it.
    fn back_off(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            let mut pfd = libc::pollfd {
                fd: self.sigfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32 + 1) };
            while let Ok(Some(info)) = self.sigfd.read_signal() {
                match info.ssi_signo as i32 {
                    libc::SIGCHLD => {
                        sys::reap_all(None);
                    }
                    libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT => return false,
                    _ => {}
                }
            }
        }
    }

    /// One create/start/wait cycle.
    fn run_once(&mut self, restarts: u32) -> Result<Outcome> {
        let dir = self.args.state_dir.clone();
        let pid_file = dir.join("pid");
        let _ = std::fs::remove_file(&pid_file);
        let log_from = self.runtime.log_len();

        let console = if self.args.tty {
            let path = self
                .args
                .console_socket
                .clone()
                .unwrap_or_else(|| dir.join("console.sock"));
            Some(console::ConsoleSocket::bind(&path)?)
        } else {
            None
        };
        let mut out_r = None;
        let mut err_r = None;
        let mut stdin_w = None;
        let stdio = if console.is_some() {
            oci::CreateStdio {
                stdin: sys::dev_null()?,
                stdout: sys::dev_null()?,
                stderr: sys::dev_null()?,
            }
        } else {
            let (or, ow) = sys::pipe()?;
            let (er, ew) = sys::pipe()?;
            out_r = Some(or);
            err_r = Some(er);
            let stdin = if self.args.stdin {
                let (ir, iw) = sys::pipe()?;
                stdin_w = Some(iw);
                ir
            } else {
                sys::dev_null()?
            };
            oci::CreateStdio {
                stdin,
                stdout: ow,
                stderr: ew,
            }
        };
        let create = self.runtime.spawn_create(
            &self.args.bundle,
            &pid_file,
            console.as_ref().map(|c| c.path.as_path()),
            stdio,
        )?;
        let (code, master) = match &console {
            Some(c) => wait_with_console(create, c)?,
            None => (oci::wait_pid(create)?, None),
        };
        drop(console);
        if code != 0 {
            let stderr = err_r.as_ref().map(read_available).unwrap_or_default();
            let msg = oci::error_message(&self.runtime.log, log_from, &stderr);
            return Ok(Outcome::Failed {
                code: oci::exit_code_for(code, &msg),
                msg,
            });
        }
        let master = match (self.args.tty, master) {
            (true, None) => {
                return Ok(Outcome::Failed {
                    msg: "the runtime sent no console (pty) fd".into(),
                    code: 125,
                })
            }
            (_, m) => m,
        };
        let pid = Pid::from_raw(oci::read_pid_file(&pid_file)?);
        let oom_before = self.cgroup.stats().map(|s| s.oom_kills).unwrap_or(0);

        let start_from = self.runtime.log_len();
        let code = self.runtime.run("start", &[])?;
        if code != 0 {
            let msg = oci::error_message(&self.runtime.log, start_from, b"");
            return Ok(Outcome::Failed {
                code: oci::exit_code_for(code, &msg),
                msg,
            });
        }
        let started = Instant::now();
        let started_at = timefmt::now();
        let _ = status::write(
            &dir,
            &status::Running {
                status: "running",
                pid: pid.as_raw(),
                started_at: &started_at,
                restart_count: restarts,
            },
        );
        self.sync.send(&format!("{{\"pid\": {}}}\n", pid.as_raw()));

        // Without --attach the stdin pipe's write end stays open for the
        // whole run (held for attach clients' input), so the container never
        // sees EOF. With --attach it is ours alone: our stdin's EOF is the
        // container's.
        let attach = self.args.attach;
        let (pumps, stdin_to, held_stdin) = match master {
            Some(m) => {
                let to = if self.args.stdin {
                    Some(m.try_clone().map_err(error::io("dup pty master", &dir))?)
                } else {
                    None
                };
                let (to, held) = if attach { (to, None) } else { (None, to) };
                (
                    [
                        Some(pump::Pump {
                            fd: m,
                            stream: Stream::Stdout,
                            attach_fd: attach.then_some(1),
                        }),
                        None,
                    ],
                    to,
                    held,
                )
            }
            None => {
                let pumps = [
                    out_r.map(|fd| pump::Pump {
                        fd,
                        stream: Stream::Stdout,
                        attach_fd: attach.then_some(1),
                    }),
                    err_r.map(|fd| pump::Pump {
                        fd,
                        stream: Stream::Stderr,
                        attach_fd: attach.then_some(2),
                    }),
                ];
                if attach {
                    (pumps, stdin_w, None)
                } else {
                    (pumps, None, stdin_w)
                }
            }
        };
        sys::drop_startup_pages();
        let (code, signal) = pump::Loop {
            sigfd: &self.sigfd,
            log: &mut self.log,
            bufs: &mut self.bufs,
            container: pid,
            stdin_to,
            hub: self.hub.as_mut(),
            hub_stdin: held_stdin,
        }
        .run(pumps);
        let oom = self
            .cgroup
            .stats()
            .map(|s| s.oom_kills > oom_before)
            .unwrap_or(false);
        Ok(Outcome::Exited {
            code,
            signal,
            oom,
            started_at,
            ran_for: started.elapsed(),
        })
    }

    fn exit_command(&self) {
        let Some(cmd) = &self.args.exit_command else {
            return;
        };
        let mut c = std::process::Command::new(cmd);
        c.args(&self.args.exit_command_args)
            .stdin(std::process::Stdio::null());
        sys::unblock_signals_in_child(&mut c);
        match c.spawn() {
            Ok(child) => {
                let _ = oci::wait_pid(Pid::from_raw(child.id() as i32));
            }
            Err(e) => eprintln!(
                "moorage-runtime monitor: exit command {}: {e}",
                cmd.display()
            ),
        }
    }
}

fn write_failed(dir: &Path, msg: &str, code: i32, restarts: u32) -> Result<()> {
    let now = timefmt::now();
    status::write(
        dir,
        &status::Exited {
            status: "exited",
            pid: 0,
            exit_code: code,
            signal: None,
            oom_killed: false,
            started_at: None,
            finished_at: &now,
            restart_count: restarts,
            error: Some(msg),
        },
    )
}

/// The cgroup of the container (for its OOM kill counter), from the
/// bundle's linux.cgroupsPath; the do-nothing manager when absent or
/// unreadable (OOM then reads as false).
fn cgroup_manager(bundle: &Path) -> Box<dyn moorage_core::cgroups::Manager> {
    let path = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.pointer("/linux/cgroupsPath")
                .and_then(|p| p.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    moorage_core::cgroups::create_manager(&path)
        .unwrap_or_else(|_| Box::new(moorage_core::cgroups::Disabled))
}

/// While `create` runs, accept its console connection; returns its exit
/// code and the pty master (None if it never sent one).
fn wait_with_console(create: Pid, sock: &console::ConsoleSocket) -> Result<(i32, Option<OwnedFd>)> {
    let mut master = None;
    loop {
        if master.is_none() {
            master = sock.try_receive()?;
        }
        match waitpid(create, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(nix::Error::EINTR) => {}
            Ok(ws) => {
                if let Some((code, _)) = sys::exit_of(ws) {
                    if master.is_none() {
                        master = sock.try_receive()?;
                    }
                    return Ok((code, master));
                }
            }
            Err(e) => {
                return Err(MonitorError::Sys {
                    step: "waitpid create",
                    source: e,
                })
            }
        }
        let mut pfd = libc::pollfd {
            fd: sock.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd. Short timeout: create's exit is not a
        // pollable event here (SIGCHLD is consumed by the signalfd later).
        unsafe { libc::poll(&mut pfd, 1, 20) };
    }
}

/// What is in a pipe right now, without blocking (the runtime's stderr
/// after a failed create).
fn read_available(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    if sys::set_nonblocking(fd).is_err() {
        return out;
    }
    let mut f = match fd.try_clone() {
        Ok(d) => File::from(d),
        Err(_) => return out,
    };
    let mut tmp = [0u8; 4096];
    while out.len() < 64 * 1024 {
        match std::io::Read::read(&mut f, &mut tmp) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&tmp[..n]),
        }
    }
    out
}
