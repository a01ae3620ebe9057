//! One typed description of a container, for every face.
//!
//! A [`Description`] says what a caller wants (a root, a baseline of defaults, the process,
//! limits, mounts, security options, the network) and [`Description::to_spec`] turns it
//! into an `oci_spec::runtime::Spec` with oci-spec's builders: no JSON text on the way. The
//! spec then goes through the same checks as a `config.json` ([`crate::validate::spec`], by
//! [`crate::Bundle::from_spec`]).
//!
//! Two baselines: [`Baseline::Runc`] is the spec `runc spec` writes (the library's default
//! for a root filesystem directory), [`Baseline::Docker`] what `docker run` gives an image's
//! container (docker's capabilities, seccomp profile, masked paths; see [`security`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;

use crate::{Bundle, Error, Result};

mod limits;
pub mod security;
mod to_spec;
pub mod user;

pub use limits::{parse_size, DeviceRate, Limits, CPU_PERIOD_US};
pub use security::{
    default_seccomp, DeviceMap, Seccomp, Security, DOCKER_SECCOMP, IMAGE_CAPS, IMAGE_MASKED_PATHS,
    IMAGE_READONLY_PATHS,
};

/// The error of a builder that refused its fields (`field`: the spec field being built).
pub(crate) fn built(field: &'static str) -> impl Fn(oci_spec::OciSpecError) -> Error {
    move |e| Error::Config {
        field: field.into(),
        reason: e.to_string(),
    }
}

/// Where the container's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Root {
    /// A directory (`root.path`; relative paths are relative to the bundle).
    Dir(PathBuf),
    /// An image reference in a store: its spec is made by the image crate, which merges the
    /// image's config into the description and sets the root to its layers.
    Image(String),
}

/// The defaults a description starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Baseline {
    /// `runc spec`'s (`runc spec --rootless`'s for a caller that is not root).
    Runc,
    /// `docker run`'s: docker's capabilities, seccomp profile, masked and read-only paths,
    /// a writable root, `noNewPrivileges` off.
    Docker,
}

/// Who the process runs as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UserSpec {
    /// Numeric ids.
    Ids { uid: u32, gid: u32 },
    /// `user[:group]`, names or numbers, resolved in the root's `/etc/passwd` and
    /// `/etc/group`.
    Name(String),
}

/// The network namespace of the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NetworkMode {
    /// A network namespace of its own: loopback, and an interface on each of
    /// [`Network::networks`] (CNI networks, attached by `corral_image::create`).
    #[default]
    Private,
    /// The host's network namespace (docker's `--network host`: the host's
    /// `/etc/resolv.conf` and `/etc/hosts` too, for the Docker baseline).
    Host,
    /// A network namespace of its own with loopback only, whatever
    /// [`Network::networks`] says (docker's `--network none`).
    None,
    /// The network namespace at this path (docker's `--network container:ID` is the
    /// other container's `/proc/PID/ns/net`).
    Join(PathBuf),
}

/// The network settings of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Network {
    /// Which network namespace.
    pub mode: NetworkMode,
    /// The CNI networks to attach with [`NetworkMode::Private`], in order (`eth0`,
    /// `eth1`...): names of networks of the store (`bridge` is the default network).
    /// Empty: loopback only.
    pub networks: Vec<String>,
    /// Published ports (on the first network).
    pub ports: Vec<corral_net::PortMapping>,
    /// Publish every port the image exposes (`-P`) on a free host port.
    pub publish_all: bool,
    /// Network rate limits (CNI's bandwidth plugin, on every attachment).
    pub rate: corral_net::Rate,
}

impl Network {
    /// The container gets CNI networks: a namespace of its own and at least one network.
    pub fn attaches(&self) -> bool {
        self.mode == NetworkMode::Private && !self.networks.is_empty()
    }
}

