//! `corral_spec`: a container's description. Made field by field (a root directory or an
//! image of a store), every corral_spec_set_* call sets a field of a
//! [`runtime::Description`]; from a bundle or a config JSON, it is that bundle.

use std::ffi::{c_char, c_int};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runtime::describe::{Baseline, NetworkMode, Seccomp, Security};
use runtime::{Bundle, Description, Mount, NsMode, Root, UserSpec};

use crate::args::*;
use crate::error::*;
use crate::handles::*;
use crate::limits::*;

/// What a spec handle holds.
pub(crate) enum SpecKind {
    /// A description filled field by field; `store` is the image store of a
    /// [`Root::Image`] root.
    Described { d: Box<Description>, store: PathBuf },
    /// A bundle (or a config JSON), as read.
    Bundle(Box<Bundle>),
}

pub(crate) struct SpecObj(pub(crate) Mutex<SpecKind>);

pub(crate) fn new_spec(out: *mut *mut corral_spec, kind: SpecKind) -> Result<(), Fail> {
    let o = out_ptr("out", out)?;
    *o = SPECS.add(SpecObj(Mutex::new(kind)))? as *mut corral_spec;
    Ok(())
}

/// Makes a container description whose root filesystem is the directory `rootfs`, with
/// corral's defaults: the namespaces, mounts, masked paths and capabilities of `corral spec`,
/// a read-only root, no terminal, `/bin/sh` as the program. Set fields with the
/// corral_spec_set_* functions. On success `*out` is a new handle for corral_spec_free().
#[no_mangle]
pub extern "C" fn corral_spec_new(rootfs: *const c_char, out: *mut *mut corral_spec) -> c_int {
    call("corral_spec_new", || {
        let r = str_arg("rootfs", rootfs)?;
        let mut d = Description::new(Root::Dir(PathBuf::from(r)));
        d.args = vec!["/bin/sh".into()];
        new_spec(
            out,
            SpecKind::Described {
                d: Box::new(d),
                store: corral_image::default_store(),
            },
        )
    })
}

/// Reads the OCI bundle in the directory `bundle_dir` (its `config.json`, checked now: errors
/// name the file, line and column, or the field). `*out` is a new handle for
/// corral_spec_free(). A spec from a bundle cannot be changed with corral_spec_set_*.
#[no_mangle]
pub extern "C" fn corral_spec_from_bundle(
    bundle_dir: *const c_char,
    out: *mut *mut corral_spec,
) -> c_int {
    call("corral_spec_from_bundle", || {
        let d = str_arg("bundle_dir", bundle_dir)?;
        let b = Bundle::load(Path::new(d))?;
        new_spec(out, SpecKind::Bundle(Box::new(b)))
    })
}

/// Takes the config `json` (the text of a `config.json`), whose relative paths (`root.path`,
/// hook paths) are relative to `bundle_dir` (NULL: the current directory). Checked now, as a
/// bundle's. `*out` is a new handle for corral_spec_free().
#[no_mangle]
pub extern "C" fn corral_spec_from_json(
    json: *const c_char,
    bundle_dir: *const c_char,
    out: *mut *mut corral_spec,
) -> c_int {
    call("corral_spec_from_json", || {
        let text = str_arg("json", json)?;
        let dir = match opt_str_arg("bundle_dir", bundle_dir)? {
            Some(d) => PathBuf::from(d),
            None => std::env::current_dir().map_err(|e| {
                fail(
                    e.raw_os_error().unwrap_or(libc::EIO),
                    format!("current directory: {e}"),
                )
            })?,
        };
        let dir = std::fs::canonicalize(&dir).map_err(|e| Fail {
            code: e.raw_os_error().unwrap_or(libc::EIO),
            message: format!("bundle_dir {}: {e}", dir.display()),
            step: Some("argument".into()),
            path: Some(dir.display().to_string()),
        })?;
        let b = Bundle::from_text(dir, text)?;
        new_spec(out, SpecKind::Bundle(Box::new(b)))
    })
}

/// Frees a spec handle. NULL is ignored. Containers made from it are not affected.
/// A handle made by another process (inherited through fork()) is left as it is (last
/// error -EXDEV).
#[no_mangle]
pub extern "C" fn corral_spec_free(spec: *mut corral_spec) {
    call("corral_spec_free", || {
        SPECS.remove("spec", spec as usize)?;
        Ok(())
    });
}

