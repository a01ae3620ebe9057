//! Linux namespaces and the child side of a container spawn.
//!
//! This crate owns: the namespace kinds and their clone flags, opening and checking a namespace
//! to join (`/proc/PID/ns/*` paths), user-namespace id maps, and the one clone that makes a
//! container process together with everything that process does before `execve` (joining and
//! creating namespaces, the mount plan, `pivot_root`, devices, masks, hostname, sysctls,
//! credentials, capabilities, rlimits, fd hygiene).
//!
//! It promises that the code between the clone and `execve` allocates nothing, takes no lock,
//! cannot panic and performs no Rust std I/O: it runs only raw syscalls over a [`Plan`] that the
//! caller prepared (C strings and plain arrays). A failure there travels back as `(step, errno,
//! index)` over a CLOEXEC socketpair and becomes a [`ChildError`] naming the step and the path.
//! That makes [`spawn`] safe to call from multi-threaded hosts.
//!
//! It never reads OCI types, never touches cgroups or image layers, and never re-executes the
//! calling binary; nor does the container's program ever run while `/proc/self/exe` is the
//! calling binary (see [`shim`]).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod child;
mod error;
mod idmap;
mod kind;
pub mod late;
mod plan;
mod proto;
pub mod shim;
mod spawn;
mod sys;

pub use error::{ChildError, Error, Step};
pub use idmap::{write_id_maps, IdMap};
pub use kind::{JoinNs, Kind};
pub use plan::{
    CStringArray, Caps, CgroupTasks, Device, Gate, Hook, Keyring, LsmAttr, Mount, Plan, Process,
    Rlimit, Rootfs, SchedAttr, Seccomp, Symlink, Target,
};
pub use proto::GATE_REPORT_MAX;
pub use spawn::{gate_result, spawn, HookEnd, HookFailure, Spawned, Spawning, MAX_PRESERVE_FDS};
pub use sys::{last_cap, permitted_caps};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
