//! Host layout detection, per controller: on a hybrid host (this VM) the
//! memory/cpu/… controllers live on v1 mounts while a cgroup2 mount holds
//! only hugetlb, so "is this host v1 or v2" is the wrong question.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::common::io_err;
use super::Result;

/// Controllers moorage manages. Others (blkio, net_cls, hugetlb, …) are left
/// alone: the container stays in its parent's cgroup for those. (v1 blkio
/// would only be for byte counters, and current kernels count them only for
/// groups with a throttle rule, so they read 0; v2's io.stat always counts.)
pub const MANAGED: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "devices",
];

/// v2 names of the managed controllers (cpuacct is part of cpu, io only for
/// its byte counters, freezer and devices are core features / eBPF on v2).
pub const MANAGED_V2: &[&str] = &["cpu", "cpuset", "memory", "pids", "io"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// v1 controller name → its hierarchy's mount point (co-mounted
    /// controllers such as `cpu,cpuacct` share one).
    pub v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 mount, if any.
    pub unified: Option<PathBuf>,
    /// Controllers available at the cgroup2 root (`cgroup.controllers`).
    pub unified_controllers: Vec<String>,
}

impl Layout {
    /// Detect from `/proc/self/mountinfo` (authoritative: mount names such as
    /// `cpu,cpuacct` or `unified` vary across distributions).
    pub fn detect() -> Result<Layout> {
        let path = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(path).map_err(|e| io_err("read", path, e))?;
        let mut layout = Layout::from_mountinfo(&text);
        layout.read_unified_controllers()?;
        Ok(layout)
    }

    /// Parse mountinfo text; `unified_controllers` is left empty.
    pub fn from_mountinfo(text: &str) -> Layout {
        let mut layout = Layout::default();
        for line in text.lines() {
            // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let mountpoint = PathBuf::from(unescape(pre[4]));
            match post[0] {
                "cgroup2" => {
                    layout.unified.get_or_insert(mountpoint);
                }
                "cgroup" => {
                    for opt in post[2].split(',') {
                        if MANAGED.contains(&opt) {
                            layout
                                .v1
                                .entry(opt.to_string())
                                .or_insert_with(|| mountpoint.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        layout
    }

    /// Detect by looking at a directory tree instead of mounts, so tests can
    /// point it at a temp dir: `root/cgroup.controllers` means a pure v2
    /// root; otherwise each subdirectory named after v1 controllers
    /// (`cpu,cpuacct`, `memory`) is a v1 hierarchy and one holding
    /// `cgroup.controllers` is the hybrid cgroup2 mount.
    pub fn detect_at(root: &Path) -> Result<Layout> {
        let mut layout = Layout::default();
        if root.join("cgroup.controllers").exists() {
            layout.unified = Some(root.to_path_buf());
        } else {
            let rd = fs::read_dir(root).map_err(|e| io_err("read dir", root, e))?;
            for ent in rd {
                let ent = ent.map_err(|e| io_err("read dir", root, e))?;
                let ft = ent
                    .file_type()
                    .map_err(|e| io_err("stat", &ent.path(), e))?;
                if !ft.is_dir() {
                    continue; // symlinks such as cpu -> cpu,cpuacct
                }
                let path = ent.path();
                if path.join("cgroup.controllers").exists() {
                    layout.unified.get_or_insert(path);
                    continue;
                }
                let name = ent.file_name().to_string_lossy().into_owned();
                for c in name.split(',') {
                    if MANAGED.contains(&c) {
                        layout
                            .v1
                            .entry(c.to_string())
                            .or_insert_with(|| path.clone());
                    }
                }
            }
        }
        layout.read_unified_controllers()?;
        Ok(layout)
    }

    fn read_unified_controllers(&mut self) -> Result<()> {
        if let Some(u) = &self.unified {
            let p = u.join("cgroup.controllers");
            let s = fs::read_to_string(&p).map_err(|e| io_err("read", &p, e))?;
            self.unified_controllers = s.split_whitespace().map(str::to_string).collect();
        }
        Ok(())
    }

    /// Managed v2 controllers that are on the cgroup2 mount and not already
    /// served by a v1 hierarchy.
    pub fn v2_controllers(&self) -> Vec<String> {
        MANAGED_V2
            .iter()
            .filter(|c| !self.v1.contains_key(**c))
            .filter(|c| self.unified_controllers.iter().any(|u| u == *c))
            .map(|c| c.to_string())
            .collect()
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mountinfo_hybrid_per_controller() {
        let l = Layout::from_mountinfo(HYBRID);
        assert_eq!(l.v1.get("cpu").unwrap(), Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(
            l.v1.get("cpuacct").unwrap(),
            Path::new("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(
            l.v1.get("memory").unwrap(),
            Path::new("/sys/fs/cgroup/memory")
        );
        assert!(!l.v1.contains_key("blkio"));
        assert!(!l.v1.contains_key("name=systemd"));
        assert_eq!(
            l.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn mountinfo_comounted_and_escaped() {
        let text = "1 2 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                    3 2 0:2 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        let l = Layout::from_mountinfo(text);
        assert_eq!(l.v1.get("cpu"), l.v1.get("cpuacct"));
        assert_eq!(l.unified.as_deref(), Some(Path::new("/mnt/my cg")));
    }

    #[test]
    fn detect_at_v2_and_v1_trees() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let l = Layout::detect_at(d.path()).unwrap();
        assert!(l.v1.is_empty());
        assert_eq!(
            l.v2_controllers(),
            vec!["cpu", "cpuset", "memory", "pids", "io"]
        );

        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("memory")).unwrap();
        fs::create_dir(d.path().join("cpu,cpuacct")).unwrap();
        fs::create_dir(d.path().join("unified")).unwrap();
        fs::write(
            d.path().join("unified/cgroup.controllers"),
            "hugetlb memory\n",
        )
        .unwrap();
        let l = Layout::detect_at(d.path()).unwrap();
        assert_eq!(l.v1.get("cpuacct").unwrap(), &d.path().join("cpu,cpuacct"));
        // memory is served by v1 even though cgroup2 also offers it.
        assert!(l.v2_controllers().is_empty());
    }

    #[test]
    fn detect_this_host() {
        // Whatever the host, detection must not fail where /proc is mounted.
        let l = Layout::detect().unwrap();
        assert!(!l.v1.is_empty() || l.unified.is_some());
    }
}
