//! Layer tests. Tars are built here with the `tar` crate; privileged cases
//! (ownership, devices, trusted xattrs, overlay mounts) are skipped when not
//! root.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::*;
use crate::digest::sha256_bytes;

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// A tar under construction, with helpers for each entry kind.
struct TarMaker {
    b: tar::Builder<Vec<u8>>,
}

fn header(kind: EntryType, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(0);
    h
}

impl TarMaker {
    fn new() -> Self {
        TarMaker {
            b: tar::Builder::new(Vec::new()),
        }
    }
    fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = header(EntryType::Directory, mode);
        self.b.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }
    fn file(self, path: &str, data: &[u8]) -> Self {
        self.file_with(path, data, |_| {})
    }
    fn file_with(mut self, path: &str, data: &[u8], f: impl FnOnce(&mut Header)) -> Self {
        let mut h = header(EntryType::Regular, 0o644);
        h.set_size(data.len() as u64);
        f(&mut h);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }
    /// Writes the raw name bytes, bypassing the tar crate's own `..` checks,
    /// the way a hostile archive would.
    fn raw_file(mut self, name: &str, data: &[u8]) -> Self {
        let mut h = header(EntryType::Regular, 0o644);
        h.set_size(data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }
    fn raw_link(mut self, kind: EntryType, name: &str, target: &str) -> Self {
        let mut h = header(kind, 0o777);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }
    fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(EntryType::Symlink, 0o777);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }
    fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(EntryType::Link, 0o644);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }
    fn device(mut self, path: &str, kind: EntryType, major: u32, minor: u32) -> Self {
        let mut h = header(kind, 0o600);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.b.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }
    fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        self.b
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }
    fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

struct Case {
    tmp: tempfile::TempDir,
    dest: PathBuf,
}

