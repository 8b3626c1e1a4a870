//! TODO: filled by the layer work.