/// Runs `f` on the description of a spec made field by field; a spec from a bundle or a
/// config JSON gets -ENOTSUP.
pub(crate) fn with_desc(
    func: &str,
    spec: *mut corral_spec,
    f: impl FnOnce(&mut Description) -> Result<(), Fail>,
) -> c_int {
    call(func, || {
        let s = SPECS.get("spec", spec as usize)?;
        let mut k = lock(&s.0);
        match &mut *k {
            SpecKind::Described { d, .. } => f(d),
            SpecKind::Bundle(_) => Err(Fail {
                code: libc::ENOTSUP,
                message: "a spec from a bundle or config JSON is changed by editing its config"
                    .into(),
                step: Some("argument".into()),
                path: Some("spec".into()),
            }),
        }
    })
}

/// The error of a call for a spec from an image on another spec.
fn only_for_image() -> Fail {
    Fail {
        code: libc::ENOTSUP,
        message: "only for a spec from an image (corral_spec_from_image)".into(),
        step: Some("argument".into()),
        path: Some("spec".into()),
    }
}

/// Makes a container description from the image `image` ("name[:tag]", or an image id) of
/// the image store `store` (NULL: $CORRAL_STORE, else /var/lib/corral; see `corral image`):
/// its entrypoint, command, environment, working directory and user, its layers as the root
/// (shared, read-only) under a writable layer of the container's own. corral_spec_set_args
/// sets the command (after the image's entrypoint); the other corral_spec_set_* calls
/// apply as to any spec. The container gets what `docker run` gives by default (docker's
/// seccomp profile and capabilities, only the standard devices, docker's masked and
/// read-only paths, a writable root); corral_spec_set_seccomp, _set_privileged, _add_cap,
/// _drop_cap, _add_security_opt and _add_device opt out, as docker's options of the same
/// names. The image is looked up at create. `*out` is a new handle for corral_spec_free().
#[no_mangle]
pub extern "C" fn corral_spec_from_image(
    store: *const c_char,
    image: *const c_char,
    out: *mut *mut corral_spec,
) -> c_int {
    call("corral_spec_from_image", || {
        let image = str_arg("image", image)?;
        let store = opt_str_arg("store", store)?
            .map(PathBuf::from)
            .unwrap_or_else(corral_image::default_store);
        corral_image::Reference::parse(image).map_err(|e| {
            let mut f = Fail::from(e);
            f.path = Some("image".into());
            f
        })?;
        let d = Description::new(Root::Image(image.to_string()));
        new_spec(
            out,
            SpecKind::Described {
                d: Box::new(d),
                store,
            },
        )
    })
}

/// Sets the store of a spec made field by field (NULL: $CORRAL_STORE, else
/// /var/lib/corral): the image store of a spec from an image, and for every spec the
/// networks it joins (corral_spec_add_network()) and their leases and caches.
#[no_mangle]
pub extern "C" fn corral_spec_set_store(spec: *mut corral_spec, store: *const c_char) -> c_int {
    call("corral_spec_set_store", || {
        let dir = opt_str_arg("store", store)?
            .map(PathBuf::from)
            .unwrap_or_else(corral_image::default_store);
        let s = SPECS.get("spec", spec as usize)?;
        let mut k = lock(&s.0);
        match &mut *k {
            SpecKind::Described { store, .. } => {
                *store = dir;
                Ok(())
            }
            SpecKind::Bundle(_) => Err(Fail {
                code: libc::ENOTSUP,
                message: "a spec from a bundle or config JSON has no store".into(),
                step: Some("argument".into()),
                path: Some("spec".into()),
            }),
        }
    })
}

/// Sets the program and its arguments: `argv[0]` .. `argv[argc-1]` (copied). `argv[0]` is
/// looked up in the container's PATH when it has no `/`. For a spec from an image: the
/// command, after the image's entrypoint.
#[no_mangle]
pub extern "C" fn corral_spec_set_args(
    spec: *mut corral_spec,
    argv: *const *const c_char,
    argc: usize,
) -> c_int {
    with_desc("corral_spec_set_args", spec, |d| {
        let a = str_array("argv", argv, argc)?;
        if a.is_empty() {
            return Err(invalid("argv", "empty: give the program to run"));
        }
        d.args = a;
        Ok(())
    })
}

