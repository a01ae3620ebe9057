//! corral's networks, on CNI (the Container Network Interface).
//!
//! **Owns:** the runtime side of the CNI spec ([`cni`]: plugins found on the plugin path and
//! run with the `CNI_*` environment, ADD, DEL, CHECK, GC and STATUS over a network
//! configuration list, `prevResult` chaining, capability arguments such as `portMappings`
//! and `bandwidth`, errors as plugins return them, the result of every ADD cached for its
//! DEL); named networks as config lists in a directory ([`network`]: create, list, inspect,
//! remove, the default `bridge` network made on first use); a container's `/etc/hosts`,
//! `/etc/hostname` and `/etc/resolv.conf` ([`hosts`]), kept current as containers join and
//! leave a network; and the attach, detach and garbage collection of a container's
//! interfaces ([`attach`]).
//!
//! **Promises:** what an ADD made is undone by the DEL of the cached result, after a crash
//! too (a cache entry is written before its ADD, so a killed attach is collected); an
//! address comes from host-local's lease files, which survive a crash and are never handed
//! out twice; errors name the network, the plugin, the CNI error code and message.
//!
//! **Never:** writes firewall rules or changes the host's links itself (the plugins do;
//! the two exceptions run `ip`: a network's own bridge device is deleted with the network,
//! and a DEL whose container namespace is gone gets a throwaway stand-in namespace, see
//! [`attach`]), touches another corral crate, or panics outside tests.
//!
//! A network root directory (the image store's, `<store>/`) holds:
//!
//! | path | what |
//! |---|---|
//! | `networks/<name>.conflist` | a network: a CNI config list |
//! | `cni/results/<container>@<network>@<ifname>.json` | the cache: what ADD was given and returned |
//! | `cni/leases/<network>/` | host-local's address leases |
//! | `cni/containers/<id>/` | a container's `hosts`, `hostname`, `resolv.conf` (and `meta.json`: its hostname, owner, rates) |
//! | `cni/locks/` | `flock`s: one per network, one for making networks, one that serialises ADDs |
//! | `cni/versions.json` | which plugin files (by path, size, mtime) speak CNI GC, so a collection in a new process asks no plugin its VERSION again |

pub mod attach;
pub mod cni;
mod error;
pub mod hosts;
pub mod network;
mod types;

pub use error::{Error, Result};
pub use hosts::ContainerFiles;
pub use network::NetRoot;
pub use types::{
    parse_rate, Attachment, NetworkInfo, NetworkOptions, PortMapping, Protocol, Rate, Request,
    DEFAULT_NETWORK,
};
