//! [`Description::to_spec`]: the description as a typed `oci_spec::runtime::Spec`.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxIdMapping,
    LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxResources, MountBuilder,
    Spec, UserBuilder,
};

use super::security::{device_entry, docker_masked_paths, host_devices, seccomp_of};
use super::{
    built, rootless, user, Baseline, Description, IdRange, Namespace, NetworkMode, NsMode, Root,
    UserSpec, IMAGE_READONLY_PATHS,
};
use crate::spec::{drop_option, runc_rootless_spec, runc_spec, sys_bind, RUNC_CAPS};
use crate::{Error, Result};

fn cfg(field: &str, reason: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Description {
    /// The spec of this description, made with oci-spec's builders over the baseline's
    /// spec. A name as [`Description::user`] is resolved in a [`Root::Dir`]'s `/etc/passwd`
    /// and `/etc/group`. A [`Root::Image`] is refused: the image crate merges the image into
    /// the description and gives a directory root.
    pub fn to_spec(&self) -> Result<Spec> {
        let root_dir = match &self.root {
            Root::Dir(d) => d.clone(),
            Root::Image(r) => {
                return Err(cfg(
                    "root",
                    format!("image {r:?}: an image's spec is made by the image crate"),
                ))
            }
        };
        let (euid, egid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let runc = self.baseline == Baseline::Runc;
        let mut s = if runc && rootless() {
            runc_rootless_spec(euid, egid)?
        } else {
            runc_spec()?
        };
        let sec = &self.security;

        // root
        let readonly = self.readonly_root.unwrap_or(runc);
        s.set_root(Some(
            oci_spec::runtime::RootBuilder::default()
                .path(root_dir.clone())
                .readonly(readonly)
                .build()
                .map_err(built("root"))?,
        ));

        self.set_process(&mut s, &root_dir, runc)?;
        let (nss, list) = self.set_namespaces(&mut s)?;
        self.set_mounts(&mut s, &nss, runc)?;
        let new_user = nss.get(&Namespace::User) == Some(&NsMode::New);
        let custom_maps = !self.uid_map.is_empty() || !self.gid_map.is_empty();

        // linux
        let id_maps = |v: &[IdRange], host: u32| -> Result<Vec<LinuxIdMapping>> {
            let one = [IdRange {
                container: 0,
                host,
                size: 1,
            }];
            let v = if custom_maps { v } else { &one[..] };
            v.iter()
                .map(|r| {
                    LinuxIdMappingBuilder::default()
                        .container_id(r.container)
                        .host_id(r.host)
                        .size(r.size)
                        .build()
                        .map_err(built("linux.uidMappings"))
                })
                .collect()
        };
        let (uid_maps, gid_maps) = if new_user {
            (
                Some(id_maps(&self.uid_map, euid)?),
                Some(id_maps(&self.gid_map, egid)?),
            )
        } else {
            (None, None)
        };
        let seccomp = seccomp_of(sec, self.baseline)?;
        let limits = if !self.limits.has_resources() {
            None
        } else {
            Some(self.limits.to_linux_resources()?)
        };
        let devices_too = !runc || sec.privileged || !sec.devices.is_empty();
        let (rules, devices) = if devices_too {
            let (r, d) = device_rules(sec)?;
            (Some(r), d)
        } else {
            (None, Vec::new())
        };
        let Some(l) = s.linux_mut() else {
            return Err(cfg("linux", "missing from the baseline"));
        };
        l.set_namespaces(Some(list));
        l.set_uid_mappings(uid_maps);
        l.set_gid_mappings(gid_maps);
        if sec.privileged {
            l.set_masked_paths(Some(Vec::new()));
            l.set_readonly_paths(Some(Vec::new()));
        } else if !runc {
            l.set_masked_paths(Some(docker_masked_paths()));
            l.set_readonly_paths(Some(
                IMAGE_READONLY_PATHS.iter().map(|p| p.to_string()).collect(),
            ));
        }
        if let Some(sc) = seccomp {
            l.set_seccomp(Some(sc));
        }
        if !devices.is_empty() {
            l.set_devices(Some(devices));
        }
        if limits.is_some() || rules.is_some() {
            let mut res: LinuxResources = l.resources().clone().unwrap_or_default();
            if let Some(lim) = limits {
                merge(&mut res, lim);
            }
            if let Some(r) = rules {
                res.set_devices(Some(r));
            }
            l.set_resources(Some(res));
        }

        s.set_annotations(if self.annotations.is_empty() {
            None
        } else {
            Some(self.annotations.clone().into_iter().collect())
        });
        Ok(s)
    }

    /// `process`: args, env, cwd, user, terminal, capabilities, `noNewPrivileges`, LSM labels.
    fn set_process(&self, s: &mut Spec, root_dir: &Path, runc: bool) -> Result<()> {
        let sec = &self.security;
        let mut args: Vec<String> = self.entrypoint.clone().unwrap_or_default();
        args.extend(self.args.iter().cloned());
        if args.is_empty() {
            if !runc {
                return Err(cfg("process.args", "empty: give the program to run"));
            }
            args.push("/bin/sh".into());
        }
        let mut env = vec![crate::spec::DEFAULT_PATH.to_string()];
        if runc && self.terminal {
            env.push("TERM=xterm".into());
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(cfg("process.env", format!("{k:?} is not a variable name")));
            }
            let kv = format!("{k}={v}");
            match env
                .iter_mut()
                .find(|e| e.split('=').next() == Some(k.as_str()))
            {
                Some(e) => *e = kv,
                None => env.push(kv),
            }
        }
        let cwd = self.cwd.clone().unwrap_or_else(|| "/".into());
        if !cwd.starts_with('/') {
            return Err(cfg("process.cwd", format!("{cwd:?} is not absolute")));
        }
        let (uid, gid) = match &self.user {
            None => (0, 0),
            Some(UserSpec::Ids { uid, gid }) => (*uid, *gid),
            Some(UserSpec::Name(n)) => user::resolve_in_dir(root_dir, n)?,
        };
        let mut u = UserBuilder::default().uid(uid).gid(gid);
        if !self.additional_gids.is_empty() {
            u = u.additional_gids(self.additional_gids.clone());
        }
        let default_caps =
            runc && !sec.privileged && sec.cap_add.is_empty() && sec.cap_drop.is_empty();
        let caps = if default_caps {
            crate::spec::capabilities(RUNC_CAPS, true)?
        } else if runc {
            crate::spec::capabilities(&sec.capabilities_over(RUNC_CAPS)?, true)?
        } else {
            crate::spec::capabilities(&sec.capabilities()?, false)?
        };
        if let Some(p) = s.process_mut() {
            p.set_terminal(Some(self.terminal));
            p.set_args(Some(args));
            p.set_env(Some(env));
            p.set_cwd(cwd.into());
            p.set_user(u.build().map_err(built("process.user"))?);
            p.set_capabilities(Some(caps));
            p.set_no_new_privileges(Some(runc || sec.no_new_privileges));
            p.set_apparmor_profile(sec.apparmor.clone());
            p.set_selinux_label(sec.label.clone());
            if let Some(o) = self.limits.oom_score_adj {
                p.set_oom_score_adj(Some(o));
            }
            if !self.limits.ulimits.is_empty() {
                let mut rl = p.rlimits().clone().unwrap_or_default();
                for u in &self.limits.ulimits {
                    let t = u.oci_type();
                    let typ: oci_spec::runtime::PosixRlimitType = t
                        .parse()
                        .map_err(|_| cfg("process.rlimits", format!("{t}: unknown")))?;
                    rl.retain(|r| r.typ() != typ);
                    rl.push(
                        oci_spec::runtime::PosixRlimitBuilder::default()
                            .typ(typ)
                            .soft(u.soft)
                            .hard(u.hard)
                            .build()
                            .map_err(built("process.rlimits"))?,
                    );
                }
                p.set_rlimits(Some(rl));
            }
        }
        Ok(())
    }

    /// `linux.namespaces` (the baseline's, the overrides, the network mode) and the
    /// hostname that goes with them.
    fn set_namespaces(
        &self,
        s: &mut Spec,
    ) -> Result<(BTreeMap<Namespace, NsMode>, Vec<LinuxNamespace>)> {
        let mut nss: BTreeMap<Namespace, NsMode> = s
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
            .iter()
            .map(|n| (Namespace::of(n.typ()), NsMode::New))
            .collect();
        for (k, m) in &self.namespaces {
            if *k != Namespace::Network {
                nss.insert(*k, m.clone());
            }
        }
        nss.insert(
            Namespace::Network,
            match &self.network.mode {
                NetworkMode::Private | NetworkMode::None => NsMode::New,
                NetworkMode::Host => NsMode::Host,
                NetworkMode::Join(p) => NsMode::Join(p.clone()),
            },
        );
        nss.retain(|_, m| *m != NsMode::Host);
        let mut list: Vec<LinuxNamespace> = Vec::new();
        for (k, m) in &nss {
            let mut b = LinuxNamespaceBuilder::default().typ(k.oci_type());
            if let NsMode::Join(p) = m {
                b = b.path(p.clone());
            }
            list.push(b.build().map_err(built("linux.namespaces"))?);
        }
        let uts_new = nss.get(&Namespace::Uts) == Some(&NsMode::New);
        match &self.hostname {
            Some(h) => {
                s.set_hostname(Some(h.clone()));
            }
            // The default hostname is only for a UTS namespace of its own: a joined one keeps
            // its hostname (setting it would rename every container in that namespace).
            None if !uts_new => {
                s.set_hostname(None);
            }
            None => {}
        }
        Ok((nss, list))
    }

    /// `mounts`: the baseline's, fitted to the namespaces, then the description's.
    fn set_mounts(
        &self,
        s: &mut Spec,
        nss: &BTreeMap<Namespace, NsMode>,
        runc: bool,
    ) -> Result<()> {
        let sec = &self.security;
        let mut mounts = s.mounts().clone().unwrap_or_default();
        let new_user = nss.get(&Namespace::User) == Some(&NsMode::New);
        let custom_maps = !self.uid_map.is_empty() || !self.gid_map.is_empty();
        if new_user && !custom_maps {
            drop_option(&mut mounts, "/dev/pts", "gid=5");
        }
        if runc && !nss.contains_key(&Namespace::Cgroup) {
            // Without a cgroup namespace, the host's cgroup tree is not the container's.
            mounts.retain(|m| m.destination().as_os_str() != "/sys/fs/cgroup");
        }
        if runc && !nss.contains_key(&Namespace::Network) {
            for m in mounts.iter_mut() {
                if m.destination().as_os_str() == "/sys" {
                    *m = sys_bind()?;
                }
            }
        }
        if sec.privileged {
            for m in mounts.iter_mut() {
                let d = m.destination().as_os_str();
                if d == "/sys" || d == "/sys/fs/cgroup" {
                    if let Some(o) = m.options_mut() {
                        o.retain(|x| x != "ro");
                        o.push("rw".into());
                    }
                }
            }
        }
        if let Some(size) = self.limits.shm_size {
            for m in mounts.iter_mut() {
                if m.destination().as_os_str() == "/dev/shm" {
                    if let Some(o) = m.options_mut() {
                        o.retain(|x| !x.starts_with("size="));
                        o.push(format!("size={size}"));
                    }
                }
            }
        }
        for m in &self.mounts {
            if m.kind == "volume" {
                return Err(cfg(
                    "mounts",
                    format!(
                        "volume {:?} at {}: named volumes are for image containers (their store keeps them)",
                        m.source, m.destination
                    ),
                ));
            }
            let mut b = MountBuilder::default()
                .destination(m.destination.clone())
                .typ(m.kind.clone())
                .source(m.source.clone());
            if !m.options.is_empty() {
                b = b.options(m.options.clone());
            }
            mounts.push(b.build().map_err(built("mounts"))?);
        }
        if !runc && self.network.mode == NetworkMode::Host {
            for f in ["/etc/resolv.conf", "/etc/hosts"] {
                if Path::new(f).is_file() {
                    mounts.push(crate::spec::mount(
                        f,
                        "bind",
                        f,
                        &["bind", "ro", "rprivate"],
                    )?);
                }
            }
        }
        s.set_mounts(Some(mounts));
        Ok(())
    }
}

/// Sets in `res` every limit `lim` has.
fn merge(res: &mut LinuxResources, lim: LinuxResources) {
    if lim.memory().is_some() {
        res.set_memory(*lim.memory());
    }
    if lim.cpu().is_some() {
        res.set_cpu(lim.cpu().clone());
    }
    if lim.pids().is_some() {
        res.set_pids(*lim.pids());
    }
    if lim.block_io().is_some() {
        res.set_block_io(lim.block_io().clone());
    }
}

/// The device cgroup and `linux.devices` of `sec`: deny-all (the runtime starts from it
/// whatever the spec says, and adds the standard devices), then each `--device`, or every
/// device when privileged.
fn device_rules(sec: &super::Security) -> Result<(Vec<LinuxDeviceCgroup>, Vec<LinuxDevice>)> {
    let rule = |allow: bool| {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access("rwm")
            .build()
            .map_err(built("linux.resources.devices"))
    };
    let mut rules = vec![rule(false)?];
    let mut devices: Vec<LinuxDevice> = Vec::new();
    if sec.privileged {
        rules.push(rule(true)?);
        host_devices(Path::new("/dev"), &mut devices, 0);
    }
    for d in &sec.devices {
        let m = std::fs::metadata(&d.host).map_err(|e| {
            cfg(
                "linux.devices",
                format!("--device {}: {e}", d.host.display()),
            )
        })?;
        let Some(dev) = device_entry(&d.container, &m) else {
            return Err(cfg(
                "linux.devices",
                format!("--device {}: not a device node", d.host.display()),
            ));
        };
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(dev.typ())
                .major(dev.major())
                .minor(dev.minor())
                .access(d.perms.clone())
                .build()
                .map_err(built("linux.resources.devices"))?,
        );
        devices.retain(|x| x.path() != dev.path());
        devices.push(dev);
    }
    Ok((rules, devices))
}
