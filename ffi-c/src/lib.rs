//! libcontainer: the C ABI of corral.
//!
//! This crate owns the mapping between C and the `runtime` and `corral_image` crates' API:
//! opaque handles, `int` returns (0 or a negative errno), a per-thread last error, options
//! structs that carry their own size, and a free function for everything it hands out. It
//! holds no container or image logic: every container is a [`runtime::Description`] that
//! the corral_spec_* calls fill (made by `corral_image::create`, for a root directory and an
//! image alike) or a bundle (made by [`runtime::Container`]); images are imported, built,
//! tagged, listed, removed and pruned by `corral_image`.
//!
//! It promises that no Rust panic crosses the boundary (it becomes `-ENOTRECOVERABLE`), that a
//! NULL or stale handle is an error and never a crash, and that it never exits, aborts or
//! prints on the caller's behalf. Handles live in a registry (the only global state here):
//! a handle is an id never reused (the maker's pid, a serial number and a tag, see
//! `handle_for`), looked up before it is used, so a freed or made-up pointer is refused, and
//! one used in another process than its maker (a child after `fork()`) gets `-EXDEV`.
//!
//! The header `container.h` is generated from these files by cbindgen (see `build.rs`): the
//! doc comments of the exported items are the C documentation. The modules, by concern:
//!
//! | module | what |
//! |---|---|
//! | `error` | the per-thread last error; `call`/`call_void`, which run each exported body and catch panics |
//! | `handles` | the opaque handle types and their registry |
//! | `args` | reading C arguments (strings, arrays, out pointers, size-carrying structs, fds) |
//! | `spec` | `corral_spec` and its `corral_spec_*` calls |
//! | `limits` | `corral_limits`, for a spec and an update |
//! | `network` | a spec's networks, ports and rates; a container's attachments; a store's networks |
//! | `container` | create, run, open, start, wait, signal, state, update, delete, list |
//! | `exec` | processes run in a running container |
//! | `pool` | warm pools |
//! | `image` | images in a store: import, build, tag, list, remove, prune |
//! | `features` | version, ABI version, feature names |

#![allow(non_camel_case_types)]
// Every exported function takes C pointers: their contract (NULL or valid) is the header's,
// and each is checked for NULL before use. Marking them `unsafe` would change nothing for C.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// The order of the modules is the order of the header.
mod args;
mod container;
mod error;
mod exec;
mod features;
mod handles;
mod image;
mod limits;
mod network;
mod pool;
mod spec;

pub use container::{CORRAL_NO_NEW_KEYRING, CORRAL_NO_PIVOT};
pub use features::CORRAL_ABI_VERSION;
pub use image::{CORRAL_BUILD_HOST_NETWORK, CORRAL_BUILD_NO_CACHE};
pub use pool::CORRAL_TAKE_WAIT;
