//! The keyword arguments of `corral.Container` mapped to what a container is made of: a
//! bundle directory, or a [`Description`] (a root filesystem directory, or an image of a
//! store) that `corral_image::create` makes. Nothing here decides what a container gets
//! beyond the mapping: the defaults are the Description's baselines.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use runtime::describe::{NetworkMode, Seccomp, UserSpec};
use runtime::{Description, Error as RtError, Namespace, NsMode, Root};

use crate::args::{args_arg, env_arg, path_arg, str_arg, str_list, str_map, type_err, user_arg};
use crate::errors::{config_err, raise, rt_err};
use crate::image::store_arg;
use crate::limits::Limits;
use crate::mounts::Mount;
use crate::network::{fill_network, NetKw};

/// What a handle makes at create (one per handle: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Source {
    /// An OCI bundle directory, loaded and checked.
    Bundle(runtime::Bundle),
    /// A description (its root a directory, or an image of `store`).
    Described { d: Description, store: PathBuf },
}

/// The keyword arguments of `Core(...)` that describe the container.
pub(crate) struct Kw<'a, 'py> {
    pub(crate) args: Option<&'a Bound<'py, PyAny>>,
    pub(crate) env: Option<&'a Bound<'py, PyAny>>,
    pub(crate) cwd: Option<&'a Bound<'py, PyAny>>,
    pub(crate) hostname: Option<&'a Bound<'py, PyAny>>,
    pub(crate) user: Option<&'a Bound<'py, PyAny>>,
    pub(crate) namespaces: Option<&'a Bound<'py, PyAny>>,
    pub(crate) mounts: Option<&'a Bound<'py, PyAny>>,
    pub(crate) limits: Option<&'a Bound<'py, PyAny>>,
    pub(crate) seccomp: Option<&'a Bound<'py, PyAny>>,
    pub(crate) readonly_root: Option<bool>,
    pub(crate) annotations: Option<&'a Bound<'py, PyAny>>,
    pub(crate) privileged: bool,
    pub(crate) cap_add: Option<&'a Bound<'py, PyAny>>,
    pub(crate) cap_drop: Option<&'a Bound<'py, PyAny>>,
    pub(crate) security_opt: Option<&'a Bound<'py, PyAny>>,
    pub(crate) devices: Option<&'a Bound<'py, PyAny>>,
    pub(crate) net: NetKw<'a, 'py>,
}

/// The argument, unless absent or None.
fn given<'a, 'py>(v: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    v.filter(|v| !v.is_none())
}

/// What `rootfs`, `bundle` or `image` (one of them) and the other arguments describe.
pub(crate) fn source(
    py: Python<'_>,
    rootfs: Option<&Bound<'_, PyAny>>,
    bundle: Option<&Bound<'_, PyAny>>,
    image: Option<&Bound<'_, PyAny>>,
    store: Option<&Bound<'_, PyAny>>,
    kw: &Kw<'_, '_>,
) -> PyResult<Source> {
    if let Some(image) = given(image) {
        for (name, v) in [("rootfs", rootfs), ("bundle", bundle)] {
            if given(v).is_some() {
                return Err(config_err(py, name, "cannot be combined with image"));
            }
        }
        return image_description(py, image, store, kw);
    }
    let only_image = [
        ("cap_add", given(kw.cap_add).is_some()),
        ("cap_drop", given(kw.cap_drop).is_some()),
        ("security_opt", given(kw.security_opt).is_some()),
        ("devices", given(kw.devices).is_some()),
        ("privileged", kw.privileged),
    ];
    if let Some((name, _)) = only_image.iter().find(|(_, set)| *set) {
        return Err(config_err(
            py,
            name,
            "is for a container from an image (image=...)",
        ));
    }
    let seccomp = match given(kw.seccomp) {
        None => false,
        Some(v) if v.is_instance_of::<pyo3::types::PyBool>() => v.extract::<bool>()?,
        Some(v) => return Err(type_err("seccomp", "a bool", v)),
    };
    match (given(rootfs), given(bundle)) {
        (Some(_), Some(_)) => Err(config_err(py, "bundle", "give rootfs or bundle, not both")),
        (None, None) => Err(config_err(
            py,
            "rootfs",
            "missing: give rootfs (a root filesystem directory) or bundle",
        )),
        (None, Some(b)) => {
            if given(store).is_some() {
                return Err(config_err(py, "store", "cannot be combined with bundle"));
            }
            refuse_with_bundle(py, kw)?;
            let dir = PathBuf::from(path_arg("bundle", b)?);
            let b = py
                .allow_threads(|| runtime::Bundle::load(&dir))
                .map_err(|e| rt_err(py, e))?;
            Ok(Source::Bundle(b))
        }
        (Some(r), None) => dir_description(py, &path_arg("rootfs", r)?, seccomp, store, kw),
    }
}

