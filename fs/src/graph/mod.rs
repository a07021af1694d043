//! Graph drivers: how layers become directories a container can use.
//!
//! One file per driver. Every driver keeps a layer's own files in
//! `<home>/<id>/diff` (in kernel overlayfs' upper format) so the layer
//! store's apply and diff work on any of them.

pub mod overlay;
