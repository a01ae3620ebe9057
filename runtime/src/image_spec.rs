//! The OCI runtime spec of a container made from an image: the image config's Env,
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

use std::os::unix::fs::{FileTypeExt, MetadataExt};
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

/// Docker's default seccomp profile in OCI form (`linux.seccomp`), for amd64 and docker's
/// default capabilities: moby v28.5.2's `profiles/seccomp/default.json` converted as dockerd's
/// `setupSeccomp` does (kernel 6.1). The same file as the seccomp crate's test fixture
/// `seccomp/tests/fixtures/engines/docker-28.json` (see its README for the conversion).
pub const DOCKER_SECCOMP: &str = include_str!("../data/docker-28-seccomp.json");

/// Docker's masked paths (moby `oci/defaults.go`, v28): a file under /dev/null, a directory
/// under an empty read-only tmpfs.
pub const IMAGE_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths (moby `oci/defaults.go`).
pub const IMAGE_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Which seccomp filter an image container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seccomp {
    /// Docker's default profile ([`DOCKER_SECCOMP`]).
    #[default]
    Default,
    /// None (`--security-opt seccomp=unconfined`).
    Unconfined,
    /// This file: a `linux.seccomp` object in OCI form (`--security-opt seccomp=PATH`).
    Profile(PathBuf),
}

/// A host device given to the container (`--device HOST[:CONTAINER][:PERMS]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMap {
    /// The device node on the host.
    pub host: PathBuf,
    /// Its path in the container (default: the host's).
    pub container: String,
    /// Some of `r`, `w`, `m` (default `rwm`).
    pub perms: String,
}

/// The security settings of an image container: docker's defaults unless changed, and each
/// change named as docker names it. Every face fills this through [`Security::option`]
/// and friends, so they parse the same words the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// `--privileged`: every capability, no seccomp, no masked or read-only paths, every
    /// host device, /sys and the cgroup mount writable.
    pub privileged: bool,
    /// `--cap-add` (names with or without `CAP_`, any case; `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop` (likewise).
    pub cap_drop: Vec<String>,
    /// `--security-opt seccomp=...`.
    pub seccomp: Seccomp,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--device`.
    pub devices: Vec<DeviceMap>,
}

impl Security {
    /// One `--security-opt` word: `seccomp=unconfined`, `seccomp=PATH` (`seccomp:` too, as
    /// older docker), `no-new-privileges[=true|false]`. Anything else (apparmor, label,
    /// systempaths...) is refused by name.
    pub fn option(&mut self, opt: &str) -> Result<()> {
        let (k, v) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (k, v) {
            ("seccomp", Some("unconfined")) => self.seccomp = Seccomp::Unconfined,
            ("seccomp", Some("default" | "builtin")) => self.seccomp = Seccomp::Default,
            ("seccomp", Some(p)) if !p.is_empty() => {
                self.seccomp = Seccomp::Profile(PathBuf::from(p))
            }
            ("no-new-privileges", None | Some("true")) => self.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => self.no_new_privileges = false,
            _ => {
                return Err(invalid(format!(
                    "--security-opt {opt:?}: want seccomp=unconfined, seccomp=PROFILE.json or \
                     no-new-privileges[=true|false]"
                )))
            }
        }
        Ok(())
    }

    /// One `--device HOST[:CONTAINER][:PERMS]`; the host path must be a device node.
    pub fn device(&mut self, spec: &str) -> Result<()> {
        let parts: Vec<&str> = spec.split(':').collect();
        let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
        let (host, container, perms) = match parts.as_slice() {
            [h] => (*h, *h, "rwm"),
            [h, p] if perms_ok(p) => (*h, *h, *p),
            [h, c] => (*h, *c, "rwm"),
            [h, c, p] => (*h, *c, *p),
            _ => {
                return Err(invalid(format!(
                    "--device {spec:?}: want HOST[:CONTAINER][:PERMS]"
                )))
            }
        };
        if !perms_ok(perms) {
            return Err(invalid(format!(
                "--device {spec:?}: permissions {perms:?} are not a combination of r, w and m"
            )));
        }
        if !host.starts_with('/') || !container.starts_with('/') {
            return Err(invalid(format!(
                "--device {spec:?}: both paths must be absolute"
            )));
        }
        let m = std::fs::metadata(host)
            .map_err(|e| invalid(format!("--device {spec:?}: {host}: {e}")))?;
        let ft = m.file_type();
        if !ft.is_char_device() && !ft.is_block_device() {
            return Err(invalid(format!(
                "--device {spec:?}: {host} is not a device node"
            )));
        }
        self.devices.push(DeviceMap {
            host: PathBuf::from(host),
            container: container.to_string(),
            perms: perms.to_string(),
        });
        Ok(())
    }

    /// A `--cap-add` name (checked).
    pub fn cap_add(&mut self, name: &str) -> Result<()> {
        self.cap_add.push(cap_name("--cap-add", name)?);
        Ok(())
    }

    /// A `--cap-drop` name (checked).
    pub fn cap_drop(&mut self, name: &str) -> Result<()> {
        self.cap_drop.push(cap_name("--cap-drop", name)?);
        Ok(())
    }

    /// The capability set, as docker's `TweakCapabilities`: privileged gets all; `--cap-add
    /// ALL` all but the dropped; `--cap-drop ALL` only the added; else the defaults minus the
    /// dropped plus the added.
    pub fn capabilities(&self) -> Result<Vec<String>> {
        let norm = |v: &[String], flag: &str| -> Result<Vec<String>> {
            v.iter().map(|n| cap_name(flag, n)).collect()
        };
        let (add, drop) = (
            norm(&self.cap_add, "--cap-add")?,
            norm(&self.cap_drop, "--cap-drop")?,
        );
        let all = all_caps();
        let mut caps: Vec<String> = if self.privileged || add.iter().any(|c| c == "ALL") {
            all.into_iter()
                .filter(|c| self.privileged || !drop.contains(c))
                .collect()
        } else if drop.iter().any(|c| c == "ALL") {
            add.clone()
        } else {
            let mut c: Vec<String> = IMAGE_CAPS
                .iter()
                .map(|c| c.to_string())
                .filter(|c| !drop.contains(c))
                .collect();
            c.extend(add.iter().cloned());
            c
        };
        let mut seen = std::collections::HashSet::new();
        caps.retain(|c| seen.insert(c.clone()));
        Ok(caps)
    }
}