/// A container, as every face describes it. [`Description::new`] fills the baseline's
/// defaults; set the fields, then [`Description::to_spec`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Description {
    /// The root filesystem.
    pub root: Root,
    /// The defaults ([`Root::Image`]: Docker; [`Root::Dir`]: Runc).
    pub baseline: Baseline,
    /// The program and its arguments (empty: the image's Entrypoint and Cmd; for a
    /// directory root, `/bin/sh`).
    pub args: Vec<String>,
    /// Replaces the image's Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Variables set over the baseline's (`PATH`) and the image's, by name, in order.
    pub env: Vec<(String, String)>,
    /// The working directory (absolute; default the image's, else `/`).
    pub cwd: Option<String>,
    /// The user (default the image's, else root).
    pub user: Option<UserSpec>,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// The hostname (default `corral`, for a UTS namespace of its own).
    pub hostname: Option<String>,
    /// A terminal for the process.
    pub terminal: bool,
    /// A read-only root (default: read-only for Runc, writable for Docker).
    pub readonly_root: Option<bool>,
    /// Overrides of the baseline's namespaces ([`NsMode::Host`]: none of its own). The
    /// network namespace is [`Description::network`]'s.
    pub namespaces: BTreeMap<Namespace, NsMode>,
    /// The uid map of a new user namespace (default: the caller's uid as root).
    pub uid_map: Vec<IdRange>,
    /// The gid map of a new user namespace (default: the caller's gid as root).
    pub gid_map: Vec<IdRange>,
    /// Resource limits.
    pub limits: Limits,
    /// Mounts, after the baseline's (binds, tmpfs, volumes).
    pub mounts: Vec<Mount>,
    /// Security settings over the baseline's.
    pub security: Security,
    /// The network.
    pub network: Network,
    /// `annotations`.
    pub annotations: BTreeMap<String, String>,
}

impl Description {
    /// A description of a container on `root`, with its baseline's defaults.
    pub fn new(root: Root) -> Description {
        let baseline = match root {
            Root::Dir(_) => Baseline::Runc,
            Root::Image(_) => Baseline::Docker,
        };
        let network = Network {
            mode: if baseline == Baseline::Runc && rootless() {
                NetworkMode::Host
            } else {
                NetworkMode::Private
            },
            ..Network::default()
        };
        Description {
            root,
            baseline,
            args: Vec::new(),
            entrypoint: None,
            env: Vec::new(),
            cwd: None,
            user: None,
            additional_gids: Vec::new(),
            hostname: None,
            terminal: false,
            readonly_root: None,
            namespaces: BTreeMap::new(),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            limits: Limits::default(),
            mounts: Vec::new(),
            security: Security::default(),
            network,
            annotations: BTreeMap::new(),
        }
    }
}

impl Description {
    /// The checked bundle of a description with a directory root (the program `/bin/sh`
    /// unless [`Description::args`] names one): the root filesystem must be a directory; the spec ([`Description::to_spec`])
    /// is checked as a `config.json` is. Its bundle directory (the state's `bundle`) is the
    /// root filesystem's parent.
    pub fn bundle(&self) -> Result<Bundle> {
        let Root::Dir(rootfs) = &self.root else {
            return Err(Error::Config {
                field: "root.path".into(),
                reason: "an image root: make the container with corral_image::create".into(),
            });
        };
        let root = std::fs::canonicalize(rootfs).map_err(|e| Error::Config {
            field: "root.path".into(),
            reason: format!("{}: {e}", rootfs.display()),
        })?;
        if !root.is_dir() {
            return Err(Error::Config {
                field: "root.path".into(),
                reason: format!("{}: not a directory", root.display()),
            });
        }
        let dir = root
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| root.clone());
        let mut d = self.clone();
        d.root = Root::Dir(root);
        Bundle::from_spec(dir, d.to_spec()?)
    }
}

/// The caller is not root (a rootless container).
pub(crate) fn rootless() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// A namespace kind, by its OCI name (`pid`, `network`, `ipc`, `uts`, `mount`, `user`,
/// `cgroup`, `time`; `net` and `mnt` are accepted too).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Namespace {
    Pid,
    Network,
    Ipc,
    Uts,
    Mount,
    User,
    Cgroup,
    Time,
}

impl Namespace {
    /// Every kind, in the order a spec lists them.
    pub const ALL: [Namespace; 8] = [
        Namespace::Pid,
        Namespace::Network,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Mount,
        Namespace::User,
        Namespace::Cgroup,
        Namespace::Time,
    ];

    /// The OCI name (`linux.namespaces[].type`).
    pub fn oci_name(self) -> &'static str {
        match self {
            Namespace::Pid => "pid",
            Namespace::Network => "network",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Mount => "mount",
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }
}

impl std::str::FromStr for Namespace {
    type Err = Error;
    fn from_str(s: &str) -> Result<Namespace> {
        Ok(match s {
            "pid" => Namespace::Pid,
            "network" | "net" => Namespace::Network,
            "ipc" => Namespace::Ipc,
            "uts" => Namespace::Uts,
            "mount" | "mnt" => Namespace::Mount,
            "user" => Namespace::User,
            "cgroup" => Namespace::Cgroup,
            "time" => Namespace::Time,
            _ => {
                return Err(Error::Config {
                    field: "namespaces".into(),
                    reason: format!(
                        "unknown namespace {s:?} (want pid, network, ipc, uts, mount, user, cgroup or time)"
                    ),
                })
            }
        })
    }
}

