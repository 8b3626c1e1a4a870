//! The layer byte stream: compression detection, decompression and both
//! digests, on a reader thread.
//!
//! Why a thread: extraction is syscall-bound and decompression plus two
//! sha256 passes are CPU-bound, so overlapping them is what lets one apply
//! beat `tar -xzf` (which overlaps gzip and tar in two processes). Chunks go
//! through a bounded channel, and their buffers come back on a second channel
//! so the steady state allocates nothing.
//!
//! ```text
//!  reader thread                                  extracting thread
//!  file → sha256(digest) → [gunzip|unzstd] → sha256(diff_id) → chunk ──▶ ChunkReader → tar
//!                                                         ◀── empty buffer ──
//! ```
//! The reader always reads to EOF while the extractor listens, so trailing
//! padding after the tar end-of-archive blocks is hashed too. If the extractor
//! fails it drops its receiver and the reader stops at its next send.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::digest::HashingReader;

use super::{LayerError, Result};

const CHUNK: usize = 1 << 20;
const CHUNKS_IN_FLIGHT: usize = 4;

/// Compression of a layer blob, detected from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// What the reader thread measured.
#[derive(Debug, Clone)]
pub(crate) struct StreamSummary {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub compressed_size: u64,
    pub compression: Compression,
}

fn detect(path: &Path, head: &[u8]) -> Result<Compression> {
    let unsupported = |kind| {
        Err(LayerError::UnsupportedCompression {
            path: path.to_path_buf(),
            kind,
        })
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Compression::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Compression::Zstd)
    } else if head.starts_with(b"BZh") {
        unsupported("bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        unsupported("xz")
    } else {
        Ok(Compression::None)
    }
}

/// The extracting side: a `Read` over the chunks the reader thread sends.
pub(crate) struct ChunkReader {
    rx: Receiver<(Vec<u8>, usize)>,
    free: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    len: usize,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            let done = std::mem::take(&mut self.buf);
            if !done.is_empty() {
                // The reader may already be gone (finished); the buffer is
                // then simply dropped.
                let _ = self.free.try_send(done);
            }
            match self.rx.recv() {
                Ok((buf, len)) => {
                    self.buf = buf;
                    self.len = len;
                    self.pos = 0;
                }
                // Sender gone: EOF, or a reader error reported by the join.
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Sent when the extractor hung up; not an error of the reader's own.
struct Cancelled;

fn pump(
    src: &mut impl Read,
    tx: &SyncSender<(Vec<u8>, usize)>,
    free: &Receiver<Vec<u8>>,
) -> std::result::Result<io::Result<()>, Cancelled> {
    loop {
        let mut buf = free.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
        let mut filled = 0;
        while filled < buf.len() {
            match src.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Ok(Err(e)),
            }
        }
        if filled == 0 {
            return Ok(Ok(()));
        }
        if tx.send((buf, filled)).is_err() {
            return Err(Cancelled);
        }
    }
}

fn read_all(
    path: &Path,
    tx: SyncSender<(Vec<u8>, usize)>,
    free: Receiver<Vec<u8>>,
) -> std::result::Result<Result<StreamSummary>, Cancelled> {
    let stream_err = |source| LayerError::Stream {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(source) => {
            return Ok(Err(LayerError::Io {
                step: "open layer",
                path: path.to_path_buf(),
                source,
            }))
        }
    };
    let mut raw = BufReader::with_capacity(CHUNK, HashingReader::new(file));
    let head = match raw.fill_buf() {
        Ok(h) => h,
        Err(e) => return Ok(Err(stream_err(e))),
    };
    let compression = match detect(path, head) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let uncompressed = match compression {
        Compression::None => {
            if let Err(e) = pump(&mut raw, &tx, &free)? {
                return Ok(Err(stream_err(e)));
            }
            None
        }
        Compression::Gzip => {
            // Multi-member: `cat a.gz b.gz` is valid gzip, and pigz writes it.
            let dec = flate2::bufread::MultiGzDecoder::new(&mut raw);
            let mut hashed = HashingReader::new(dec);
            if let Err(e) = pump(&mut hashed, &tx, &free)? {
                return Ok(Err(stream_err(e)));
            }
            Some(hashed.finish())
        }
        Compression::Zstd => {
            let dec = match zstd::stream::read::Decoder::with_buffer(&mut raw) {
                Ok(d) => d,
                Err(e) => return Ok(Err(stream_err(e))),
            };
            let mut hashed = HashingReader::new(dec);
            if let Err(e) = pump(&mut hashed, &tx, &free)? {
                return Ok(Err(stream_err(e)));
            }
            Some(hashed.finish())
        }
    };
    // Whatever follows the compressed stream still belongs to the blob digest.
    if let Err(e) = io::copy(&mut raw, &mut io::sink()) {
        return Ok(Err(stream_err(e)));
    }
    let (digest, compressed_size) = raw.into_inner().finish();
    let (diff_id, size) = uncompressed.unwrap_or_else(|| (digest.clone(), compressed_size));
    Ok(Ok(StreamSummary {
        digest,
        diff_id,
        size,
        compressed_size,
        compression,
    }))
}

/// Runs `consume` over the decompressed stream of the layer at `path` while a
/// reader thread decompresses and hashes it. The reader's own errors win over
/// the consumer's (a truncated gzip is the cause, "unexpected EOF in tar" the
/// symptom).
pub(crate) fn with_layer_stream<T>(
    path: &Path,
    consume: impl FnOnce(&mut ChunkReader) -> Result<T>,
) -> Result<(T, StreamSummary)> {
    let (tx, rx) = sync_channel(CHUNKS_IN_FLIGHT);
    let (free_tx, free_rx) = sync_channel(CHUNKS_IN_FLIGHT + 2);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("moorage-layer-read".into())
            .spawn_scoped(scope, move || read_all(path, tx, free_rx))
            .map_err(|source| LayerError::Io {
                step: "spawn reader thread for",
                path: path.to_path_buf(),
                source,
            })?;
        let mut chunks = ChunkReader {
            rx,
            free: free_tx,
            buf: Vec::new(),
            len: 0,
            pos: 0,
        };
        let consumed = consume(&mut chunks).and_then(|value| {
            // Drain to EOF so the digests cover trailing padding.
            io::copy(&mut chunks, &mut io::sink())
                .map(|_| value)
                .map_err(|source| LayerError::Stream {
                    path: path.to_path_buf(),
                    source,
                })
        });
        // Hang up before joining so a reader blocked on a full channel wakes.
        drop(chunks);
        let read = reader.join().map_err(|_| LayerError::ReaderPanicked)?;
        match (read, consumed) {
            (Ok(Err(read_err)), _) => Err(read_err),
            (Ok(Ok(summary)), Ok(value)) => Ok((value, summary)),
            (_, Err(consume_err)) => Err(consume_err),
            // The reader only cancels when the consumer hung up early, which
            // it does only after an error; keep this arm total all the same.
            (Err(Cancelled), Ok(_)) => Err(LayerError::Stream {
                path: path.to_path_buf(),
                source: io::Error::other("layer reader stopped early"),
            }),
        }
    })
}
