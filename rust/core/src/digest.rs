//! sha256 content digests in the OCI form `sha256:<hex>`.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, DigestError>;

/// `sha256:<hex>` of a finished hasher.
pub fn format_sha256(hasher: Sha256) -> String {
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// `sha256:<hex>` of a byte slice.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    format_sha256(Sha256::new_with_prefix(bytes))
}

/// `sha256:<hex>` of a file's content, read in large blocks.
pub fn sha256_file(path: &Path) -> Result<String> {
    let io_err = |step, source| DigestError::Io {
        step,
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(|e| io_err("open", e))?;
    let mut hasher = Sha256::new();
    // 1 MiB keeps the read syscalls few; sha2 uses SHA-NI where present, so the
    // hashing, not the reading, bounds the speed.
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read", e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(format_sha256(hasher))
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and byte count of everything read so far.
    pub fn finish(self) -> (String, u64) {
        (format_sha256(self.hasher), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer, and the digest and byte count of everything written.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, format_sha256(self.hasher), self.count)
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn file_digest_matches_known_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(b"abc")
            .unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_bytes(b"abc"), sha256_file(&p).unwrap());
    }

    #[test]
    fn hashing_reader_counts_and_hashes() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (d, n) = r.finish();
        assert_eq!(n, 100_000);
        assert_eq!(d, sha256_bytes(&data));
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = sha256_file(Path::new("/nonexistent/zz")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/zz"), "{err}");
    }
}