/// A bundle's `config.json` says everything: no argument may say it again.
fn refuse_with_bundle(py: Python<'_>, kw: &Kw<'_, '_>) -> PyResult<()> {
    for (name, v) in [
        ("args", kw.args),
        ("env", kw.env),
        ("cwd", kw.cwd),
        ("hostname", kw.hostname),
        ("user", kw.user),
        ("namespaces", kw.namespaces),
        ("mounts", kw.mounts),
        ("limits", kw.limits),
        ("annotations", kw.annotations),
    ] {
        if given(v).is_some() {
            return Err(config_err(
                py,
                name,
                "cannot be combined with bundle (its config.json says it)",
            ));
        }
    }
    if let Some(name) = kw.net.given().first() {
        return Err(config_err(
            py,
            name,
            "cannot be combined with bundle (its container joins no network)",
        ));
    }
    Ok(())
}

/// A container on the root filesystem directory `rootfs`, over the defaults of `corral
/// spec` (`/bin/sh`, a read-only root); checked here, so that bad input fails now.
fn dir_description(
    py: Python<'_>,
    rootfs: &str,
    seccomp: bool,
    store: Option<&Bound<'_, PyAny>>,
    kw: &Kw<'_, '_>,
) -> PyResult<Source> {
    let mut d = Description::new(Root::Dir(PathBuf::from(rootfs)));
    d.args = vec!["/bin/sh".into()];
    fill(py, &mut d, kw, true)?;
    if seccomp {
        d.security.seccomp = Seccomp::Minimal;
    }
    d.readonly_root = Some(kw.readonly_root.unwrap_or(true));
    py.allow_threads(|| d.bundle()).map_err(|e| match e {
        RtError::Config { field, reason } if field == "root.path" => raise(
            py,
            "ConfigError",
            format!("rootfs: {reason}"),
            Some("config".into()),
            Some(libc::ENOENT),
            Some(rootfs.to_string()),
        ),
        e => rt_err(py, e),
    })?;
    Ok(Source::Described {
        d,
        store: store_arg(store)?,
    })
}

/// A container of the image `image` of `store`: docker's defaults, the image's config, and
/// the arguments over them (checked against the image at create).
fn image_description(
    py: Python<'_>,
    image: &Bound<'_, PyAny>,
    store: Option<&Bound<'_, PyAny>>,
    kw: &Kw<'_, '_>,
) -> PyResult<Source> {
    let name = str_arg("image", image)?;
    corral_image::Reference::parse(&name).map_err(|e| config_err(py, "image", e))?;
    let store = store_arg(store)?;
    let mut d = Description::new(Root::Image(name));
    fill(py, &mut d, kw, false)?;
    d.security = security_arg(
        py,
        kw.seccomp,
        kw.privileged,
        kw.cap_add,
        kw.cap_drop,
        kw.security_opt,
        kw.devices,
    )?;
    if kw.readonly_root.is_some() {
        d.readonly_root = kw.readonly_root;
    }
    Ok(Source::Described { d, store })
}

/// The arguments both roots take, into `d` (`dir`: a directory root, whose program must
/// be given when `args` is).
fn fill(py: Python<'_>, d: &mut Description, kw: &Kw<'_, '_>, dir: bool) -> PyResult<()> {
    if let Some(a) = given(kw.args) {
        let a = args_arg("args", a)?;
        if a.is_empty() && dir {
            return Err(config_err(py, "args", "empty: give the program to run"));
        }
        if !a.is_empty() {
            d.args = a;
        }
    }
    if let Some(e) = given(kw.env) {
        for (k, v) in env_arg(e)? {
            if k.is_empty() || k.contains('=') {
                return Err(config_err(
                    py,
                    "env",
                    format!("{k:?} is not a variable name"),
                ));
            }
            d.env.retain(|(ek, _)| *ek != k);
            d.env.push((k, v));
        }
    }
    if let Some(c) = given(kw.cwd) {
        let c = path_arg("cwd", c)?;
        if !c.starts_with('/') {
            return Err(config_err(
                py,
                "cwd",
                format!("{c:?}: not an absolute path"),
            ));
        }
        d.cwd = Some(c);
    }
    if let Some(h) = given(kw.hostname) {
        d.hostname = Some(str_arg("hostname", h)?);
    }
    if let Some(u) = given(kw.user) {
        let (uid, gid, extra) = user_arg(u)?;
        d.user = Some(UserSpec::Ids { uid, gid });
        d.additional_gids = extra;
    }
    if let Some(n) = given(kw.namespaces) {
        namespaces_arg(d, n)?;
    }
    if let Some(ms) = given(kw.mounts) {
        d.mounts = mounts_arg(ms)?;
    }
    if let Some(l) = given(kw.limits) {
        d.limits = limits_arg(l)?.keeping_ulimits_of(&d.limits);
    }
    if let Some(a) = given(kw.annotations) {
        d.annotations = str_map("annotations", a)?.into_iter().collect();
    }
    let netns_too = given(kw.namespaces)
        .and_then(|n| n.downcast::<PyDict>().ok())
        .is_some_and(|n| {
            n.keys().iter().any(|k| {
                k.extract::<String>()
                    .is_ok_and(|k| k == "network" || k == "net")
            })
        });
    if netns_too && given(kw.net.network).is_some() {
        return Err(config_err(
            py,
            "network",
            "cannot be combined with namespaces[\"network\"]: give one of them",
        ));
    }
    fill_network(py, d, &kw.net)?;
    Ok(())
}

