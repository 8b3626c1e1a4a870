//! moorage-runtime: an OCI runtime binary (runc-compatible verbs), the
//! per-container monitor (`monitor`), and the `--init` reaper (`init`, or
//! when started as `/dev/init`).

mod monitor;
mod signal;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use moorage_core::container::{self, Container, ContainerError, CreateOptions};
use moorage_core::exec::ExecOptions;

#[derive(Parser, Debug)]
#[command(
    name = "moorage-runtime",
    version,
    about = "moorage's OCI runtime (runc-compatible verbs)"
)]
struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/moorage/runtime")]
    root: PathBuf,
    /// Also append error messages to this file (one line each).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Accepted for runc compatibility; ignored.
    #[arg(long, global = true, hide = true)]
    log_format: Option<String>,
    /// Accepted for runc compatibility; ignored.
    #[arg(long, global = true, hide = true)]
    debug: bool,
    /// Accepted for runc compatibility; ignored.
    #[arg(long, global = true, hide = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    verb: Verb,
}

/// What `create` and `run` take.
#[derive(clap::Args, Debug)]
struct CreateArgs {
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    id: String,
}

impl CreateArgs {
    fn options<'a>(&'a self, root: &'a Path) -> CreateOptions<'a> {
        CreateOptions {
            root,
            id: &self.id,
            bundle: &self.bundle,
            pid_file: self.pid_file.as_deref(),
            console_socket: self.console_socket.as_deref(),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start { id: String },
    /// Print the OCI state JSON.
    State { id: String },
    /// Send a signal (default TERM) to the container's init, or all its processes.
    Kill {
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a container (its init is killed when created; with --force also when running).
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// Create, start, wait and delete; exit with the container's status.
    Run(CreateArgs),
    /// Freeze every process of the container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Change the cgroup limits of a created, running or paused container (runc's `update -r`).
    Update {
        /// A `linux.resources` JSON object; `-` reads standard input.
        #[arg(long, short = 'r')]
        resources: PathBuf,
        id: String,
    },
    /// Print the container's resource usage once, as runc's `events --stats` does.
    Events {
        /// One sample of the cgroup's counters (the only mode: no event stream).
        #[arg(long)]
        stats: bool,
        id: String,
    },
    /// List the container's processes.
    Ps {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        id: String,
    },
    /// Run a process in a running container.
    Exec {
        #[arg(long, short = 'p')]
        process: Option<PathBuf>,
        #[arg(long, short = 'd')]
        detach: bool,
        #[arg(long)]
        pid_file: Option<PathBuf>,
        #[arg(long)]
        console_socket: Option<PathBuf>,
        #[arg(long, short = 't')]
        tty: bool,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(long, short = 'e')]
        env: Vec<String>,
        /// UID[:GID]
        #[arg(long, short = 'u')]
        user: Option<String>,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Minimal PID 1: run CMD, forward signals, reap zombies.
    Init {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
}

/// A failure of a verb: the message and the exit code.
struct Failure(String, i32);

impl From<ContainerError> for Failure {
    fn from(e: ContainerError) -> Self {
        let code = e.exit_code();
        Failure(e.to_string(), code)
    }
}

/// A failure goes to `--log` when one is given, else to stderr. Not both:
/// for `create` and `exec` stderr is the container process's own stderr, so
/// a runtime error written there would land in the container's log (or be
/// shown twice by a caller that reads the log file).
fn report(log: Option<&Path>, msg: &str) {
    if let Some(path) = log {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            if writeln!(f, "{}", msg.replace('\n', " ")).is_ok() {
                return;
            }
        }
    }
    eprintln!("moorage-runtime: {msg}");
}

fn parse_user(s: &str) -> Result<(u32, Option<u32>), Failure> {
    let bad = || Failure(format!("invalid --user {s:?} (want UID[:GID])"), 1);
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u.parse().map_err(|_| bad())?;
    let gid = g.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

fn run(cli: Cli) -> Result<i32, Failure> {
    let root = cli.root.as_path();
    match cli.verb {
        Verb::Create(args) => {
            container::create(&args.options(root))?;
            Ok(0)
        }
        Verb::Start { id } => {
            Container::load(root, &id)?.start()?;
            Ok(0)
        }
        Verb::State { id } => {
            let state = Container::load(root, &id)?.oci_state();
            let json =
                serde_json::to_string_pretty(&state).map_err(|e| Failure(e.to_string(), 1))?;
            println!("{json}");
            Ok(0)
        }
        Verb::Kill { all, id, signal } => {
            let sig = signal::parse(&signal).map_err(|m| Failure(m, 1))?;
            Container::load(root, &id)?.signal(sig, all)?;
            Ok(0)
        }
        Verb::Delete { force, id } => match Container::load(root, &id) {
            Ok(c) => {
                c.delete(force)?;
                Ok(0)
            }
            Err(ContainerError::NotExist(_)) if force => {
                // A create killed half-way can leave a directory without state.
                let dir = root.join(&id);
                if container::validate_id(&id).is_ok() && dir.is_dir() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| Failure(format!("remove {}: {e}", dir.display()), 1))?;
                }
                Ok(0)
            }
            Err(e) => Err(e.into()),
        },
        Verb::Run(args) => {
            let pid = container::create(&args.options(root))?;
            let c = Container::load(root, &args.id)?;
            let started = c.start();
            let code = match started {
                Ok(()) => container::wait_exit_code(pid),
                Err(e) => Err(e),
            };
            let deleted = c.delete(true);
            let code = code?;
            deleted?;
            Ok(code)
        }
        Verb::Pause { id } => {
            Container::load(root, &id)?.pause()?;
            Ok(0)
        }
        Verb::Resume { id } => {
            Container::load(root, &id)?.resume()?;
            Ok(0)
        }
        Verb::Update { resources, id } => {
            let bytes = if resources.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                    .map_err(|e| Failure(format!("update: reading standard input: {e}"), 1))?;
                b
            } else {
                std::fs::read(&resources).map_err(|e| {
                    Failure(format!("update: reading {}: {e}", resources.display()), 1)
                })?
            };
            let r: oci_spec::runtime::LinuxResources = serde_json::from_slice(&bytes)
                .map_err(|e| Failure(format!("update: invalid resources JSON: {e}"), 1))?;
            Container::load(root, &id)?.update(&r)?;
            Ok(0)
        }
        Verb::Events { stats, id } => {
            if !stats {
                return Err(Failure(
                    "events: only --stats is supported (no event stream)".into(),
                    1,
                ));
            }
            let st = Container::load(root, &id)?.stats()?;
            println!("{}", stats_json(&id, &st));
            Ok(0)
        }
        Verb::Ps { format, id } => {
            let pids = Container::load(root, &id)?.pids()?;
            match format.as_str() {
                "json" => println!(
                    "{}",
                    serde_json::to_string(&pids).map_err(|e| Failure(e.to_string(), 1))?
                ),
                "table" => {
                    println!("PID");
                    for p in pids {
                        println!("{p}");
                    }
                }
                other => {
                    return Err(Failure(
                        format!("invalid --format {other:?} (table or json)"),
                        1,
                    ))
                }
            }
            Ok(0)
        }
        Verb::Exec {
            process,
            detach,
            pid_file,
            console_socket,
            tty,
            cwd,
            env,
            user,
            id,
            args,
        } => {
            let opts = ExecOptions {
                process,
                detach,
                pid_file,
                console_socket,
                tty,
                cwd,
                env,
                user: user.as_deref().map(parse_user).transpose()?,
                args,
            };
            Ok(moorage_core::exec::exec(root, &id, &opts)?)
        }
        Verb::Init { cmd } => moorage_core::init::run(&cmd).map_err(|e| Failure(e.to_string(), 1)),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("monitor") {
        std::process::exit(monitor::main(&args[2..]));
    }
    // Bind-mounted as /dev/init: `init [--] CMD ARGS...` without a verb.
    let argv0 = args.first().map(|a| {
        Path::new(a)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    });
    if argv0.as_deref() == Some("init") {
        let cmd = args.get(1..).unwrap_or(&[]);
        let cmd = if cmd.first().map(String::as_str) == Some("--") {
            &cmd[1..]
        } else {
            cmd
        };
        match moorage_core::init::run(cmd) {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("init: {e}");
                std::process::exit(1);
            }
        }
    }
    let cli = Cli::parse();
    let log = cli.log.clone();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(Failure(msg, code)) => {
            report(log.as_deref(), &msg);
            std::process::exit(code);
        }
    }
}

