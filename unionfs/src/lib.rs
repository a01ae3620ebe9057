//! Union filesystem support for corral.
//!
//! **Owns:** mounting overlayfs ([`Overlay`], with the `fsopen`/`lowerdir+`
//! mount API and a legacy `mount(2)` fallback), converting OCI layer tars to
//! and from overlay-format directories ([`unpack_layer`], [`diff_layer`]:
//! `.wh.` whiteouts <-> 0:0 character devices, `.wh..wh..opq` <->
//! `trusted.overlay.opaque=y`), and a content-addressed [`LayerStore`] of
//! unpacked layers.
//!
//! **Promises:** unpacking never writes outside its destination (absolute
//! paths, `..`, symlinked parents and out-of-layer hardlinks are refused);
//! every mount is owned by an [`OverlayMount`] guard that unmounts on drop;
//! store entries appear atomically. Errors name the path and the errno.
//!
//! **Never:** touches OCI runtime-spec types or other corral crates, follows
//! symlinks while unpacking, decompresses layers (gzip/zstd are detected and
//! refused), or panics outside tests.

mod error;
mod layer;
mod overlay;
mod store;
mod sys;

pub use error::{Error, Result};
pub use layer::{
    diff_layer, is_opaque, is_whiteout, make_whiteout, set_opaque, unpack_layer, OPAQUE_MARKER,
    OPAQUE_XATTR, WHITEOUT_PREFIX,
};
pub use overlay::{MountApi, Overlay, OverlayMount};
pub use store::{Digest, LayerStore};