/// `namespaces`: name to "new", "host" or a path to join (the network namespace is the
/// description's network mode).
pub(crate) fn namespaces_arg(d: &mut Description, v: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = v.py();
    let Ok(dict) = v.downcast::<PyDict>() else {
        return Err(type_err(
            "namespaces",
            "a dict of namespace name to \"new\", \"host\" or a path to join",
            v,
        ));
    };
    for (k, m) in dict.iter() {
        let name = str_arg("namespaces key", &k)?;
        let ns: Namespace = name.parse().map_err(|_| {
            config_err(
                py,
                &format!("namespaces[{name:?}]"),
                "unknown namespace (want pid, network, ipc, uts, mount, user, cgroup or time)",
            )
        })?;
        let arg = format!("namespaces[{name:?}]");
        let mode = if m.is_instance_of::<PyString>() {
            match m.extract::<String>()?.as_str() {
                "new" => NsMode::New,
                "host" => NsMode::Host,
                p if p.starts_with('/') => NsMode::Join(PathBuf::from(p)),
                other => {
                    return Err(config_err(
                        py,
                        &arg,
                        format!("{other:?}: want \"new\", \"host\" or an absolute path to join"),
                    ))
                }
            }
        } else {
            let p = path_arg(&arg, &m)?;
            if !p.starts_with('/') {
                return Err(config_err(py, &arg, format!("{p:?}: not an absolute path")));
            }
            NsMode::Join(PathBuf::from(p))
        };
        if ns == Namespace::Network {
            d.network.mode = match mode {
                NsMode::New => NetworkMode::Private,
                NsMode::Host => NetworkMode::Host,
                NsMode::Join(p) => NetworkMode::Join(p),
            };
        } else {
            d.namespaces.insert(ns, mode);
        }
    }
    Ok(())
}

/// `mounts`: a list of `corral.Mount`.
pub(crate) fn mounts_arg(ms: &Bound<'_, PyAny>) -> PyResult<Vec<runtime::Mount>> {
    let it = ms
        .try_iter()
        .map_err(|_| type_err("mounts", "a list of corral.Mount", ms))?;
    let mut out = Vec::new();
    for (i, m) in it.enumerate() {
        let m = m?;
        let m = m
            .downcast::<Mount>()
            .map_err(|_| type_err(&format!("mounts[{i}]"), "a corral.Mount", &m))?;
        out.push(m.get().inner.clone());
    }
    Ok(out)
}

/// `limits`: a `corral.Limits`.
pub(crate) fn limits_arg(l: &Bound<'_, PyAny>) -> PyResult<runtime::Limits> {
    let l = l
        .downcast::<Limits>()
        .map_err(|_| type_err("limits", "a corral.Limits", l))?;
    Ok(l.get().inner.clone())
}

/// The security settings of a container from an image: docker's defaults, less what the
/// arguments opt out of (named as docker's options). `seccomp`: None or True for docker's
/// profile, False or "unconfined" for none, else a profile's path.
fn security_arg(
    py: Python<'_>,
    seccomp: Option<&Bound<'_, PyAny>>,
    privileged: bool,
    cap_add: Option<&Bound<'_, PyAny>>,
    cap_drop: Option<&Bound<'_, PyAny>>,
    security_opt: Option<&Bound<'_, PyAny>>,
    devices: Option<&Bound<'_, PyAny>>,
) -> PyResult<runtime::describe::Security> {
    use runtime::describe::Seccomp;
    let mut sec = runtime::describe::Security {
        privileged,
        ..Default::default()
    };
    let e = |arg: &'static str| move |err: runtime::Error| config_err(py, arg, err);
    for c in str_list("cap_add", cap_add)? {
        sec.cap_add(&c).map_err(e("cap_add"))?;
    }
    for c in str_list("cap_drop", cap_drop)? {
        sec.cap_drop(&c).map_err(e("cap_drop"))?;
    }
    for o in str_list("security_opt", security_opt)? {
        sec.option(&o).map_err(e("security_opt"))?;
    }
    for d in str_list("devices", devices)? {
        sec.device(&d).map_err(e("devices"))?;
    }
    if let Some(v) = seccomp.filter(|v| !v.is_none()) {
        sec.seccomp = if v.is_instance_of::<pyo3::types::PyBool>() {
            if v.extract::<bool>()? {
                Seccomp::Default
            } else {
                Seccomp::Unconfined
            }
        } else {
            match path_arg("seccomp", v)?.as_str() {
                "unconfined" => Seccomp::Unconfined,
                "" => return Err(config_err(py, "seccomp", "an empty path")),
                p => Seccomp::Profile(PathBuf::from(p)),
            }
        };
    }
    Ok(sec)
}