/// Sets the environment variable `key` to `value` (replacing an earlier value; PATH has a
/// default).
#[no_mangle]
pub extern "C" fn corral_spec_set_env(
    spec: *mut corral_spec,
    key: *const c_char,
    value: *const c_char,
) -> c_int {
    with_desc("corral_spec_set_env", spec, |d| {
        let k = str_arg("key", key)?;
        let v = str_arg("value", value)?;
        if k.is_empty() || k.contains('=') {
            return Err(invalid("key", "not a variable name"));
        }
        d.env.retain(|(ek, _)| ek != k);
        d.env.push((k.to_string(), v.to_string()));
        Ok(())
    })
}

/// Sets the working directory (absolute, inside the container; default "/", or the
/// image's).
#[no_mangle]
pub extern "C" fn corral_spec_set_cwd(spec: *mut corral_spec, cwd: *const c_char) -> c_int {
    with_desc("corral_spec_set_cwd", spec, |d| {
        let c = str_arg("cwd", cwd)?;
        if !c.starts_with('/') {
            return Err(invalid("cwd", "must be an absolute path"));
        }
        d.cwd = Some(c.to_string());
        Ok(())
    })
}

/// Sets the hostname (the container needs its own UTS namespace, the default).
#[no_mangle]
pub extern "C" fn corral_spec_set_hostname(
    spec: *mut corral_spec,
    hostname: *const c_char,
) -> c_int {
    with_desc("corral_spec_set_hostname", spec, |d| {
        d.hostname = Some(str_arg("hostname", hostname)?.to_string());
        Ok(())
    })
}

/// Sets the user and group the process runs as (inside the container; default 0:0, or the
/// image's user).
#[no_mangle]
pub extern "C" fn corral_spec_set_user(spec: *mut corral_spec, uid: u32, gid: u32) -> c_int {
    with_desc("corral_spec_set_user", spec, |d| {
        d.user = Some(UserSpec::Ids { uid, gid });
        Ok(())
    })
}

/// Sets what the container gets of the namespace `kind` ("pid", "network" or "net", "ipc",
/// "uts", "mount" or "mnt", "user", "cgroup", "time"): `mode` "new" (one of its own), "host"
/// (the caller's: none of its own), or the path of a namespace to join ("/proc/PID/ns/net").
#[no_mangle]
pub extern "C" fn corral_spec_set_namespace(
    spec: *mut corral_spec,
    kind: *const c_char,
    mode: *const c_char,
) -> c_int {
    with_desc("corral_spec_set_namespace", spec, |d| {
        let k: runtime::Namespace =
            str_arg("kind", kind)?
                .parse()
                .map_err(|e: runtime::Error| {
                    let mut f = Fail::from(e);
                    f.path = Some("kind".into());
                    f
                })?;
        let m = match str_arg("mode", mode)? {
            "new" => NsMode::New,
            "host" => NsMode::Host,
            p if p.starts_with('/') => NsMode::Join(PathBuf::from(p)),
            _ => {
                return Err(invalid(
                    "mode",
                    "want \"new\", \"host\" or an absolute path",
                ))
            }
        };
        // The network namespace is the description's network mode.
        if k == runtime::Namespace::Network {
            d.network.mode = match m {
                NsMode::New => NetworkMode::Private,
                NsMode::Host => NetworkMode::Host,
                NsMode::Join(p) => NetworkMode::Join(p),
            };
        } else {
            d.namespaces.insert(k, m);
        }
        Ok(())
    })
}

/// Sets the container's resource limits (copied).
#[no_mangle]
pub extern "C" fn corral_spec_set_limits(
    spec: *mut corral_spec,
    limits: *const corral_limits,
) -> c_int {
    with_desc("corral_spec_set_limits", spec, |d| {
        d.limits = to_limits(limits)?.keeping_ulimits_of(&d.limits);
        Ok(())
    })
}

