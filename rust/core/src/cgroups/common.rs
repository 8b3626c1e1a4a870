//! Small file helpers shared by the v1 and v2 managers.
//!
//! cgroupfs files are written with one `write(2)` each and no `O_CREAT`:
//! the kernel parses each write as one value, and a missing interface file
//! means the controller or feature is absent, which must surface as an
//! error rather than create a regular file.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Component, Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{CgroupError, Result};

pub(crate) fn io_err(step: &'static str, path: &Path, source: std::io::Error) -> CgroupError {
    CgroupError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// Write `value` to an existing cgroup interface file in one `write(2)`.
pub(crate) fn write_file(path: &Path, value: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_err("open for write", path, e))?;
    let n = f.write(value.as_bytes()).map_err(|e| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source: e,
    })?;
    if n != value.len() {
        return Err(CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source: std::io::Error::new(ErrorKind::WriteZero, "short write"),
        });
    }
    Ok(())
}

pub(crate) fn read_string(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| io_err("read", path, e))
}

pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64> {
    s.trim().parse::<u64>().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        value: s.trim().to_string(),
    })
}

/// Read a single number; `max` (v2) is `None`. Values at or above 2^62 are
/// what v1 reports for "unlimited" (`PAGE_COUNTER_MAX` in bytes), also `None`.
pub(crate) fn read_limit(path: &Path) -> Result<Option<u64>> {
    let s = read_string(path)?;
    let t = s.trim();
    if t == "max" {
        return Ok(None);
    }
    let v = parse_u64(path, t)?;
    Ok(if v >= 1 << 62 { None } else { Some(v) })
}

pub(crate) fn read_u64(path: &Path) -> Result<u64> {
    let s = read_string(path)?;
    parse_u64(path, &s)
}

/// Value of `key` in a flat-keyed file (`key value` per line), e.g.
/// `memory.oom_control`, `memory.events`, `cpu.stat`.
pub(crate) fn read_keyed(path: &Path, key: &str) -> Result<Option<u64>> {
    let s = read_string(path)?;
    for line in s.lines() {
        let mut it = line.split_whitespace();
        if it.next() == Some(key) {
            if let Some(v) = it.next() {
                return parse_u64(path, v).map(Some);
            }
        }
    }
    Ok(None)
}

pub(crate) fn read_pids(procs: &Path) -> Result<Vec<i32>> {
    let s = read_string(procs)?;
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse::<i32>().map_err(|_| CgroupError::Parse {
                path: procs.to_path_buf(),
                value: l.to_string(),
            })
        })
        .collect()
}

/// Join the OCI `cgroupsPath` (absolute, relative to each hierarchy's root)
/// onto a controller root. `..` is refused so a config cannot escape.
pub(crate) fn join(root: &Path, cgroups_path: &str) -> Result<PathBuf> {
    let rel = Path::new(cgroups_path);
    let mut out = root.to_path_buf();
    let mut depth = 0;
    for c in rel.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => {
                out.push(n);
                depth += 1;
            }
            Component::ParentDir | Component::Prefix(_) => {
                return Err(CgroupError::InvalidPath(cgroups_path.to_string()));
            }
        }
    }
    if depth == 0 {
        // The root cgroup itself is shared by the whole host: never manage it.
        return Err(CgroupError::InvalidPath(cgroups_path.to_string()));
    }
    Ok(out)
}

pub(crate) fn create_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| io_err("mkdir", path, e))
}

/// rmdir a cgroup. An already-gone directory is fine. EBUSY is retried for a
/// short while: after the last task exits the kernel may still hold the
/// cgroup until the zombie is fully released.
pub(crate) fn remove_dir(path: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut delay = Duration::from_millis(5);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(io_err("rmdir", path, e)),
        }
    }
}

/// Poll `check` until it returns true or `timeout` passes.
pub(crate) fn wait_until(
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_refuses_escape_and_root() {
        let root = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            join(root, "/moorage/abc").unwrap(),
            root.join("moorage/abc")
        );
        assert_eq!(join(root, "moorage/abc").unwrap(), root.join("moorage/abc"));
        assert!(join(root, "/moorage/../../etc").is_err());
        assert!(join(root, "/").is_err());
        assert!(join(root, "").is_err());
    }

    #[test]
    fn keyed_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("memory.oom_control");
        fs::write(&p, "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n").unwrap();
        assert_eq!(read_keyed(&p, "oom_kill").unwrap(), Some(7));
        assert_eq!(read_keyed(&p, "nope").unwrap(), None);
        let l = dir.path().join("limit");
        fs::write(&l, "max\n").unwrap();
        assert_eq!(read_limit(&l).unwrap(), None);
        fs::write(&l, "9223372036854771712\n").unwrap();
        assert_eq!(read_limit(&l).unwrap(), None);
        fs::write(&l, "1048576\n").unwrap();
        assert_eq!(read_limit(&l).unwrap(), Some(1048576));
        fs::write(&l, "junk\n").unwrap();
        assert!(matches!(read_limit(&l), Err(CgroupError::Parse { .. })));
    }

    #[test]
    fn write_needs_existing_file_and_remove_tolerates_gone() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_file(&dir.path().join("missing"), "1").is_err());
        let sub = dir.path().join("a");
        create_dir(&sub).unwrap();
        remove_dir(&sub).unwrap();
        remove_dir(&sub).unwrap();
    }
}
