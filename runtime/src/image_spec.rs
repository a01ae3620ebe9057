//! The OCI runtime spec of a container made from an image: the image config's Env,
//! Entrypoint, Cmd, WorkingDir and User, with what the caller overrides (`corral run
//! --image`, a build's RUN step).

use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use serde_json::{json, Value};

use crate::image::{find_in_layers, ImageError, Result};

/// Docker's default capability set, which image users expect (package managers chown,
/// drop to other users, make device-less roots...).
pub const IMAGE_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// What the caller sets on top of the image's config.
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
    /// CPUs (a CFS quota of this many periods).
    pub cpus: Option<f64>,
    /// Process limit.
    pub pids_limit: Option<i64>,
    /// Bind mounts: host source, container destination, read-only.
    pub volumes: Vec<(PathBuf, String, bool)>,
    /// Share the host's network namespace (as `--network host`) and see its resolv.conf
    /// and hosts.
    pub host_network: bool,
}

fn invalid(s: impl Into<String>) -> ImageError {
    ImageError::Invalid(s.into())
}

/// Parse a size: bytes, or with a suffix b, k, m, g (powers of 1024), as docker's
/// `--memory`.
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.chars().last() {
        Some('b') => (&t[..t.len() - 1], 1),
        Some('k') => (&t[..t.len() - 1], 1 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (&t[..], 1),
    };
    let n: f64 = num.parse().map_err(|_| {
        invalid(format!(
            "size {s:?}: want a number with an optional b, k, m or g"
        ))
    })?;
    if n.is_nan() || n <= 0.0 {
        return Err(invalid(format!("size {s:?}: must be positive")));
    }
    Ok((n * mult as f64) as i64)
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

fn lookup(file: Option<PathBuf>, name: &str, field: usize) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file?).ok()?;
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > field.max(3) && f[0] == name {
            let id = f[2].parse().ok()?;
            let gid = f[3].parse().unwrap_or(id);
            return Some((id, gid));
        }
    }
    None
}

/// Resolve `user[:group]` against the image's /etc/passwd and /etc/group.
pub fn resolve_user(layers: &[PathBuf], spec: &str) -> Result<(u32, u32)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = || find_in_layers(layers, "etc/passwd");
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (n, lookup_uid_gid(passwd(), n).unwrap_or(n)),
        Err(_) => lookup(passwd(), u, 3).ok_or_else(|| {
            invalid(format!(
                "user {u:?}: no such user in the image's /etc/passwd"
            ))
        })?,
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                lookup(find_in_layers(layers, "etc/group"), g, 2)
                    .ok_or_else(|| {
                        invalid(format!(
                            "group {g:?}: no such group in the image's /etc/group"
                        ))
                    })?
                    .0
            }
        };
    }
    Ok((uid, gid))
}

fn lookup_uid_gid(file: Option<PathBuf>, uid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(file?).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[3].parse().ok())?
    })
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

/// The spec of container `id` from `config` (image layers `layers`, bottom first) and `rc`.
pub fn spec_for_image(
    id: &str,
    config: &ImageConfiguration,
    layers: &[PathBuf],
    rc: &RunConfig,
) -> Result<Value> {
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
    let mut s = crate::spec::default_spec();
    let caps = json!(IMAGE_CAPS);
    s["process"]["terminal"] = json!(rc.tty);
    s["process"]["args"] = json!(args);
    s["process"]["env"] = json!(env);
    s["process"]["cwd"] = json!(cwd);
    s["process"]["user"] = json!({"uid": uid, "gid": gid});
    s["process"]["noNewPrivileges"] = json!(false);
    s["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps
    });
    s["root"] = json!({"path": "rootfs", "readonly": false});
    let host: String = rc
        .hostname
        .clone()
        .unwrap_or_else(|| id.chars().take(12).collect());
    s["hostname"] = json!(host);
    let mut res = json!({});
    if let Some(m) = rc.memory {
        res["memory"] = json!({"limit": m});
    }
    if let Some(c) = rc.cpus {
        if c.is_nan() || c <= 0.0 {
            return Err(invalid(format!("--cpus {c}: must be positive")));
        }
        res["cpu"] = json!({"quota": (c * 100_000.0) as i64, "period": 100_000});
    }
    if let Some(p) = rc.pids_limit {
        res["pids"] = json!({"limit": p});
    }
    s["linux"]["resources"] = res;
    let mounts = s["mounts"]
        .as_array_mut()
        .ok_or_else(|| invalid("default spec has no mounts"))?;
    for (src, dst, ro) in &rc.volumes {
        let mut opts = vec!["rbind", "rprivate"];
        if *ro {
            opts.push("ro");
        }
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": opts}));
    }
    if rc.host_network {
        for f in ["/etc/resolv.conf", "/etc/hosts"] {
            if Path::new(f).is_file() {
                mounts.push(json!({"destination": f, "type": "bind", "source": f,
                                   "options": ["bind", "ro", "rprivate"]}));
            }
        }
    }
    if rc.host_network {
        if let Some(ns) = s["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
        }
    }
    Ok(s)
}