/// Adds a mount after the default ones: `type` "bind" (with `source` a host path) or a
/// filesystem type ("tmpfs", ...); `options` a comma-separated list as in `mount -o`
/// ("ro,nosuid"), or NULL. A bind mount gets "rbind" unless `options` says "bind".
#[no_mangle]
pub extern "C" fn corral_spec_add_mount(
    spec: *mut corral_spec,
    source: *const c_char,
    destination: *const c_char,
    r#type: *const c_char,
    options: *const c_char,
) -> c_int {
    with_desc("corral_spec_add_mount", spec, |d| {
        let src = str_arg("source", source)?;
        let dst = str_arg("destination", destination)?;
        if !dst.starts_with('/') {
            return Err(invalid("destination", "must be an absolute path"));
        }
        let kind = str_arg("type", r#type)?;
        let mut opts: Vec<String> = opt_str_arg("options", options)?
            .unwrap_or("")
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        if kind == "bind" && !opts.iter().any(|o| o == "bind" || o == "rbind") {
            opts.insert(0, "rbind".into());
        }
        d.mounts.push(Mount {
            destination: dst.into(),
            kind: kind.into(),
            source: src.into(),
            options: opts,
        });
        Ok(())
    })
}

/// Gives the process a terminal (1) or not (0, the default). Its pty master is
/// corral_console().
#[no_mangle]
pub extern "C" fn corral_spec_set_terminal(spec: *mut corral_spec, on: c_int) -> c_int {
    with_desc("corral_spec_set_terminal", spec, |d| {
        d.terminal = on != 0;
        Ok(())
    })
}

/// Turns corral's default seccomp filter on (1) or off (0, the default): it refuses with
/// EPERM the calls a container has no business making (module loading, reboot, mount,
/// unshare, setns, ptrace, bpf, keyctl, ...). For a spec from an image: docker's default
/// profile (1, the default) or none (0, as `--security-opt seccomp=unconfined`).
#[no_mangle]
pub extern "C" fn corral_spec_set_seccomp(spec: *mut corral_spec, on: c_int) -> c_int {
    with_desc("corral_spec_set_seccomp", spec, |d| {
        d.security.seccomp = match (on != 0, d.baseline) {
            (false, _) => Seccomp::Unconfined,
            (true, Baseline::Runc) => Seccomp::Minimal,
            (true, Baseline::Docker) => Seccomp::Default,
        };
        Ok(())
    })
}

/// Runs `f` on the security settings of a spec from an image; other specs get -ENOTSUP.
fn with_image_security(
    func: &str,
    spec: *mut corral_spec,
    f: impl FnOnce(&mut Security) -> Result<(), Fail>,
) -> c_int {
    with_desc(func, spec, |d| match d.baseline {
        Baseline::Docker => f(&mut d.security),
        Baseline::Runc => Err(only_for_image()),
    })
}

/// The error of a refused security argument `arg`.
fn security_fail(arg: &'static str) -> impl FnOnce(runtime::Error) -> Fail {
    move |e| {
        let mut f = Fail::from(e);
        f.step = Some("argument".into());
        f.path = Some(arg.into());
        f
    }
}

/// A spec from an image: every capability, every host device, no seccomp filter, no masked
/// or read-only paths (1), or docker's defaults (0, the default), as docker's `--privileged`.
#[no_mangle]
pub extern "C" fn corral_spec_set_privileged(spec: *mut corral_spec, on: c_int) -> c_int {
    with_image_security("corral_spec_set_privileged", spec, |s| {
        s.privileged = on != 0;
        Ok(())
    })
}

/// A spec from an image: adds capability `name` ("NET_ADMIN", "CAP_NET_ADMIN" or "ALL") to
/// docker's default set, as docker's `--cap-add`.
#[no_mangle]
pub extern "C" fn corral_spec_add_cap(spec: *mut corral_spec, name: *const c_char) -> c_int {
    with_image_security("corral_spec_add_cap", spec, |s| {
        s.cap_add(str_arg("name", name)?)
            .map_err(security_fail("name"))
    })
}

/// A spec from an image: drops capability `name` (or "ALL") from docker's default set, as
/// docker's `--cap-drop`.
#[no_mangle]
pub extern "C" fn corral_spec_drop_cap(spec: *mut corral_spec, name: *const c_char) -> c_int {
    with_image_security("corral_spec_drop_cap", spec, |s| {
        s.cap_drop(str_arg("name", name)?)
            .map_err(security_fail("name"))
    })
}

/// A spec from an image: one docker `--security-opt`: "seccomp=unconfined",
/// "seccomp=PROFILE.json" (a `linux.seccomp` object in OCI form) or "no-new-privileges".
#[no_mangle]
pub extern "C" fn corral_spec_add_security_opt(
    spec: *mut corral_spec,
    opt: *const c_char,
) -> c_int {
    with_image_security("corral_spec_add_security_opt", spec, |s| {
        s.option(str_arg("opt", opt)?).map_err(security_fail("opt"))
    })
}

/// A spec from an image: gives the container a host device, "HOST[:CONTAINER][:PERMS]" as
/// docker's `--device` (PERMS of r, w, m; default rwm).
#[no_mangle]
pub extern "C" fn corral_spec_add_device(spec: *mut corral_spec, device: *const c_char) -> c_int {
    with_image_security("corral_spec_add_device", spec, |s| {
        s.device(str_arg("device", device)?)
            .map_err(security_fail("device"))
    })
}

/// Makes the root filesystem read-only (1) or writable (0). The default: read-only for a
/// root directory, writable for an image (its writes go to the container's own layer).
#[no_mangle]
pub extern "C" fn corral_spec_set_readonly_root(spec: *mut corral_spec, on: c_int) -> c_int {
    with_desc("corral_spec_set_readonly_root", spec, |d| {
        d.readonly_root = Some(on != 0);
        Ok(())
    })
}

/// Writes the spec as a `config.json` text to `*out` (free it with corral_string_free()).
/// A spec from an image gets -ENOTSUP: its config is made at create, from the image's.
#[no_mangle]
pub extern "C" fn corral_spec_to_json(spec: *mut corral_spec, out: *mut *mut c_char) -> c_int {
    call("corral_spec_to_json", || {
        let s = SPECS.get("spec", spec as usize)?;
        let v = match &*lock(&s.0) {
            SpecKind::Described { d, .. } => {
                if let Root::Image(i) = &d.root {
                    return Err(fail(
                        libc::ENOTSUP,
                        format!("the spec of image {i:?} is made at create"),
                    ));
                }
                serde_json::to_value(d.to_spec()?)
            }
            SpecKind::Bundle(b) => serde_json::to_value(&b.spec),
        }
        .map_err(|e| fail(libc::EINVAL, format!("spec: {e}")))?;
        let text = serde_json::to_string_pretty(&v)
            .map_err(|e| fail(libc::EINVAL, format!("spec: {e}")))?;
        strdup_out(out, text)
    })
}

/// What a container of `spec` is made from: its description and the image store of an
/// image root, or its bundle (copied: the spec may change or go meanwhile).
pub(crate) fn spec_of(spec: *mut corral_spec) -> Result<SpecKind, Fail> {
    let s = SPECS.get("spec", spec as usize)?;
    let k = lock(&s.0);
    Ok(match &*k {
        SpecKind::Described { d, store } => SpecKind::Described {
            d: d.clone(),
            store: store.clone(),
        },
        SpecKind::Bundle(b) => SpecKind::Bundle(b.clone()),
    })
}

/// The bundle of a spec for a pool (a directory root or a bundle; an image gets -ENOTSUP).
pub(crate) fn bundle_for_pool(spec: *mut corral_spec) -> Result<Bundle, Fail> {
    match spec_of(spec)? {
        SpecKind::Described { d, .. } if d.network.attaches() => Err(Fail {
            code: libc::ENOTSUP,
            message: "a pool's containers join no network (corral_spec_add_network)".into(),
            step: Some("argument".into()),
            path: Some("spec".into()),
        }),
        SpecKind::Described { d, .. } => match d.root {
            Root::Dir(_) => Ok(d.bundle()?),
            Root::Image(_) => Err(Fail {
                code: libc::ENOTSUP,
                message: "not for a spec from an image (its config decides)".into(),
                step: Some("argument".into()),
                path: Some("spec".into()),
            }),
        },
        SpecKind::Bundle(b) => Ok(*b),
    }
}