impl Case {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        fs::create_dir(&dest).unwrap();
        Case { tmp, dest }
    }
    fn blob(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.tmp.path().join(name);
        fs::write(&p, bytes).unwrap();
        p
    }
    fn apply(&self, tar: &[u8], format: WhiteoutFormat) -> Result<ApplyReport> {
        let src = self.blob("layer.tar", tar);
        apply_layer(&src, &self.dest, format)
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn plain_entries_modes_times_and_digests() {
    let case = Case::new();
    let tar = TarMaker::new()
        .dir("etc", 0o750)
        .file("etc/hosts", b"127.0.0.1 localhost\n")
        .file_with("bin/su", b"\x7fELF", |h| h.set_mode(0o4755))
        .file_with("etc/shadow", b"root:x", |h| h.set_mode(0o600))
        .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
        .hardlink("etc/hosts.bak", "etc/hosts")
        .device("fifo", EntryType::Fifo, 0, 0)
        .finish();
    let report = case.apply(&tar, WhiteoutFormat::Overlay).unwrap();
    assert_eq!(report.digest, sha256_bytes(&tar));
    assert_eq!(report.diff_id, sha256_bytes(&tar));
    assert_eq!(report.size, tar.len() as u64);
    assert_eq!(report.compressed_size, tar.len() as u64);
    assert_eq!(report.compression, Compression::None);
    assert_eq!(report.entries, 7);

    let d = &case.dest;
    assert_eq!(
        fs::read(d.join("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    let su = fs::metadata(d.join("bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(su.mtime(), 1_600_000_000);
    assert_eq!(
        fs::metadata(d.join("etc/shadow"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // Directory mode and mtime survive the files created in it afterwards.
    let etc = fs::metadata(d.join("etc")).unwrap();
    assert_eq!(etc.permissions().mode() & 0o7777, 0o750);
    assert_eq!(etc.mtime(), 1_600_000_000);
    // Implicit parent "bin" was created.
    assert!(d.join("bin").is_dir());
    assert_eq!(
        fs::read_link(d.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    assert_eq!(
        fs::symlink_metadata(d.join("etc/localtime"))
            .unwrap()
            .mtime(),
        1_600_000_000
    );
    assert_eq!(
        fs::metadata(d.join("etc/hosts.bak")).unwrap().ino(),
        fs::metadata(d.join("etc/hosts")).unwrap().ino()
    );
    assert!(fs::symlink_metadata(d.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn ownership_devices_and_xattrs() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let case = Case::new();
    let tar = TarMaker::new()
        .file_with("owned", b"x", |h| {
            h.set_uid(1234);
            h.set_gid(5678);
            h.set_mode(0o2755);
        })
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/loop0", EntryType::Block, 7, 0)
        .pax(&[
            ("SCHILY.xattr.user.note", b"hello"),
            ("SCHILY.xattr.trusted.t", b"\x00\x01"),
        ])
        .file("tagged", b"t")
        .pax(&[
            ("SCHILY.xattr.trusted.d", b"dir"),
            ("uid", b"4000000"),
            ("mtime", b"1700000000.25"),
        ])
        .dir("tagged-dir", 0o755)
        .finish();
    case.apply(&tar, WhiteoutFormat::Overlay).unwrap();
    let d = &case.dest;
    let owned = fs::metadata(d.join("owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
    // setgid kept despite chown clearing it.
    assert_eq!(owned.permissions().mode() & 0o7777, 0o2755);
    let null = fs::symlink_metadata(d.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    let lp = fs::symlink_metadata(d.join("dev/loop0")).unwrap();
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), libc::makedev(7, 0));
    assert_eq!(
        xattr(&d.join("tagged"), "user.note").as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        xattr(&d.join("tagged"), "trusted.t").as_deref(),
        Some(&b"\x00\x01"[..])
    );
    let td = fs::metadata(d.join("tagged-dir")).unwrap();
    assert_eq!(
        xattr(&d.join("tagged-dir"), "trusted.d").as_deref(),
        Some(&b"dir"[..])
    );
    assert_eq!(td.uid(), 4_000_000);
    assert_eq!((td.mtime(), td.mtime_nsec()), (1_700_000_000, 250_000_000));
}

fn xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let k = std::ffi::CString::new(key).unwrap();
    fsops::lgetxattr(&p, &k).unwrap()
}

#[test]
fn gzip_and_zstd_are_detected_and_hashed() {
    let tar = TarMaker::new()
        .file("a", &vec![b'a'; 300_000])
        .file("b", b"b")
        .finish();
    for (name, blob, kind) in [
        ("gz", gzip(&tar), Compression::Gzip),
        (
            "zst",
            zstd::encode_all(&tar[..], 3).unwrap(),
            Compression::Zstd,
        ),
    ] {
        let case = Case::new();
        let src = case.blob(name, &blob);
        let r = apply_layer(&src, &case.dest, WhiteoutFormat::Overlay).unwrap();
        assert_eq!(r.compression, kind);
        assert_eq!(r.digest, sha256_bytes(&blob), "{name}");
        assert_eq!(r.diff_id, sha256_bytes(&tar), "{name}");
        assert_ne!(r.digest, r.diff_id);
        assert_eq!(r.size, tar.len() as u64);
        assert_eq!(r.compressed_size, blob.len() as u64);
        assert_eq!(fs::read(case.dest.join("a")).unwrap().len(), 300_000);
        assert_eq!(fs::read(case.dest.join("b")).unwrap(), b"b");
    }
}

#[test]
fn diff_id_covers_padding_after_the_end_blocks() {
    let mut tar = TarMaker::new().file("a", b"a").finish();
    tar.extend_from_slice(&[0u8; 10240]);
    let case = Case::new();
    let r = case.apply(&tar, WhiteoutFormat::Overlay).unwrap();
    assert_eq!(r.diff_id, sha256_bytes(&tar));
    assert_eq!(r.size, tar.len() as u64);
}

#[test]
fn truncated_gzip_fails_and_xz_is_refused() {
    let tar = TarMaker::new().file("a", &vec![7u8; 200_000]).finish();
    let gz = gzip(&tar);
    let case = Case::new();
    let src = case.blob("cut.gz", &gz[..gz.len() / 2]);
    let err = apply_layer(&src, &case.dest, WhiteoutFormat::Overlay).unwrap_err();
    assert!(matches!(err, LayerError::Stream { .. }), "{err}");
    let src = case.blob("x.xz", b"\xfd7zXZ\x00rest");
    let err = apply_layer(&src, &case.dest, WhiteoutFormat::Overlay).unwrap_err();
    assert!(
        matches!(err, LayerError::UnsupportedCompression { kind: "xz", .. }),
        "{err}"
    );
}

#[test]
fn overlay_whiteouts_become_devices_and_xattrs() {
    if !is_root() {
        eprintln!("skipped: needs root (mknod, trusted xattrs)");
        return;
    }
    let case = Case::new();
    let tar = TarMaker::new()
        .dir("d", 0o755)
        .file("d/.wh..wh..opq", b"")
        .file("d/kept", b"k")
        .file(".wh.gone", b"")
        .file("sub/.wh.gone2", b"")
        .file(".wh..wh.plnk", b"")
        .finish();
    let r = case.apply(&tar, WhiteoutFormat::Overlay).unwrap();
    assert_eq!(r.entries, 5, "the AUFS meta entry is skipped");
    let gone = fs::symlink_metadata(case.dest.join("gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(fs::symlink_metadata(case.dest.join("sub/gone2"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(
        xattr(&case.dest.join("d"), OVERLAY_OPAQUE_XATTR).as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(fs::read(case.dest.join("d/kept")).unwrap(), b"k");
    assert!(!case.dest.join(".wh.gone").exists());
    assert!(!case.dest.join("d/.wh..wh..opq").exists());
}

#[test]
fn vfs_whiteouts_delete() {
    let case = Case::new();
    let d = &case.dest;
    // The parent layer's content.
    fs::create_dir_all(d.join("dir/old-sub")).unwrap();
    fs::write(d.join("dir/old"), "o").unwrap();
    fs::write(d.join("dir/old-sub/x"), "x").unwrap();
    fs::create_dir_all(d.join("keepdir/inner")).unwrap();
    fs::write(d.join("keepdir/inner/old"), "o").unwrap();
    fs::write(d.join("gone"), "g").unwrap();
    fs::create_dir_all(d.join("gonedir/deep")).unwrap();
    fs::write(d.join("untouched"), "u").unwrap();
    let tar = TarMaker::new()
        .dir("dir", 0o755)
        .file("dir/new-before", b"n")
        .file("dir/.wh..wh..opq", b"")
        .file("dir/new-after", b"n")
        .dir("keepdir", 0o755)
        .dir("keepdir/inner", 0o755)
        .file("keepdir/inner/new", b"n")
        .file("keepdir/.wh..wh..opq", b"")
        .file(".wh.gone", b"")
        .file(".wh.gonedir", b"")
        .finish();
    case.apply(&tar, WhiteoutFormat::Vfs).unwrap();
    let mut names: Vec<String> = walk(d).into_keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dir",
            "dir/new-after",
            "dir/new-before",
            "keepdir",
            "keepdir/inner",
            "keepdir/inner/new",
            "untouched"
        ]
    );
}

#[test]
fn dotdot_escape_is_refused_and_names_the_entry() {
    let case = Case::new();
    let tar = TarMaker::new().raw_file("../escaped", b"x").finish();
    let err = case.apply(&tar, WhiteoutFormat::Overlay).unwrap_err();
    assert!(
        matches!(&err, LayerError::Invalid { entry, .. } if entry == "../escaped"),
        "{err}"
    );
    assert!(!case.tmp.path().join("escaped").exists());
    let tar = TarMaker::new().raw_file("a/../../escaped", b"x").finish();
    assert!(case.apply(&tar, WhiteoutFormat::Overlay).is_err());
    assert!(!case.tmp.path().join("escaped").exists());
}

#[test]
fn absolute_paths_land_inside() {
    let case = Case::new();
    let tar = TarMaker::new().raw_file("/etc/x", b"x").finish();
    case.apply(&tar, WhiteoutFormat::Overlay).unwrap();
    assert_eq!(fs::read(case.dest.join("etc/x")).unwrap(), b"x");
}

/// A directory outside dest that the hostile entries aim at.
fn outside(case: &Case) -> PathBuf {
    let o = case.tmp.path().join("outside");
    fs::create_dir(&o).unwrap();
    fs::write(o.join("secret"), "secret").unwrap();
    o
}

#[test]
fn symlinked_parents_resolve_inside_dest() {
    let case = Case::new();
    let out = outside(&case);
    let tar = TarMaker::new()
        .symlink("root", "/")
        .raw_file("root/etc/passwd", b"pwned")
        // A chain: each link alone looks harmless.
        .symlink("b", "../../../..")
        .symlink("c", "b/../..")
        .raw_file("c/chained", b"pwned")
        .finish();
    case.apply(&tar, WhiteoutFormat::Overlay).unwrap();
    assert!(!case.tmp.path().join("chained").exists());
    // Where they went instead: as if dest were the root.
    assert_eq!(fs::read(case.dest.join("etc/passwd")).unwrap(), b"pwned");
    assert_eq!(fs::read(case.dest.join("chained")).unwrap(), b"pwned");

    // An absolute link to a real outside dir resolves to dest/<that path>,
    // which does not exist: the entry fails instead of creating it.
    let tar = TarMaker::new()
        .symlink("abs", out.to_str().unwrap())
        .raw_file("abs/secret", b"pwned")
        .finish();
    let err = case.apply(&tar, WhiteoutFormat::Overlay).unwrap_err();
    assert!(
        matches!(&err, LayerError::Entry { entry, .. } if entry == "abs/secret"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(out.join("secret")).unwrap(), "secret");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
}

#[test]
fn existing_symlink_is_replaced_not_followed() {
    let case = Case::new();
    let out = outside(&case);
    let tar = TarMaker::new()
        .symlink("evil", out.join("secret").to_str().unwrap())
        .file("evil", b"replaced")
        .finish();
    case.apply(&tar, WhiteoutFormat::Overlay).unwrap();
    assert_eq!(fs::read_to_string(out.join("secret")).unwrap(), "secret");
    assert!(fs::symlink_metadata(case.dest.join("evil"))
        .unwrap()
        .is_file());
}

#[test]
fn hardlinks_cannot_reach_outside() {
    let case = Case::new();
    let out = outside(&case);
    let tar = TarMaker::new()
        .raw_link(EntryType::Link, "h", "../outside/secret")
        .finish();
    let err = case.apply(&tar, WhiteoutFormat::Overlay).unwrap_err();
    assert!(
        matches!(&err, LayerError::Invalid { entry, .. } if entry == "h"),
        "{err}"
    );
    let tar = TarMaker::new()
        .raw_link(EntryType::Link, "h", "../../etc/passwd")
        .finish();
    assert!(matches!(
        case.apply(&tar, WhiteoutFormat::Overlay),
        Err(LayerError::Invalid { .. })
    ));
    // Through a symlink: resolved inside dest, where there is no such file.
    let tar = TarMaker::new()
        .symlink("o", out.to_str().unwrap())
        .hardlink("h2", "o/secret")
        .finish();
    let err = case.apply(&tar, WhiteoutFormat::Overlay).unwrap_err();
    assert!(
        matches!(&err, LayerError::Entry { entry, .. } if entry == "h2"),
        "{err}"
    );
    assert_eq!(fs::metadata(out.join("secret")).unwrap().nlink(), 1);
}

#[test]
fn whiteout_cannot_delete_outside() {
    let case = Case::new();
    let out = outside(&case);
    let tar = TarMaker::new()
        .symlink("o", out.to_str().unwrap())
        .raw_file("o/.wh.secret", b"")
        .finish();
    // Resolved in root: "o/" is dest/<outside path>, which does not exist,
    // so there is nothing to delete.
    case.apply(&tar, WhiteoutFormat::Vfs).unwrap();
    assert!(out.join("secret").exists());
    let tar = TarMaker::new().raw_file("../.wh.outside", b"").finish();
    assert!(case.apply(&tar, WhiteoutFormat::Vfs).is_err());
    assert!(out.exists());
}

#[test]
fn dir_replaces_file_and_file_replaces_dir() {
    let case = Case::new();
    fs::write(case.dest.join("was-file"), "f").unwrap();
    fs::create_dir_all(case.dest.join("was-dir/sub")).unwrap();
    let tar = TarMaker::new()
        .dir("was-file", 0o755)
        .file("was-file/in", b"i")
        .file("was-dir", b"f")
        .finish();
    case.apply(&tar, WhiteoutFormat::Vfs).unwrap();
    assert_eq!(fs::read(case.dest.join("was-file/in")).unwrap(), b"i");
    assert_eq!(fs::read(case.dest.join("was-dir")).unwrap(), b"f");
}

#[test]
fn long_names_and_bad_format() {
    let case = Case::new();
    let long = format!("{}/{}", "d".repeat(150), "f".repeat(200));
    let tar = TarMaker::new().file(&long, b"l").finish();
    case.apply(&tar, WhiteoutFormat::Overlay).unwrap();
    assert_eq!(fs::read(case.dest.join(&long)).unwrap(), b"l");
    assert!(matches!(
        "aufs".parse::<WhiteoutFormat>(),
        Err(LayerError::InvalidWhiteoutFormat(_))
    ));
}

/// Everything about a tree that a layer must carry, keyed by relative path.
fn walk(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn rec(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            let ft = m.file_type();
            let what = if ft.is_dir() {
                format!("dir mtime={}", m.mtime())
            } else if ft.is_symlink() {
                format!("link {:?} mtime={}", fs::read_link(&p).unwrap(), m.mtime())
            } else if ft.is_file() {
                format!(
                    "file {:?} mtime={} nlink={}",
                    fs::read(&p).unwrap(),
                    m.mtime(),
                    m.nlink()
                )
            } else {
                format!("special {:o} rdev={}", m.mode() & libc::S_IFMT, m.rdev())
            };
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            let mut xattrs: Vec<String> = fsops::llist_xattrs(&c)
                .unwrap()
                .into_iter()
                .filter(|(k, _)| !k.to_bytes().starts_with(b"trusted.overlay."))
                .map(|(k, v)| format!("{k:?}={v:?}"))
                .collect();
            xattrs.sort();
            out.insert(
                rel,
                format!(
                    "{what} mode={:o} {}:{} {}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    xattrs.join(",")
                ),
            );
            if ft.is_dir() {
                rec(root, &p, out);
            }
        }
    }
    rec(root, root, &mut out);
    out
}

/// Unmounts on drop so a failed assertion leaves no mount.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = crate::overlay::unmount(&self.0, true);
    }
}

#[test]
fn diff_round_trip_through_overlay() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| {
        let d = tmp.path().join(n);
        fs::create_dir_all(&d).unwrap();
        d
    };
    let (lower, upper, work, merged, copy) =
        (p("lower"), p("upper"), p("work"), p("merged"), p("copy"));
    let base = TarMaker::new()
        .dir("etc", 0o755)
        .file("etc/keep", b"keep")
        .file("etc/modify", b"before")
        .file("etc/delete", b"bye")
        .dir("var", 0o755)
        .dir("var/cache", 0o755)
        .file("var/cache/a", b"a")
        .file("var/cache/b", b"b")
        .dir("opt", 0o755)
        .file("opt/tool", b"t")
        .file_with("usr-bin-ping", b"ping", |h| h.set_mode(0o755))
        .finish();
    let base_path = tmp.path().join("base.tar");
    fs::write(&base_path, &base).unwrap();
    apply_layer(&base_path, &lower, WhiteoutFormat::Overlay).unwrap();
    apply_layer(&base_path, &copy, WhiteoutFormat::Vfs).unwrap();

    crate::overlay::mount_overlay(
        std::slice::from_ref(&lower),
        Some(&upper),
        Some(&work),
        &merged,
        false,
    )
    .unwrap();
    let guard = Mounted(merged.clone());
    let m = |s: &str| merged.join(s);
    fs::write(m("etc/modify"), "after").unwrap();
    fs::remove_file(m("etc/delete")).unwrap();
    fs::remove_dir_all(m("var/cache")).unwrap();
    fs::create_dir(m("var/cache")).unwrap(); // recreated: opaque in the upper
    fs::write(m("var/cache/c"), "c").unwrap();
    fs::remove_dir_all(m("opt")).unwrap();
    fs::write(m("new"), "new").unwrap();
    fs::hard_link(m("new"), m("new-link")).unwrap();
    std::os::unix::fs::symlink("etc/keep", m("sym")).unwrap();
    fs::set_permissions(m("usr-bin-ping"), fs::Permissions::from_mode(0o4711)).unwrap();
    let c =
        std::ffi::CString::new(m("usr-bin-ping").into_os_string().into_encoded_bytes()).unwrap();
    let r =
        unsafe { libc::lsetxattr(c.as_ptr(), c"user.cap".as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    let want = walk(&merged);
    drop(guard);

    let out = tmp.path().join("diff.tar");
    let report = diff_layer(&upper, &out, &[]).unwrap();
    assert_eq!(report.diff_id, crate::digest::sha256_file(&out).unwrap());
    assert_eq!(report.size, fs::metadata(&out).unwrap().len());
    // Reproducible: the same upper gives the same bytes.
    let again = diff_layer(&upper, &tmp.path().join("diff2.tar"), &[]).unwrap();
    assert_eq!(again.diff_id, report.diff_id);

    // The diff speaks Docker's whiteouts, not overlay's.
    let bytes = fs::read(&out).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_str().unwrap().to_string());
    }
    assert!(names.contains(&"etc/.wh.delete".to_string()), "{names:?}");
    assert!(names.contains(&".wh.opt".to_string()), "{names:?}");
    assert!(
        names.contains(&"var/cache/.wh..wh..opq".to_string()),
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with("etc/")).count(),
        2,
        "{names:?}"
    );

    let applied = apply_layer(&out, &copy, WhiteoutFormat::Vfs).unwrap();
    assert_eq!(applied.diff_id, report.diff_id);
    assert_eq!(walk(&copy), want);
}

#[test]
fn diff_skips_excluded_regular_files_only() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    let u = |s: &str| upper.join(s);
    fs::create_dir_all(u("etc/hostname")).unwrap(); // a directory at an excluded path stays
    fs::write(u("etc/hostname/inner"), "i").unwrap();
    fs::write(u("etc/hosts"), "").unwrap();
    fs::write(u("etc/motd"), "hello").unwrap();
    fs::write(u("linked"), "shared").unwrap();
    fs::hard_link(u("linked"), u("etc/linked")).unwrap();
    if is_root() {
        // a whiteout at an excluded path is a deletion: it stays
        let c = std::ffi::CString::new(u("etc/resolv.conf").into_os_string().into_encoded_bytes())
            .unwrap();
        assert_eq!(
            unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) },
            0
        );
    }
    let out = tmp.path().join("diff.tar");
    let exclude = [
        PathBuf::from("etc/hosts"),
        PathBuf::from("/etc/hostname"),
        PathBuf::from("etc/resolv.conf"),
        PathBuf::from("./etc/linked"),
    ];
    let report = diff_layer(&upper, &out, &exclude).unwrap();
    assert_eq!(report.diff_id, crate::digest::sha256_file(&out).unwrap());
    let bytes = fs::read(&out).unwrap();
    let mut entries = BTreeMap::new();
    for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_str().unwrap().to_string();
        let kind = e.header().entry_type();
        let mut data = String::new();
        std::io::Read::read_to_string(&mut e, &mut data).unwrap();
        entries.insert(name, (kind, data));
    }
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    let mut want = vec![
        "etc",
        "etc/hostname",
        "etc/hostname/inner",
        "etc/motd",
        "linked",
    ];
    if is_root() {
        want.insert(1, "etc/.wh.resolv.conf");
    }
    assert_eq!(names, want);
    assert_eq!(entries["etc/motd"].1, "hello");
    // the excluded name of a hard-linked inode does not become the link
    // target: the other name carries the content
    assert_eq!(
        entries["linked"],
        (EntryType::Regular, "shared".to_string())
    );

    // without exclusions everything is there
    let all = diff_layer(&upper, &tmp.path().join("all.tar"), &[]).unwrap();
    assert_ne!(all.diff_id, report.diff_id);
    let bytes = fs::read(tmp.path().join("all.tar")).unwrap();
    let n = tar::Archive::new(&bytes[..]).entries().unwrap().count();
    assert_eq!(n, want.len() + 2);
}
