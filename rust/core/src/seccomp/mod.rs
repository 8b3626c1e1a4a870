//! TODO: filled by the runtime work.