/// What the container gets of one namespace kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NsMode {
    /// A new namespace of its own.
    New,
    /// The caller's (the host's) namespace: none of its own.
    Host,
    /// The namespace at this path (`/proc/PID/ns/net`, a bind-mounted namespace file).
    Join(PathBuf),
}

/// One mount of the container (`mounts[]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// Where it goes inside the container (absolute).
    pub destination: String,
    /// The filesystem type (`bind` for a bind mount, `tmpfs`, `proc`...).
    pub kind: String,
    /// The source: a host path for a bind mount, else a name.
    pub source: String,
    /// Mount options, as in `mounts[].options` (`ro`, `nosuid`, `rbind`, `size=64m`...).
    pub options: Vec<String>,
}

impl Mount {
    /// A bind mount of the host path `source` at `destination`, read-only if `readonly`.
    pub fn bind(
        source: impl Into<String>,
        destination: impl Into<String>,
        readonly: bool,
    ) -> Mount {
        let mut options = vec!["rbind".to_string(), "nosuid".into(), "nodev".into()];
        options.push(if readonly { "ro" } else { "rw" }.into());
        Mount {
            destination: destination.into(),
            kind: "bind".into(),
            source: source.into(),
            options,
        }
    }

    /// A volume as docker's `-v SRC:DST[:ro|rw]` writes it: the host path SRC (absolute,
    /// existing) bound at DST (absolute), read-only with `ro`.
    pub fn volume(spec: &str) -> Result<Mount> {
        let bad = |reason: String| Error::Config {
            field: "mounts".into(),
            reason: format!("volume {spec:?}: {reason}"),
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [src, dst] => (*src, *dst, false),
            [src, dst, "ro"] => (*src, *dst, true),
            [src, dst, "rw"] => (*src, *dst, false),
            _ => return Err(bad("want SRC:DST[:ro|rw]".into())),
        };
        if !src.starts_with('/') || !dst.starts_with('/') {
            return Err(bad("both paths must be absolute".into()));
        }
        if !Path::new(src).exists() {
            return Err(bad(format!("{src} does not exist")));
        }
        let mut options = vec!["rbind".to_string(), "rprivate".into()];
        if ro {
            options.push("ro".into());
        }
        Ok(Mount {
            destination: dst.into(),
            kind: "bind".into(),
            source: src.into(),
            options,
        })
    }

    /// An empty tmpfs at `destination`.
    pub fn tmpfs(destination: impl Into<String>) -> Mount {
        Mount {
            destination: destination.into(),
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            options: vec!["nosuid".into(), "nodev".into(), "mode=1777".into()],
        }
    }
}

/// One range of a user namespace's id map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRange {
    /// First id inside the container.
    pub container: u32,
    /// First id on the host.
    pub host: u32,
    /// How many ids.
    pub size: u32,
}

impl Namespace {
    /// The oci-spec type of this kind.
    pub fn oci_type(self) -> LinuxNamespaceType {
        match self {
            Namespace::Pid => LinuxNamespaceType::Pid,
            Namespace::Network => LinuxNamespaceType::Network,
            Namespace::Ipc => LinuxNamespaceType::Ipc,
            Namespace::Uts => LinuxNamespaceType::Uts,
            Namespace::Mount => LinuxNamespaceType::Mount,
            Namespace::User => LinuxNamespaceType::User,
            Namespace::Cgroup => LinuxNamespaceType::Cgroup,
            Namespace::Time => LinuxNamespaceType::Time,
        }
    }

    /// The kind of an oci-spec namespace type.
    pub fn of(t: LinuxNamespaceType) -> Namespace {
        match t {
            LinuxNamespaceType::Pid => Namespace::Pid,
            LinuxNamespaceType::Network => Namespace::Network,
            LinuxNamespaceType::Ipc => Namespace::Ipc,
            LinuxNamespaceType::Uts => Namespace::Uts,
            LinuxNamespaceType::Mount => Namespace::Mount,
            LinuxNamespaceType::User => Namespace::User,
            LinuxNamespaceType::Cgroup => Namespace::Cgroup,
            LinuxNamespaceType::Time => Namespace::Time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &oci_spec::runtime::Spec) -> Vec<(Namespace, Option<PathBuf>)> {
        s.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .iter()
            .flatten()
            .map(|n| (Namespace::of(n.typ()), n.path().clone()))
            .collect()
    }

    #[test]
    fn a_user_name_is_resolved_in_the_root_dir_and_not_through_links() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let mut d = Description::new(Root::Dir(t.path().to_path_buf()));
        d.user = Some(UserSpec::Name("app".into()));
        let u = d
            .to_spec()
            .unwrap()
            .process()
            .as_ref()
            .unwrap()
            .user()
            .clone();
        assert_eq!((u.uid(), u.gid()), (1234, 2345));
        d.user = Some(UserSpec::Name("app:staff".into()));
        let u = d
            .to_spec()
            .unwrap()
            .process()
            .as_ref()
            .unwrap()
            .user()
            .clone();
        assert_eq!((u.uid(), u.gid()), (1234, 50));
        d.user = Some(UserSpec::Name("nobody".into()));
        let e = d.to_spec().unwrap_err().to_string();
        assert!(e.contains("process.user") && e.contains("nobody"), "{e}");
        // A root whose /etc is a link to the host's: not read.
        let l = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", l.path().join("etc")).unwrap();
        let mut d = Description::new(Root::Dir(l.path().to_path_buf()));
        d.user = Some(UserSpec::Name("root".into()));
        assert!(d.to_spec().is_err());
    }