/// runc's `events --stats` shape (libcontainer's `types.Event`), so an
/// engine can read moorage's runtime and runc alike; absent counters are
/// left out rather than shown as zero.
fn stats_json(id: &str, s: &moorage_core::cgroups::Stats) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    if let Some(total) = s.cpu_usage_ns {
        data.insert(
            "cpu".into(),
            serde_json::json!({ "usage": { "total": total } }),
        );
    }
    let mut usage = serde_json::Map::new();
    if let Some(u) = s.memory_usage {
        usage.insert("usage".into(), u.into());
    }
    if let Some(l) = s.memory_limit {
        usage.insert("limit".into(), l.into());
    }
    let mut raw = serde_json::Map::new();
    if let Some(i) = s.memory_inactive_file {
        raw.insert("inactive_file".into(), i.into());
    }
    raw.insert("oom_kill".into(), s.oom_kills.into());
    data.insert(
        "memory".into(),
        serde_json::json!({ "usage": usage, "raw": raw }),
    );
    if let Some(c) = s.pids_current {
        let mut pids = serde_json::json!({ "current": c });
        if let Some(l) = s.pids_limit {
            pids["limit"] = l.into();
        }
        data.insert("pids".into(), pids);
    }
    if let (Some(r), Some(w)) = (s.io_read_bytes, s.io_write_bytes) {
        data.insert(
            "blkio".into(),
            serde_json::json!({ "ioServiceBytesRecursive": [
                { "major": 0, "minor": 0, "op": "Read", "value": r },
                { "major": 0, "minor": 0, "op": "Write", "value": w },
            ] }),
        );
    }
    serde_json::json!({ "type": "stats", "id": id, "data": data })
}
