//! Argument conversion: Python values to the strings, numbers and fds the runtime takes,
//! with `TypeError` or `corral.ConfigError` naming the argument.

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::errors::config_err;

pub(crate) fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

pub(crate) fn type_err(arg: &str, want: &str, v: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!("{arg}: expected {want}, got {}", type_name(v)))
}

/// A `str` (or `os.PathLike`) argument as a string.
pub(crate) fn path_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = v.py();
    let p = if v.is_instance_of::<PyString>() {
        v.clone()
    } else {
        match py.import("os")?.getattr("fspath")?.call1((v,)) {
            Ok(p) => p,
            Err(_) => return Err(type_err(arg, "a str or os.PathLike", v)),
        }
    };
    match p.extract::<String>() {
        Ok(s) if s.contains('\0') => Err(config_err(py, arg, "contains a NUL byte")),
        Ok(s) => Ok(s),
        Err(_) => Err(type_err(arg, "a str path", v)),
    }
}

pub(crate) fn str_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<String> {
    if !v.is_instance_of::<PyString>() {
        return Err(type_err(arg, "a str", v));
    }
    let s: String = v.extract()?;
    if s.contains('\0') {
        return Err(config_err(v.py(), arg, "contains a NUL byte"));
    }
    Ok(s)
}

/// An argument list: a list or tuple of str (a bare str is refused: it is almost always a
/// command line that wanted splitting).
pub(crate) fn args_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    list_of(arg, v, path_arg)
}

/// A list or tuple (not a bare str), each item read by `item` with its index in its name.
pub(crate) fn list_of(
    arg: &str,
    v: &Bound<'_, PyAny>,
    item: fn(&str, &Bound<'_, PyAny>) -> PyResult<String>,
) -> PyResult<Vec<String>> {
    if v.is_instance_of::<PyString>() {
        return Err(type_err(arg, "a list of str (not one str)", v));
    }
    let items: Vec<Bound<'_, PyAny>> = match v.try_iter() {
        Ok(it) => it.collect::<PyResult<_>>()?,
        Err(_) => return Err(type_err(arg, "a list of str", v)),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| item(&format!("{arg}[{i}]"), x))
        .collect()
}

pub(crate) fn int_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<i64> {
    if v.is_instance_of::<pyo3::types::PyBool>() || !v.is_instance_of::<pyo3::types::PyInt>() {
        return Err(type_err(arg, "an int", v));
    }
    v.extract::<i64>()
        .map_err(|_| config_err(v.py(), arg, "out of range"))
}

pub(crate) fn id_arg(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<u32> {
    let n = int_arg(arg, v)?;
    u32::try_from(n).map_err(|_| config_err(v.py(), arg, format!("{n}: not a user or group id")))
}

/// `env`: a mapping of str to str.
pub(crate) fn env_arg(v: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    str_map("env", v)
}

/// A mapping of str to str (a dict, or anything with `items()`), in its order.
pub(crate) fn str_map(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let Ok(d) = v.downcast::<PyDict>() else {
        let items = v
            .call_method0("items")
            .map_err(|_| type_err(arg, "a dict of str to str", v))?;
        let d = PyDict::new(v.py());
        for kv in items.try_iter()? {
            let (k, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) = kv?.extract()?;
            d.set_item(k, val)?;
        }
        return str_map(arg, d.as_any());
    };
    let mut out = Vec::new();
    for (k, val) in d.iter() {
        let k = str_arg(&format!("{arg} key"), &k)?;
        let val = str_arg(&format!("{arg}[{k:?}]"), &val)?;
        out.push((k, val));
    }
    Ok(out)
}

/// `user`: a uid, or `(uid, gid)`, or `(uid, gid, [additional gids])`.
pub(crate) fn user_arg(v: &Bound<'_, PyAny>) -> PyResult<(u32, u32, Vec<u32>)> {
    if v.is_instance_of::<pyo3::types::PyInt>() && !v.is_instance_of::<pyo3::types::PyBool>() {
        let u = id_arg("user", v)?;
        return Ok((u, u, Vec::new()));
    }
    let want = "an int uid, or a (uid, gid) or (uid, gid, [gids]) tuple";
    let Ok(t) = v.downcast::<pyo3::types::PyTuple>() else {
        return Err(type_err("user", want, v));
    };
    match t.len() {
        2 | 3 => {
            let uid = id_arg("user[0] (uid)", &t.get_item(0)?)?;
            let gid = id_arg("user[1] (gid)", &t.get_item(1)?)?;
            let mut extra = Vec::new();
            if t.len() == 3 {
                let g = t.get_item(2)?;
                let it = g
                    .try_iter()
                    .map_err(|_| type_err("user[2] (additional gids)", "a list of int", &g))?;
                for (i, x) in it.enumerate() {
                    extra.push(id_arg(&format!("user[2][{i}]"), &x?)?);
                }
            }
            Ok((uid, gid, extra))
        }
        _ => Err(type_err("user", want, v)),
    }
}

pub(crate) fn signal_arg(v: &Bound<'_, PyAny>) -> PyResult<i32> {
    let n = int_arg("signal", v)?;
    i32::try_from(n)
        .ok()
        .filter(|s| (1..=64).contains(s))
        .ok_or_else(|| config_err(v.py(), "signal", format!("{n}: not a signal number")))
}

pub(crate) fn timeout_arg(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(type_err("timeout", "a number of seconds", v));
    }
    let s: f64 = v
        .extract()
        .map_err(|_| type_err("timeout", "a number of seconds", v))?;
    if !s.is_finite() || s < 0.0 {
        return Err(PyValueError::new_err(format!(
            "timeout: {s}: must be a number of seconds >= 0"
        )));
    }
    Ok(Some(Duration::from_secs_f64(s.min(1e9))))
}

pub(crate) fn stdio_arg(v: &Bound<'_, PyAny>) -> PyResult<[RawFd; 3]> {
    let (a, b, c): (i64, i64, i64) = v
        .extract()
        .map_err(|_| type_err("stdio", "a tuple of three fds (-1: inherit)", v))?;
    let mut out = [-1; 3];
    for (i, (name, fd)) in [("stdin", a), ("stdout", b), ("stderr", c)]
        .into_iter()
        .enumerate()
    {
        out[i] = i32::try_from(fd)
            .ok()
            .filter(|fd| *fd >= -1)
            .ok_or_else(|| config_err(v.py(), name, format!("{fd}: not a file descriptor")))?;
    }
    Ok(out)
}

/// A list of str (a bare str is refused).
pub(crate) fn str_list(arg: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    list_of(arg, v, str_arg)
}

pub(crate) fn root_arg(root: Option<&Bound<'_, PyAny>>) -> PyResult<PathBuf> {
    match root.filter(|r| !r.is_none()) {
        Some(r) => Ok(PathBuf::from(path_arg("root", r)?)),
        None => Ok(runtime::state::default_root()),
    }
}
