//! The OCI runtime spec of a container made from an image (a [`Description`] with the
//! Docker baseline, merged with the image's config; kept as [`RunConfig`] and
//! [`spec_for_image`] for the faces until they fill a description themselves): the image config's Env,
//! Entrypoint, Cmd, WorkingDir and User, with what the caller overrides (`corral run
//! --image`, a build's RUN step, Python's `Container(image=...)`, C's
//! `corral_spec_from_image`).
//!
//! An image is code its user did not write, so its container gets what `docker run` gives
//! by default: docker's default seccomp profile ([`DOCKER_SECCOMP`]), docker's default
//! capabilities ([`IMAGE_CAPS`]), deny-all device rules plus the standard devices, docker's
//! masked and read-only paths, `noNewPrivileges` false (as docker: setuid programs of the
//! image work; the seccomp profile still refuses new user namespaces and mounts). Opting
//! out is explicit and named as in docker, in [`Security`]: `--privileged`,
//! `--cap-add`/`--cap-drop`, `--security-opt seccomp=unconfined|PROFILE.json`,
//! `--security-opt no-new-privileges`, `--device`.

use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;

use crate::describe::{Baseline, Description, Limits, Mount, NetworkMode, Root, UserSpec};
use crate::image::{find_in_layers, ImageError, Result};

pub use crate::describe::security::{
    DeviceMap, Seccomp, Security, DOCKER_SECCOMP, IMAGE_CAPS, IMAGE_MASKED_PATHS,
    IMAGE_READONLY_PATHS,
};

/// What the caller sets on top of the image's config.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    /// Replaces the image's Cmd (the Entrypoint stays), when not empty.
    pub command: Vec<String>,
    /// Replaces the image's Entrypoint (and drops its Cmd unless `command` is given).
    pub entrypoint: Option<Vec<String>>,
    /// KEY=VALUE, over the image's Env.
    pub env: Vec<String>,
    /// The working directory (else the image's WorkingDir, else `/`).
    pub workdir: Option<String>,
    /// `user[:group]`, names or numbers (else the image's User, else root).
    pub user: Option<String>,
    /// The hostname (else the container id's first 12 characters).
    pub hostname: Option<String>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes (-1: unlimited).
    pub memory_swap: Option<i64>,
    /// Relative CPU weight (`cpu.shares`, 2 to 262144).
    pub cpu_shares: Option<u64>,
    /// CPUs (a CFS quota of this many periods).
    pub cpus: Option<f64>,
    /// Process limit.
    pub pids_limit: Option<i64>,
    /// Bind mounts: host source, container destination, read-only.
    pub volumes: Vec<(PathBuf, String, bool)>,
    /// Share the host's network namespace (as `--network host`) and see its resolv.conf
    /// and hosts.
    pub host_network: bool,
    /// Docker's security defaults, and what the caller opted out of.
    pub security: Security,
}

fn invalid(s: impl Into<String>) -> ImageError {
    ImageError::Invalid(s.into())
}

fn described(e: crate::Error) -> ImageError {
    ImageError::Invalid(e.to_string())
}

/// Parse a size, as docker's `--memory`: [`crate::parse_size`].
pub fn parse_size(s: &str) -> Result<i64> {
    crate::describe::parse_size("size", s).map_err(described)
}

/// Parse `-v SRC:DST[:ro|rw]`.
pub fn parse_volume(s: &str) -> Result<(PathBuf, String, bool)> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, ro) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, "ro"] => (*src, *dst, true),
        [src, dst, "rw"] => (*src, *dst, false),
        _ => return Err(invalid(format!("--volume {s:?}: want SRC:DST[:ro|rw]"))),
    };
    let src = Path::new(src);
    if !src.is_absolute() || !dst.starts_with('/') {
        return Err(invalid(format!(
            "--volume {s:?}: both paths must be absolute"
        )));
    }
    if !src.exists() {
        return Err(invalid(format!(
            "--volume {s:?}: {} does not exist",
            src.display()
        )));
    }
    Ok((src.to_path_buf(), dst.to_string(), ro))
}

/// Resolve `user[:group]` against the image's /etc/passwd and /etc/group.
pub fn resolve_user(layers: &[PathBuf], spec: &str) -> Result<(u32, u32)> {
    let find = |rel: &str| find_in_layers(layers, rel);
    crate::describe::user::resolve(&find, "the image's", spec).map_err(described)
}

