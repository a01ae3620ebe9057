//! Union filesystem support for corral.
//!
//! **Owns:** mounting overlayfs ([`Overlay`], with the `fsopen`/`lowerdir+`
//! mount API and a legacy `mount(2)` fallback), converting OCI layer tars to
//! and from overlay-format directories ([`unpack_layer`], [`diff_layer`]:
//! `.wh.` whiteouts <-> 0:0 character devices, `.wh..wh..opq` <->
//! `trusted.overlay.opaque=y`), and a content-addressed [`LayerStore`] of
//! unpacked layers (each under its diff ID, published atomically) with
//! [`FileLock`]s for commands that share it.
//!
//! **Promises:** unpacking never writes outside its destination (absolute
//! paths, `..`, symlinked parents and out-of-layer hardlinks are refused);
//! every mount is owned by an [`OverlayMount`] guard that unmounts on drop;
//! store entries appear atomically. Errors name the path and the errno.
//!
//! Layers may be plain tars or gzip/zstd-compressed (detected from their first
//! bytes); device nodes are only made for a privileged caller.
//!
//! **Never:** touches OCI types or other corral crates, follows symlinks while
//! unpacking, or panics outside tests.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod error;
mod layer;
mod lock;
mod overlay;
mod store;
mod sys;

pub use error::{Error, Result};
pub use layer::{
    decompress, diff_layer, is_opaque, is_whiteout, make_whiteout, privileged, set_opaque,
    unpack_layer, unpack_layer_with, Compression, UnpackOptions, DEFAULT_MAX_LAYER_BYTES,
    OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX,
};
pub use lock::FileLock;
pub use overlay::{MountApi, Overlay, OverlayMount};
pub use store::{Digest, HashingReader, LayerImport, LayerStore};
