//! A container described field by field, without a bundle directory.
//!
//! [`SpecBuilder`] is the older face of [`crate::describe::Description`] (Runc baseline): its
//! setters fill a description, and [`SpecBuilder::build`] yields a [`Bundle`] through
//! [`Bundle::from_spec`], so a container built here and one from a bundle follow one path
//! from there on. Kept for the faces until they map their arguments to a description.

use std::path::PathBuf;

use crate::config::Bundle;
use crate::describe::{Description, NetworkMode, Root, Seccomp, UserSpec};
use crate::{Error, Result};

pub use crate::describe::{
    default_seccomp, parse_size, IdRange, Limits, Mount, Namespace, NsMode, CPU_PERIOD_US,
};

/// A container described field by field. Every setter has a default: the spec of
/// `corral spec` (pid, network, ipc, uts, mount and cgroup namespaces; `/proc`, `/dev`,
/// `/sys`...; masked and read-only paths; a read-only root; the default capabilities;
/// `noNewPrivileges`), no terminal, `PATH` set, and `/bin/sh` as the process unless
/// [`SpecBuilder::args`] says otherwise. A caller that is not root gets the rootless
/// default (a user namespace mapping it to root, no network namespace).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct SpecBuilder {
    d: Description,
}

impl SpecBuilder {
    /// A container whose root filesystem is the directory `rootfs`.
    pub fn new(rootfs: impl Into<PathBuf>) -> SpecBuilder {
        let mut d = Description::new(Root::Dir(rootfs.into()));
        d.args = vec!["/bin/sh".into()];
        SpecBuilder { d }
    }

    /// The description this builder fills.
    pub fn description(&self) -> &Description {
        &self.d
    }

    /// The process: its executable (looked up in `PATH` when it has no `/`) and arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.d.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the environment variable `key` (replacing an earlier value).
    pub fn env(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let key = key.into();
        self.d.env.retain(|(k, _)| *k != key);
        self.d.env.push((key, value.into()));
        self
    }

    /// The working directory, inside the container.
    pub fn cwd(&mut self, cwd: impl Into<String>) -> &mut Self {
        self.d.cwd = Some(cwd.into());
        self
    }

    /// The hostname (needs a UTS namespace of its own).
    pub fn hostname(&mut self, h: impl Into<String>) -> &mut Self {
        self.d.hostname = Some(h.into());
        self
    }

    /// The user and group the process runs as, inside the container.
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.d.user = Some(UserSpec::Ids { uid, gid });
        self
    }

    /// Supplementary groups of the process.
    pub fn additional_gids(&mut self, gids: &[u32]) -> &mut Self {
        self.d.additional_gids = gids.to_vec();
        self
    }

    /// What the container gets of the namespace `kind`.
    pub fn namespace(&mut self, kind: Namespace, mode: NsMode) -> &mut Self {
        if kind == Namespace::Network {
            self.d.network.mode = match mode {
                NsMode::New => NetworkMode::Private,
                NsMode::Host => NetworkMode::Host,
                NsMode::Join(p) => NetworkMode::Join(p),
            };
        } else {
            self.d.namespaces.insert(kind, mode);
        }
        self
    }

    /// The id maps of a user namespace. Without them, a new user namespace maps the caller's
    /// own uid and gid to root (the only ids in it).
    pub fn id_maps(&mut self, uid_map: &[IdRange], gid_map: &[IdRange]) -> &mut Self {
        self.d.uid_map = uid_map.to_vec();
        self.d.gid_map = gid_map.to_vec();
        self
    }

    /// Resource limits (checked when built).
    pub fn limits(&mut self, l: Limits) -> &mut Self {
        self.d.limits = l;
        self
    }

    /// Adds a mount, after the default ones (a later mount over the same destination hides
    /// the earlier one).
    pub fn mount(&mut self, m: Mount) -> &mut Self {
        self.d.mounts.push(m);
        self
    }

    /// Gives the process a terminal (a pty; its master is [`crate::Container::take_console`]).
    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.d.terminal = on;
        self
    }

    /// Turns the default seccomp filter on or off (off by default): [`default_seccomp`].
    pub fn seccomp(&mut self, on: bool) -> &mut Self {
        self.d.security.seccomp = if on {
            Seccomp::Minimal
        } else {
            Seccomp::Default
        };
        self
    }

    /// A read-only root filesystem (the default) or a writable one.
    pub fn readonly_root(&mut self, on: bool) -> &mut Self {
        self.d.readonly_root = Some(on);
        self
    }

    /// Adds an annotation (`annotations`).
    pub fn annotation(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.d.annotations.insert(key.into(), value.into());
        self
    }

    /// The typed spec, with the root filesystem's path as given.
    pub fn to_spec(&self) -> Result<oci_spec::runtime::Spec> {
        self.d.to_spec()
    }

    /// The checked bundle: the root filesystem must be a directory; the spec is checked as
    /// a `config.json` is. Its bundle directory (the state's `bundle`) is the root
    /// filesystem's parent.
    pub fn build(&self) -> Result<Bundle> {
        self.d.bundle()
    }
}