/// `CAP_X` from `x`, `X` or `CAP_X`; `ALL` stays `ALL`.
fn cap_name(flag: &str, name: &str) -> Result<String> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    match crate::names::cap_number(&up) {
        Some(n) => Ok(crate::names::CAPS[n as usize].to_string()),
        None => Err(invalid(format!("{flag} {name:?}: unknown capability"))),
    }
}

/// Every capability that can be granted: those the host's kernel knows
/// (`/proc/sys/kernel/cap_last_cap`) that this process holds in its permitted set (a runtime
/// run without some, as in a container, cannot give them; docker's "all" is the kernel's).
fn all_caps() -> Vec<String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(40);
    let own = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("CapPrm:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    crate::names::CAPS
        .iter()
        .enumerate()
        .take(last + 1)
        .filter(|(i, _)| own & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

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
    /// Docker's security defaults, and what the caller opted out of.
    pub security: Security,
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
    s["process"]["terminal"] = json!(rc.tty);
    s["process"]["args"] = json!(args);
    s["process"]["env"] = json!(env);
    s["process"]["cwd"] = json!(cwd);
    s["process"]["user"] = json!({"uid": uid, "gid": gid});
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
    apply_security(&mut s, &rc.security)?;
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

/// Docker's defaults in `s`, less what `sec` opts out of.
fn apply_security(s: &mut Value, sec: &Security) -> Result<()> {
    let caps = json!(sec.capabilities()?);
    s["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps
    });
    s["process"]["noNewPrivileges"] = json!(sec.no_new_privileges);
    let seccomp = match (&sec.seccomp, sec.privileged) {
        (Seccomp::Unconfined, _) | (Seccomp::Default, true) => None,
        (Seccomp::Default, false) => Some(
            serde_json::from_str::<Value>(DOCKER_SECCOMP)
                .map_err(|e| invalid(format!("the built-in seccomp profile: {e}")))?,
        ),
        (Seccomp::Profile(p), _) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| invalid(format!("--security-opt seccomp={}: {e}", p.display())))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                invalid(format!(
                    "--security-opt seccomp={}: not JSON: {e}",
                    p.display()
                ))
            })?;
            if !v.is_object() || v.get("defaultAction").is_none() {
                return Err(invalid(format!(
                    "--security-opt seccomp={}: want a linux.seccomp object in OCI form \
                     (with defaultAction)",
                    p.display()
                )));
            }
            Some(v)
        }
    };
    if let Some(v) = seccomp {
        s["linux"]["seccomp"] = v;
    }
    // The device cgroup: deny-all (the runtime starts from it whatever the spec says, and
    // adds the standard devices), then each --device, or every device when privileged.
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    let mut devices = Vec::new();
    if sec.privileged {
        rules.push(json!({"allow": true, "access": "rwm"}));
        host_devices(Path::new("/dev"), &mut devices, 0);
        s["linux"]["maskedPaths"] = json!([]);
        s["linux"]["readonlyPaths"] = json!([]);
        if let Some(ms) = s["mounts"].as_array_mut() {
            for m in ms.iter_mut() {
                if m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup" {
                    if let Some(o) = m["options"].as_array_mut() {
                        o.retain(|x| x != "ro");
                        o.push(json!("rw"));
                    }
                }
            }
        }
    } else {
        let mut masked: Vec<String> = IMAGE_MASKED_PATHS.iter().map(|p| p.to_string()).collect();
        // Docker 28 masks each CPU's thermal_throttle directory too.
        if let Ok(rd) = std::fs::read_dir("/sys/devices/system/cpu") {
            let mut cpus: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.strip_prefix("cpu")
                        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                })
                .filter(|n| {
                    Path::new("/sys/devices/system/cpu")
                        .join(n)
                        .join("thermal_throttle")
                        .is_dir()
                })
                .collect();
            cpus.sort();
            masked.extend(
                cpus.iter()
                    .map(|n| format!("/sys/devices/system/cpu/{n}/thermal_throttle")),
            );
        }
        s["linux"]["maskedPaths"] = json!(masked);
        s["linux"]["readonlyPaths"] = json!(IMAGE_READONLY_PATHS);
    }
    for d in &sec.devices {
        let m = std::fs::metadata(&d.host)
            .map_err(|e| invalid(format!("--device {}: {e}", d.host.display())))?;
        let Some(dev) = device_entry(&d.container, &m) else {
            return Err(invalid(format!(
                "--device {}: not a device node",
                d.host.display()
            )));
        };
        rules.push(
            json!({"allow": true, "type": dev["type"], "major": dev["major"],
                          "minor": dev["minor"], "access": d.perms}),
        );
        devices.retain(|x: &Value| x["path"] != dev["path"]);
        devices.push(dev);
    }
    s["linux"]["resources"]["devices"] = json!(rules);
    if !devices.is_empty() {
        s["linux"]["devices"] = json!(devices);
    }
    Ok(())
}

