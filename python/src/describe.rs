//! What a container is made of: namespaces, mounts, limits and security from their
//! Python arguments.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use runtime::{Namespace, NsMode};

use crate::args::{path_arg, str_arg, str_list, type_err};
use crate::errors::config_err;
use crate::limits::Limits;
use crate::mounts::Mount;

pub(crate) fn namespaces_arg(b: &mut runtime::SpecBuilder, v: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = v.py();
    let Ok(d) = v.downcast::<PyDict>() else {
        return Err(type_err(
            "namespaces",
            "a dict of namespace name to \"new\", \"host\" or a path to join",
            v,
        ));
    };
    for (k, m) in d.iter() {
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
        b.namespace(ns, mode);
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
pub(crate) fn security_arg(
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
