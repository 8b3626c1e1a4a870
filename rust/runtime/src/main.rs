//! moorage-runtime: an OCI runtime binary (runc-compatible verbs), the
//! per-container monitor (`monitor`), and the `--init` reaper (`init`, or
//! when started as `/dev/init`).

mod monitor;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("monitor") {
        std::process::exit(monitor::main(&args[2..]));
    }
    eprintln!("moorage-runtime: not implemented yet");
    std::process::exit(1);
}