    #[test]
    fn a_description_round_trips_through_json() {
        let mut d = Description::new(Root::Image("bb:1".into()));
        d.args = vec!["sh".into(), "-c".into(), "exit 3".into()];
        d.env = vec![("A".into(), "1".into())];
        d.user = Some(UserSpec::Ids { uid: 1, gid: 2 });
        d.namespaces.insert(Namespace::Ipc, NsMode::Host);
        d.namespaces
            .insert(Namespace::Uts, NsMode::Join("/proc/1/ns/uts".into()));
        d.uid_map.push(IdRange {
            container: 0,
            host: 1000,
            size: 1,
        });
        d.limits.memory = Some(64 << 20);
        d.limits.cpus = Some(0.5);
        d.limits.device_read_bps.push(DeviceRate {
            path: "/dev/sda".into(),
            rate: 1 << 20,
        });
        d.mounts.push(Mount::tmpfs("/scratch"));
        d.security.seccomp = Seccomp::Profile("/p.json".into());
        d.security.cap_add.push("NET_ADMIN".into());
        d.network.mode = NetworkMode::None;
        d.network.ports.push(corral_net::PortMapping {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: corral_net::Protocol::Tcp,
        });
        d.annotations.insert("k".into(), "v".into());
        let text = serde_json::to_string(&d).unwrap();
        let back: Description = serde_json::from_str(&text).unwrap();
        assert_eq!(back, d);
        // Fields added later default when an older text lacks them.
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["limits"].as_object_mut().unwrap().remove("pids");
        v["security"].as_object_mut().unwrap().remove("label");
        let back: Description = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn network_modes_are_namespaces() {
        let mut d = Description::new(Root::Dir("/r".into()));
        d.network.mode = NetworkMode::Join("/proc/1/ns/net".into());
        assert!(kinds(&d.to_spec().unwrap())
            .contains(&(Namespace::Network, Some("/proc/1/ns/net".into()))));
        d.network.mode = NetworkMode::Host;
        let s = d.to_spec().unwrap();
        assert!(!kinds(&s).iter().any(|(k, _)| *k == Namespace::Network));
        // sysfs is bound, not mounted, without a network namespace of its own.
        let sys = s
            .mounts()
            .iter()
            .flatten()
            .find(|m| m.destination() == Path::new("/sys"))
            .unwrap();
        assert_eq!(sys.typ().as_deref(), Some("none"));
        d.network.mode = NetworkMode::Private;
        assert!(kinds(&d.to_spec().unwrap()).contains(&(Namespace::Network, None)));
    }

    #[test]
    fn bad_descriptions_are_refused_by_field() {
        let e = Description::new(Root::Image("alpine".into()))
            .to_spec()
            .unwrap_err();
        assert!(e.to_string().contains("root"), "{e}");
        let mut d = Description::new(Root::Dir("/r".into()));
        d.cwd = Some("tmp".into());
        assert!(d.to_spec().unwrap_err().to_string().contains("process.cwd"));
        let mut d = Description::new(Root::Dir("/r".into()));
        d.limits.blkio_weight = Some(5);
        let e = d.to_spec().unwrap_err().to_string();
        assert!(e.contains("linux.resources.blockIO.weight"), "{e}");
        d.limits.blkio_weight = Some(500);
        d.limits.device_read_bps = vec![DeviceRate {
            path: "/dev/null".into(),
            rate: 1 << 20,
        }];
        let e = d.to_spec().unwrap_err().to_string();
        assert!(
            e.contains("throttleReadBpsDevice[0]") && e.contains("not a block device"),
            "{e}"
        );
        d.limits.device_read_bps.clear();
        let s = d.to_spec().unwrap();
        let b = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(b.block_io().as_ref().unwrap().weight(), Some(500));
    }
}
