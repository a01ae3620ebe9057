//! `corral_spec`: a container's description, made field by field, from a bundle or a
//! config JSON, or from an image.

use std::ffi::{c_char, c_int};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runtime::{Bundle, SpecBuilder};

use crate::args::*;
use crate::error::*;
use crate::handles::*;
use crate::limits::*;

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
        new_spec(out, SpecKind::Built(Box::new(SpecBuilder::new(r))))
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

pub(crate) fn with_builder(
    func: &str,
    spec: *mut corral_spec,
    f: impl FnOnce(&mut SpecBuilder) -> Result<(), Fail>,
) -> c_int {
    with_spec(func, spec, f, |_| Err(not_for_image()))
}

pub(crate) fn not_for_image() -> Fail {
    Fail {
        code: libc::ENOTSUP,
        message: "not for a spec from an image (its config decides)".into(),
        step: Some("argument".into()),
        path: Some("spec".into()),
    }
}

/// Runs `built` on a spec made field by field, or `image` on one from an image.
pub(crate) fn with_spec(
    func: &str,
    spec: *mut corral_spec,
    built: impl FnOnce(&mut SpecBuilder) -> Result<(), Fail>,
    image: impl FnOnce(&mut runtime::image_spec::RunConfig) -> Result<(), Fail>,
) -> c_int {
    call(func, || {
        let s = SPECS.get("spec", spec as usize)?;
        let mut k = lock(&s.0);
        match &mut *k {
            SpecKind::Built(b) => built(b),
            SpecKind::Image(i) => image(&mut i.rc),
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

/// Makes a container description from the image `image` ("name[:tag]", or an image id) of
/// the image store `store` (NULL: $CORRAL_STORE, else /var/lib/corral; see `corral image`):
/// its entrypoint, command, environment, working directory and user, its layers as the root
/// (shared, read-only) under a writable layer of the container's own. corral_spec_set_args
/// (the command, after the image's entrypoint), _set_env, _set_cwd, _set_hostname,
/// _set_user, _set_limits, _set_terminal and _add_mount (bind mounts) apply; the others get
/// -ENOTSUP. The container gets what `docker run` gives by default (docker's seccomp
/// profile and capabilities, only the standard devices, docker's masked and read-only
/// paths); corral_spec_set_seccomp, _set_privileged, _add_cap, _drop_cap,
/// _add_security_opt and _add_device opt out, as docker's options of the same names. The
/// image is looked up at create. `*out` is a new handle for corral_spec_free().
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
        new_spec(
            out,
            SpecKind::Image(Box::new(ImageSpec {
                store,
                image: image.to_string(),
                rc: runtime::image_spec::RunConfig::default(),
            })),
        )
    })
}

/// Sets the program and its arguments: `argv[0]` .. `argv[argc-1]` (copied). `argv[0]` is
/// looked up in the container's PATH when it has no `/`.
#[no_mangle]
pub extern "C" fn corral_spec_set_args(
    spec: *mut corral_spec,
    argv: *const *const c_char,
    argc: usize,
) -> c_int {
    with_spec(
        "corral_spec_set_args",
        spec,
        |b| {
            let a = str_array("argv", argv, argc)?;
            if a.is_empty() {
                return Err(invalid("argv", "empty: give the program to run"));
            }
            b.args(a);
            Ok(())
        },
        |rc| {
            let a = str_array("argv", argv, argc)?;
            if a.is_empty() {
                return Err(invalid("argv", "empty: give the program to run"));
            }
            rc.command = a;
            Ok(())
        },
    )
}

/// Sets the environment variable `key` to `value` (replacing an earlier value; PATH has a
/// default).
#[no_mangle]
pub extern "C" fn corral_spec_set_env(
    spec: *mut corral_spec,
    key: *const c_char,
    value: *const c_char,
) -> c_int {
    with_spec(
        "corral_spec_set_env",
        spec,
        |b| {
            let k = str_arg("key", key)?;
            let v = str_arg("value", value)?;
            if k.is_empty() || k.contains('=') {
                return Err(invalid("key", "not a variable name"));
            }
            b.env(k, v);
            Ok(())
        },
        |rc| {
            let k = str_arg("key", key)?;
            let v = str_arg("value", value)?;
            if k.is_empty() || k.contains('=') {
                return Err(invalid("key", "not a variable name"));
            }
            rc.env.retain(|e| e.split('=').next() != Some(k));
            rc.env.push(format!("{k}={v}"));
            Ok(())
        },
    )
}

/// Sets the working directory (absolute, inside the container; default "/").
#[no_mangle]
pub extern "C" fn corral_spec_set_cwd(spec: *mut corral_spec, cwd: *const c_char) -> c_int {
    with_spec(
        "corral_spec_set_cwd",
        spec,
        |b| {
            let c = str_arg("cwd", cwd)?;
            if !c.starts_with('/') {
                return Err(invalid("cwd", "must be an absolute path"));
            }
            b.cwd(c);
            Ok(())
        },
        |rc| {
            let c = str_arg("cwd", cwd)?;
            if !c.starts_with('/') {
                return Err(invalid("cwd", "must be an absolute path"));
            }
            rc.workdir = Some(c.into());
            Ok(())
        },
    )
}

/// Sets the hostname (the container needs its own UTS namespace, the default).
#[no_mangle]
pub extern "C" fn corral_spec_set_hostname(
    spec: *mut corral_spec,
    hostname: *const c_char,
) -> c_int {
    with_spec(
        "corral_spec_set_hostname",
        spec,
        |b| {
            b.hostname(str_arg("hostname", hostname)?);
            Ok(())
        },
        |rc| {
            rc.hostname = Some(str_arg("hostname", hostname)?.into());
            Ok(())
        },
    )
}

/// Sets the user and group the process runs as (inside the container; default 0:0).
#[no_mangle]
pub extern "C" fn corral_spec_set_user(spec: *mut corral_spec, uid: u32, gid: u32) -> c_int {
    with_spec(
        "corral_spec_set_user",
        spec,
        |b| {
            b.user(uid, gid);
            Ok(())
        },
        |rc| {
            rc.user = Some(format!("{uid}:{gid}"));
            Ok(())
        },
    )
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
    with_builder("corral_spec_set_namespace", spec, |b| {
        let k: runtime::Namespace =
            str_arg("kind", kind)?
                .parse()
                .map_err(|e: runtime::Error| {
                    let mut f = Fail::from(e);
                    f.path = Some("kind".into());
                    f
                })?;
        let m = match str_arg("mode", mode)? {
            "new" => runtime::NsMode::New,
            "host" => runtime::NsMode::Host,
            p if p.starts_with('/') => runtime::NsMode::Join(PathBuf::from(p)),
            _ => {
                return Err(invalid(
                    "mode",
                    "want \"new\", \"host\" or an absolute path",
                ))
            }
        };
        b.namespace(k, m);
        Ok(())
    })
}

pub(crate) enum SpecKind {
    Built(Box<SpecBuilder>),
    Bundle(Box<Bundle>),
    Image(Box<ImageSpec>),
}

/// A container from an image of a store: the spec comes from the image's config at create.
pub(crate) struct ImageSpec {
    pub(crate) store: PathBuf,
    pub(crate) image: String,
    pub(crate) rc: runtime::image_spec::RunConfig,
}

pub(crate) struct SpecObj(pub(crate) Mutex<SpecKind>);

/// Sets the container's resource limits (copied).
#[no_mangle]
pub extern "C" fn corral_spec_set_limits(
    spec: *mut corral_spec,
    limits: *const corral_limits,
) -> c_int {
    with_spec(
        "corral_spec_set_limits",
        spec,
        |b| {
            b.limits(to_limits(limits)?);
            Ok(())
        },
        |rc| {
            let l = to_limits(limits)?;
            rc.memory = l.memory;
            rc.cpus = l.cpus;
            rc.pids_limit = l.pids;
            Ok(())
        },
    )
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
    with_spec(
        "corral_spec_add_mount",
        spec,
        |b| {
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
            b.mount(runtime::Mount {
                destination: dst.into(),
                kind: kind.into(),
                source: src.into(),
                options: opts,
            });
            Ok(())
        },
        |rc| {
            let src = str_arg("source", source)?;
            let dst = str_arg("destination", destination)?;
            if str_arg("type", r#type)? != "bind" {
                return Err(invalid(
                    "type",
                    "a spec from an image takes bind mounts only",
                ));
            }
            if !dst.starts_with('/') {
                return Err(invalid("destination", "must be an absolute path"));
            }
            let ro = opt_str_arg("options", options)?
                .unwrap_or("")
                .split(',')
                .any(|o| o == "ro");
            rc.volumes.push((PathBuf::from(src), dst.to_string(), ro));
            Ok(())
        },
    )
}

/// Gives the process a terminal (1) or not (0, the default). Its pty master is
/// corral_console().
#[no_mangle]
pub extern "C" fn corral_spec_set_terminal(spec: *mut corral_spec, on: c_int) -> c_int {
    with_spec(
        "corral_spec_set_terminal",
        spec,
        |b| {
            b.terminal(on != 0);
            Ok(())
        },
        |rc| {
            rc.tty = on != 0;
            Ok(())
        },
    )
}

/// Turns corral's default seccomp filter on (1) or off (0, the default): it refuses with
/// EPERM the calls a container has no business making (module loading, reboot, mount,
/// unshare, setns, ptrace, bpf, keyctl, ...). For a spec from an image: docker's default
/// profile (1, the default) or none (0, as `--security-opt seccomp=unconfined`).
#[no_mangle]
pub extern "C" fn corral_spec_set_seccomp(spec: *mut corral_spec, on: c_int) -> c_int {
    with_spec(
        "corral_spec_set_seccomp",
        spec,
        |b| {
            b.seccomp(on != 0);
            Ok(())
        },
        |rc| {
            rc.security.seccomp = if on != 0 {
                runtime::image_spec::Seccomp::Default
            } else {
                runtime::image_spec::Seccomp::Unconfined
            };
            Ok(())
        },
    )
}

/// Runs `f` on the security settings of a spec from an image; other specs get -ENOTSUP.
pub(crate) fn with_image_security(
    func: &str,
    spec: *mut corral_spec,
    f: impl FnOnce(&mut runtime::image_spec::Security) -> Result<(), Fail>,
) -> c_int {
    with_spec(
        func,
        spec,
        |_| {
            Err(Fail {
                code: libc::ENOTSUP,
                message: "only for a spec from an image (corral_spec_from_image)".into(),
                step: Some("argument".into()),
                path: Some("spec".into()),
            })
        },
        |rc| f(&mut rc.security),
    )
}

/// The error of a refused security argument `arg`.
pub(crate) fn security_fail(arg: &'static str) -> impl FnOnce(runtime::Error) -> Fail {
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

/// Makes the root filesystem read-only (1, the default) or writable (0).
#[no_mangle]
pub extern "C" fn corral_spec_set_readonly_root(spec: *mut corral_spec, on: c_int) -> c_int {
    with_builder("corral_spec_set_readonly_root", spec, |b| {
        b.readonly_root(on != 0);
        Ok(())
    })
}

/// Writes the spec as a `config.json` text to `*out` (free it with corral_string_free()).
#[no_mangle]
pub extern "C" fn corral_spec_to_json(spec: *mut corral_spec, out: *mut *mut c_char) -> c_int {
    call("corral_spec_to_json", || {
        let s = SPECS.get("spec", spec as usize)?;
        let v = match &*lock(&s.0) {
            SpecKind::Built(b) => serde_json::to_value(b.to_spec()?)
                .map_err(|e| fail(libc::EINVAL, format!("spec: {e}")))?,
            SpecKind::Bundle(b) => serde_json::to_value(&b.spec)
                .map_err(|e| fail(libc::EINVAL, format!("spec: {e}")))?,
            SpecKind::Image(i) => {
                return Err(fail(
                    libc::ENOTSUP,
                    format!("the spec of image {:?} is made at create", i.image),
                ))
            }
        };
        let text = serde_json::to_string_pretty(&v)
            .map_err(|e| fail(libc::EINVAL, format!("spec: {e}")))?;
        strdup_out(out, text)
    })
}