/// Env of the image with `over` applied by key (a default PATH when there is none).
pub fn merge_env(image: &[String], over: &[String]) -> Result<Vec<String>> {
    let mut env: Vec<String> = image.to_vec();
    for kv in over {
        let Some((k, _)) = kv.split_once('=') else {
            return Err(invalid(format!("--env {kv:?}: want KEY=VALUE")));
        };
        env.retain(|e| e.split('=').next() != Some(k));
        env.push(kv.clone());
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    Ok(env)
}

/// The description of container `id` from `config` (image layers `layers`, bottom first)
/// and `rc`: the image's Entrypoint, Cmd, Env, WorkingDir and User under what `rc` sets,
/// the Docker baseline, a root at `rootfs` in the bundle.
pub fn describe_image(
    id: &str,
    config: &ImageConfiguration,
    layers: &[PathBuf],
    rc: &RunConfig,
) -> Result<Description> {
    let ic = config.config().clone().unwrap_or_default();
    let mut args: Vec<String> = match &rc.entrypoint {
        Some(e) => e.clone(),
        None => ic.entrypoint().clone().unwrap_or_default(),
    };
    if !rc.command.is_empty() {
        args.extend(rc.command.iter().cloned());
    } else if rc.entrypoint.is_none() {
        args.extend(ic.cmd().clone().unwrap_or_default());
    }
    if args.is_empty() {
        return Err(invalid(
            "no command: the image has no Entrypoint or Cmd; give one after --",
        ));
    }
    let env = merge_env(&ic.env().clone().unwrap_or_default(), &rc.env)?;
    let cwd = rc
        .workdir
        .clone()
        .or_else(|| ic.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(invalid(format!(
            "working directory {cwd:?} is not absolute"
        )));
    }
    let user = rc
        .user
        .clone()
        .or_else(|| ic.user().clone())
        .filter(|u| !u.is_empty());
    let (uid, gid) = match &user {
        Some(u) => resolve_user(layers, u)?,
        None => (0, 0),
    };
    // The image's root is the bundle's `rootfs` (the store mounts its layers there).
    let mut d = Description::new(Root::Dir(PathBuf::from("rootfs")));
    d.baseline = Baseline::Docker;
    d.network.mode = NetworkMode::Private;
    d.args = args;
    d.env = env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    d.cwd = Some(cwd);
    d.user = Some(UserSpec::Ids { uid, gid });
    d.terminal = rc.tty;
    d.hostname = Some(
        rc.hostname
            .clone()
            .unwrap_or_else(|| id.chars().take(12).collect()),
    );
    d.limits = Limits {
        memory: rc.memory,
        memory_swap: rc.memory_swap,
        pids: rc.pids_limit,
        cpus: rc.cpus,
        cpu_shares: rc.cpu_shares,
        ..Limits::default()
    };
    if let Some(c) = rc.cpus {
        if c.is_nan() || c <= 0.0 {
            return Err(invalid(format!("--cpus {c}: must be positive")));
        }
    }
    for (src, dst, ro) in &rc.volumes {
        let mut options = vec!["rbind".to_string(), "rprivate".into()];
        if *ro {
            options.push("ro".into());
        }
        d.mounts.push(Mount {
            destination: dst.clone(),
            kind: "bind".into(),
            source: src.to_string_lossy().into_owned(),
            options,
        });
    }
    if rc.host_network {
        d.network.mode = NetworkMode::Host;
    }
    d.security = rc.security.clone();
    Ok(d)
}

/// The spec of container `id` from `config` (image layers `layers`, bottom first) and `rc`:
/// [`describe_image`], then [`Description::to_spec`].
#[doc(hidden)]
pub fn spec_for_image(
    id: &str,
    config: &ImageConfiguration,
    layers: &[PathBuf],
    rc: &RunConfig,
) -> Result<Spec> {
    describe_image(id, config, layers, rc)?
        .to_spec()
        .map_err(described)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_path_keeps_swap_and_cpu_shares() {
        let rc = RunConfig {
            command: vec!["/bin/true".into()],
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            cpu_shares: Some(512),
            ..RunConfig::default()
        };
        let s = spec_for_image("c1", &ImageConfiguration::default(), &[], &rc).unwrap();
        let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
        // And the docker baseline's device rules are still there.
        assert!(!r.devices().as_ref().unwrap()[0].allow());
    }

    #[test]
    fn the_image_spec_is_dockers() {
        let rc = RunConfig {
            command: vec!["/bin/true".into()],
            ..RunConfig::default()
        };
        let s =
            spec_for_image("0123456789abcdef", &ImageConfiguration::default(), &[], &rc).unwrap();
        assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
        let p = s.process().as_ref().unwrap();
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), IMAGE_CAPS.len());
        assert!(caps.ambient().is_none() && caps.inheritable().is_none());
        assert_eq!(p.no_new_privileges(), Some(false));
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(false));
        let l = s.linux().as_ref().unwrap();
        assert!(l.seccomp().is_some());
        assert!(l
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/interrupts".to_string()));
        let bundle = crate::Bundle::from_spec(PathBuf::from("/b"), s).unwrap();
        assert_eq!(bundle.dir, Path::new("/b"));
    }

    #[test]
    fn sizes_are_parsed_once() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert!(parse_size("99999999999999999999g").is_err());
    }
}