/// A process to run in a running container ([`crate::Container::exec_with`]): the
/// container's own process settings (user, capabilities, `noNewPrivileges`, rlimits, env) with
/// these arguments, and what is set here on top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The program and its arguments (not empty).
    pub args: Vec<String>,
    /// Variables set on top of the container's environment.
    pub env: Vec<(String, String)>,
    /// The working directory (default: the container's).
    pub cwd: Option<String>,
    /// User and group (default: the container's).
    pub user: Option<(u32, u32)>,
    /// A terminal of its own (the pty master is [`crate::ExecProcess::take_console`]).
    pub terminal: bool,
}

impl ExecSpec {
    /// The process: `base` (the container's `process`) with this spec's fields.
    pub fn process(&self, base: &oci_spec::runtime::Process) -> Result<oci_spec::runtime::Process> {
        if self.args.is_empty() {
            return Err(Error::Config {
                field: "process.args".into(),
                reason: "empty: give the program to run".into(),
            });
        }
        let mut p = base.clone();
        p.set_args(Some(self.args.clone()));
        p.set_terminal(Some(self.terminal));
        let mut env = p.env().clone().unwrap_or_default();
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(Error::Config {
                    field: "process.env".into(),
                    reason: format!("{k:?} is not a variable name"),
                });
            }
            env.retain(|e| e.split('=').next() != Some(k.as_str()));
            env.push(format!("{k}={v}"));
        }
        p.set_env(Some(env));
        if let Some(d) = &self.cwd {
            p.set_cwd(d.into());
        }
        if let Some((uid, gid)) = self.user {
            let mut u = p.user().clone();
            u.set_uid(uid);
            u.set_gid(gid);
            p.set_user(u);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes_and_bad_ones_name_the_value() {
        assert_eq!(parse_size("memory", "4096").unwrap(), 4096);
        assert_eq!(parse_size("memory", "64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "64mb").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("memory", "2KiB").unwrap(), 2048);
        for bad in ["", "M", "-1M", "0", "12q", "1e400"] {
            let e = parse_size("memory", bad).unwrap_err().to_string();
            assert!(
                e.contains("memory") && e.contains(&format!("{bad:?}")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn limits_are_checked_and_converted() {
        let l = Limits {
            memory: Some(64 << 20),
            pids: Some(64),
            cpus: Some(0.5),
            ..Default::default()
        };
        let r = l.to_resources().unwrap();
        assert_eq!(r.memory_limit, Some(64 << 20));
        assert_eq!(r.pids_limit, Some(64));
        assert_eq!((r.cpu_quota, r.cpu_period), (Some(50_000), Some(100_000)));
        for (l, field) in [
            (
                Limits {
                    memory: Some(-5),
                    ..Default::default()
                },
                "memory.limit",
            ),
            (
                Limits {
                    pids: Some(0),
                    ..Default::default()
                },
                "pids.limit",
            ),
            (
                Limits {
                    cpus: Some(f64::NAN),
                    ..Default::default()
                },
                "cpu.quota",
            ),
            (
                Limits {
                    cpu_shares: Some(1),
                    ..Default::default()
                },
                "cpu.shares",
            ),
        ] {
            let e = l.check().unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn namespaces_parse_by_oci_and_short_names() {
        assert_eq!("net".parse::<Namespace>().unwrap(), Namespace::Network);
        assert_eq!("mnt".parse::<Namespace>().unwrap(), Namespace::Mount);
        for n in Namespace::ALL {
            assert_eq!(n.oci_name().parse::<Namespace>().unwrap(), n);
        }
        assert!("nett"
            .parse::<Namespace>()
            .unwrap_err()
            .to_string()
            .contains("\"nett\""));
    }

    #[test]
    fn built_spec_carries_every_field() {
        let t = tempfile::tempdir().unwrap();
        let mut b = SpecBuilder::new(t.path());
        b.args(["/bin/echo", "hi"])
            .env("A", "1")
            .env("PATH", "/bin")
            .cwd("/tmp")
            .hostname("h1")
            .user(1000, 1001)
            .namespace(Namespace::Network, NsMode::Host)
            .limits(Limits {
                memory: Some(1 << 26),
                ..Default::default()
            })
            .mount(Mount::bind("/etc", "/mnt", true))
            .seccomp(true)
            .readonly_root(false)
            .annotation("k", "v");
        let bundle = b.build().unwrap();
        let s = &bundle.spec;
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["/bin/echo", "hi"]);
        let env = p.env().as_ref().unwrap();
        assert!(env.contains(&"A=1".to_string()) && env.contains(&"PATH=/bin".to_string()));
        assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
        assert_eq!(p.cwd().to_str(), Some("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(s.hostname().as_deref(), Some("h1"));
        let l = s.linux().as_ref().unwrap();
        let kinds: Vec<Namespace> = l
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| Namespace::of(n.typ()))
            .collect();
        assert!(!kinds.contains(&Namespace::Network), "{kinds:?}");
        assert!(kinds.contains(&Namespace::Pid));
        assert_eq!(
            l.resources()
                .as_ref()
                .unwrap()
                .memory()
                .as_ref()
                .unwrap()
                .limit(),
            Some(1 << 26)
        );
        assert!(l.seccomp().is_some());
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(false));
        assert!(s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.destination().to_str() == Some("/mnt")));
        assert_eq!(
            bundle.dir,
            t.path().canonicalize().unwrap().parent().unwrap()
        );
    }

    #[test]
    fn a_joined_uts_namespace_keeps_its_hostname() {
        let t = tempfile::tempdir().unwrap();
        let mut b = SpecBuilder::new(t.path());
        assert!(b.to_spec().unwrap().hostname().is_some());
        b.namespace(Namespace::Uts, NsMode::Join("/proc/1/ns/uts".into()));
        assert!(b.to_spec().unwrap().hostname().is_none());
        b.hostname("h");
        assert_eq!(b.to_spec().unwrap().hostname().as_deref(), Some("h"));
    }

    #[test]
    fn bad_fields_are_refused_by_name() {
        let e = SpecBuilder::new("/no/such/rootfs")
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("root.path") && e.contains("/no/such/rootfs"),
            "{e}"
        );
        let t = tempfile::tempdir().unwrap();
        let e = SpecBuilder::new(t.path())
            .args(Vec::<String>::new())
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("process.args"), "{e}");
        let e = SpecBuilder::new(t.path())
            .env("A=B", "x")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("process.env"), "{e}");
        let e = SpecBuilder::new(t.path())
            .limits(Limits {
                pids: Some(-3),
                ..Default::default()
            })
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("pids.limit"), "{e}");
    }
}