/// The `linux.devices` entry of a host device node `m` at `path` in the container.
fn device_entry(path: &str, m: &std::fs::Metadata) -> Option<Value> {
    let ft = m.file_type();
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return None;
    };
    let rdev = m.rdev();
    Some(json!({
        "path": path, "type": kind,
        "major": libc::major(rdev), "minor": libc::minor(rdev),
        "fileMode": m.mode() & 0o7777, "uid": m.uid(), "gid": m.gid()
    }))
}

/// The host's device nodes under `dir` (as runc's `HostDevices`, which docker's
/// `--privileged` uses), but not those every container gets anyway or the pseudo-terminal
/// and special filesystems.
fn host_devices(dir: &Path, out: &mut Vec<Value>, depth: usize) {
    const SKIP_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    const OWN: &[&str] = &[
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/console",
        "/dev/ptmx",
    ];
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let name = e.file_name().to_string_lossy().into_owned();
        if m.is_dir() {
            if depth < 4 && !SKIP_DIRS.contains(&name.as_str()) {
                host_devices(&path, out, depth + 1);
            }
            continue;
        }
        let Some(p) = path.to_str() else { continue };
        if OWN.contains(&p) {
            continue;
        }
        if let Some(d) = device_entry(p, &m) {
            out.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_as_docker_tweaks_them() {
        let caps = |add: &[&str], drop: &[&str]| {
            let mut s = Security::default();
            for a in add {
                s.cap_add(a).unwrap();
            }
            for d in drop {
                s.cap_drop(d).unwrap();
            }
            s.capabilities().unwrap()
        };
        assert_eq!(caps(&[], &[]), IMAGE_CAPS);
        assert_eq!(
            caps(&["net_bind_service"], &["ALL"]),
            ["CAP_NET_BIND_SERVICE"]
        );
        let c = caps(&["SYS_ADMIN"], &["cap_chown"]);
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(c.len(), IMAGE_CAPS.len());
        let all = caps(&["all"], &["MKNOD"]);
        assert!(!all.contains(&"CAP_MKNOD".to_string()));
        assert!(Security::default().cap_add("NOPE").is_err());
    }

    #[test]
    fn security_options_and_devices_parse_as_dockers() {
        let mut s = Security::default();
        s.option("seccomp=unconfined").unwrap();
        assert_eq!(s.seccomp, Seccomp::Unconfined);
        s.option("seccomp:/p.json").unwrap();
        assert_eq!(s.seccomp, Seccomp::Profile("/p.json".into()));
        s.option("no-new-privileges").unwrap();
        assert!(s.no_new_privileges);
        s.option("no-new-privileges=false").unwrap();
        assert!(!s.no_new_privileges);
        for bad in [
            "apparmor=x",
            "seccomp=",
            "no-new-privileges=maybe",
            "label=disable",
        ] {
            let e = s.option(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        s.device("/dev/null").unwrap();
        s.device("/dev/null:r").unwrap();
        s.device("/dev/null:/dev/n2:rw").unwrap();
        let d: Vec<_> = s
            .devices
            .iter()
            .map(|d| (d.container.as_str(), d.perms.as_str()))
            .collect();
        assert_eq!(
            d,
            [("/dev/null", "rwm"), ("/dev/null", "r"), ("/dev/n2", "rw")]
        );
        assert!(s.device("/etc/passwd").is_err());
        assert!(s.device("/dev/null:/dev/x:rwx").is_err());
        assert!(s.device("dev/null").is_err());
    }

    #[test]
    fn the_embedded_profile_is_oci_seccomp() {
        let v: Value = serde_json::from_str(DOCKER_SECCOMP).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        let mut spec = crate::spec::default_spec();
        spec["linux"]["seccomp"] = v;
        let text = serde_json::to_string(&spec).unwrap();
        crate::config::parse(Path::new("config.json"), &text).unwrap();
    }
}
