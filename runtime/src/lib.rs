//! The corral runtime: containers from OCI runtime-spec bundles.
//!
//! This crate owns turning a bundle's `config.json` into plans for the leaf crates (`ns` for
//! namespaces and the child's set-up, `cgroup` for limits, `unionfs` for layered roots), the
//! spawn itself, the state kept under the state root, and the container's lifecycle.
//!
//! It promises that every field it reads is honoured or refused with an [`Error`] that names
//! the field (or the path, or the errno), that nothing half-made is left behind when a step
//! fails, and that it never panics or re-executes the calling binary, so that the C and Python
//! faces can embed it in multi-threaded programs.
//!
//! It never talks to a daemon, and holds no argument parsing or output formatting: those
//! belong to the faces (`cli`, `ffi-c`, `python`).

pub mod atomic_file;
pub mod config;
mod container;
pub mod describe;
mod error;
mod exec_spec;
pub mod fault;
pub mod filter;
pub mod hooks;
pub mod hostmounts;
mod idmap;
pub mod in_root;
pub mod lsm;
pub mod names;
pub mod netdev;
pub mod pool;
pub mod prepare;
pub mod resources;
pub mod spec;
pub mod state;
pub mod timings;
pub mod validate;

pub use cgroup::Resources as CgroupResources;
pub use config::{Bundle, OCI_VERSION};
pub use container::{poll_readable, Container, ExecPlacement, ExecProcess, ExitStatus, Options};
pub use corral_net as net;
pub use describe::{
    parse_size, Baseline, Description, IdRange, Limits, Mount, Namespace, Network, NetworkMode,
    NsMode, Root, UserSpec,
};
pub use error::{Error, Result};
pub use exec_spec::ExecSpec;
pub use lsm::Security;
pub use ns::MAX_PRESERVE_FDS;
pub use pool::{Pool, PoolOptions};
pub use spec::default_spec;
pub use state::{State, Status};
pub use timings::Timings;
