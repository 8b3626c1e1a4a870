//! Image layers: apply a tar diff onto a directory (`apply`), and make the tar
//! diff of an overlay upper directory (`diff`).
//!
//! Both speak Docker's whiteout convention inside the tar (`.wh.NAME` deletes
//! NAME from the layers below, `.wh..wh..opq` hides a whole directory of them)
//! and translate it to and from what the storage needs: overlayfs' 0/0
//! character devices and `trusted.overlay.opaque=y`, or plain deletions for
//! the vfs driver.

mod apply;
mod diff;
mod fsops;
mod stream;
#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use apply::{apply_layer, ApplyReport};
pub use diff::{diff_layer, DiffReport};
pub use stream::Compression;

/// Errors of layer work. Each names the file or tar entry it is about.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A system call on a caller-given path failed (opening the tar, the
    /// destination, the output, walking the upper dir).
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A system call failed while applying or writing one tar entry.
    #[error("layer entry {entry:?}: {step}: {source}")]
    Entry {
        entry: String,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    /// The entry tries to leave the destination, or is otherwise unusable.
    #[error("layer entry {entry:?}: {reason}")]
    Invalid { entry: String, reason: String },
    /// The tar stream itself is malformed or truncated.
    #[error("reading layer {path}: {}", stream_message(.source))]
    Stream {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Compressions other than gzip and zstd (xz, bzip2) are refused.
    #[error("layer {path}: unsupported compression {kind}")]
    UnsupportedCompression { path: PathBuf, kind: &'static str },
    /// `whiteout_format` other than "overlay" or "vfs".
    #[error("invalid whiteout format {0:?}: expected \"overlay\" or \"vfs\"")]
    InvalidWhiteoutFormat(String),
    /// The upper dir holds something a tar diff cannot express.
    #[error("{path}: {reason}")]
    Unrepresentable { path: PathBuf, reason: String },
    /// The reader thread died.
    #[error("layer reader thread panicked")]
    ReaderPanicked,
}

impl LayerError {
    /// The OS error behind this error, if any (for errno mapping).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            LayerError::Io { source, .. }
            | LayerError::Entry { source, .. }
            | LayerError::Stream { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The path or entry name this error is about, if any.
    pub fn subject(&self) -> Option<String> {
        match self {
            LayerError::Io { path, .. }
            | LayerError::Stream { path, .. }
            | LayerError::UnsupportedCompression { path, .. }
            | LayerError::Unrepresentable { path, .. } => Some(path.display().to_string()),
            LayerError::Entry { entry, .. } | LayerError::Invalid { entry, .. } => {
                Some(entry.clone())
            }
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, LayerError>;

/// How whiteouts in the tar are materialised in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutFormat {
    /// For an overlayfs lower/upper dir: 0/0 char devices and the
    /// `trusted.overlay.opaque` xattr.
    Overlay,
    /// For a full copy of the parent (vfs driver): delete the files.
    Vfs,
}

impl std::str::FromStr for WhiteoutFormat {
    type Err = LayerError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "overlay" => Ok(WhiteoutFormat::Overlay),
            "vfs" => Ok(WhiteoutFormat::Vfs),
            other => Err(LayerError::InvalidWhiteoutFormat(other.to_string())),
        }
    }
}

/// Docker's whiteout prefix.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Marks its directory opaque: everything below it in lower layers is hidden.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// Every AUFS meta entry starts with this; only the opaque marker is meaningful.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The overlayfs xattr that makes a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// One printable line for a broken tar stream. The tar crate quotes the raw
/// header bytes in some messages ("... when getting cksum for <512 bytes>"),
/// which for a file that is not a tar archive is binary noise over many lines.
fn stream_message(e: &io::Error) -> String {
    let text = e.to_string();
    let head = text.split(" when getting cksum for ").next().unwrap_or("");
    let mut out: String = head
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_control() || c == char::REPLACEMENT_CHARACTER {
                '?'
            } else {
                c
            }
        })
        .take(160)
        .collect();
    if text.contains(" when getting cksum for ") {
        out = format!("not a tar archive ({out})");
    }
    out
}

#[cfg(test)]
mod message_tests {
    use super::*;

    #[test]
    fn stream_message_is_one_printable_line() {
        let e = io::Error::other(
            "numeric field was not a number: login\nsy when getting cksum for root:x:0:0\nmore",
        );
        assert_eq!(
            stream_message(&e),
            "not a tar archive (numeric field was not a number: login)"
        );
        let e = io::Error::other("bad \u{1}\u{fffd} bytes");
        assert_eq!(stream_message(&e), "bad ?? bytes");
        let e = io::Error::new(io::ErrorKind::UnexpectedEof, "failed to read entire block");
        assert_eq!(stream_message(&e), "failed to read entire block");
    }
}
