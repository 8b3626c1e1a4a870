//! Docker's json-file log format: one JSON object per line,
//! `{"log":"<line incl. \n>","stream":"stdout","time":"<RFC3339Nano>"}`.
//! Output is split on `\n`; a line longer than the 16 KiB buffer, or the
//! unterminated tail at EOF, is written as a partial entry without `\n`
//! (Docker does the same).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;

use super::error::{io, Result};
use super::timefmt;

pub const BUF_SIZE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'static str,
    time: &'a str,
}

/// The log file plus one reusable encode buffer, so each entry is a single
/// `write(2)` to an O_APPEND file (readers never see half an entry).
pub struct JsonLog {
    file: File,
    scratch: Vec<u8>,
}

impl JsonLog {
    pub fn open(path: &Path) -> Result<JsonLog> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(io("open log", path))?;
        Ok(JsonLog {
            file,
            scratch: Vec::with_capacity(256),
        })
    }

    /// Write one entry. Log write errors (disk full) are returned but the
    /// caller keeps going: losing log lines must not kill the monitor.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(bytes);
        let time = timefmt::now();
        self.scratch.clear();
        serde_json::to_writer(
            &mut self.scratch,
            &Entry {
                log: &text,
                stream: stream.name(),
                time: &time,
            },
        )
        .map_err(std::io::Error::other)?;
        self.scratch.push(b'\n');
        self.file.write_all(&self.scratch)?;
        if self.scratch.capacity() > 4 * BUF_SIZE {
            // One huge line must not keep its buffer alive (RSS budget).
            self.scratch = Vec::with_capacity(256);
        }
        Ok(())
    }
}

/// Accumulates one stream's bytes and cuts them into lines.
pub struct LineBuf {
    buf: Box<[u8]>,
    len: usize,
}

impl LineBuf {
    pub fn new() -> LineBuf {
        LineBuf {
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            len: 0,
        }
    }

    /// Free space to `read(2)` into; never empty (a full buffer is flushed
    /// by `take_lines`).
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// Bytes just read into `spare()` (caller copies them for --attach first).
    pub fn filled(&self, n: usize) -> &[u8] {
        &self.buf[self.len..self.len + n]
    }

    /// Account for `n` bytes read into `spare()` and hand every complete
    /// line (and a full buffer's partial line) to `emit`.
    pub fn commit(&mut self, n: usize, mut emit: impl FnMut(&[u8])) {
        let scan_from = self.len;
        self.len += n;
        let mut start = 0;
        let mut i = scan_from;
        while let Some(pos) = self.buf[i..self.len].iter().position(|b| *b == b'\n') {
            let end = i + pos + 1;
            emit(&self.buf[start..end]);
            start = end;
            i = end;
        }
        if start == 0 && self.len == self.buf.len() {
            emit(&self.buf[..self.len]);
            start = self.len;
        }
        self.buf.copy_within(start..self.len, 0);
        self.len -= start;
    }

    /// At EOF: the unterminated tail, if any.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if self.len > 0 {
            emit(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lb: &mut LineBuf, data: &[u8], out: &mut Vec<Vec<u8>>) {
        let mut rest = data;
        while !rest.is_empty() {
            let n = lb.spare().len().min(rest.len());
            lb.spare()[..n].copy_from_slice(&rest[..n]);
            lb.commit(n, |l| out.push(l.to_vec()));
            rest = &rest[n..];
        }
    }

    #[test]
    fn splits_lines_across_reads() {
        let mut lb = LineBuf::new();
        let mut out = Vec::new();
        feed(&mut lb, b"hel", &mut out);
        assert!(out.is_empty());
        feed(&mut lb, b"lo\nwor", &mut out);
        feed(&mut lb, b"ld\n\nx", &mut out);
        lb.finish(|l| out.push(l.to_vec()));
        assert_eq!(
            out,
            vec![
                b"hello\n".to_vec(),
                b"world\n".to_vec(),
                b"\n".to_vec(),
                b"x".to_vec()
            ]
        );
    }

    #[test]
    fn long_line_is_cut_at_buffer_size() {
        let mut lb = LineBuf::new();
        let mut out = Vec::new();
        let mut data = vec![b'a'; BUF_SIZE + 10];
        data.push(b'\n');
        feed(&mut lb, &data, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), BUF_SIZE);
        assert_eq!(out[1].len(), 11);
        assert!(out[1].ends_with(b"\n"));
    }

    #[test]
    fn json_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut log = JsonLog::open(&p).unwrap();
        log.write(Stream::Stdout, b"hi \"there\"\n").unwrap();
        log.write(Stream::Stderr, b"\xffbad\n").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["log"], "hi \"there\"\n");
        assert_eq!(lines[0]["stream"], "stdout");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["log"], "\u{fffd}bad\n");
        assert_eq!(lines[1]["stream"], "stderr");
    }
}
