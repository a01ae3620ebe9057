//! Errors: runtime and image errors as the exception classes of `corral.errors`.

use corral_image::ImageError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use runtime::Error as RtError;

/// Raises `corral.errors.<class>(message, step=, errno=, path=)`.
pub(crate) fn raise(
    py: Python<'_>,
    class: &str,
    message: String,
    step: Option<String>,
    errno: Option<i32>,
    path: Option<String>,
) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let cls = py.import("corral.errors")?.getattr(class)?;
        let kw = PyDict::new(py);
        kw.set_item("step", step)?;
        kw.set_item("errno", errno)?;
        kw.set_item("path", path)?;
        Ok(PyErr::from_value(cls.call((message,), Some(&kw))?))
    })();
    made.unwrap_or_else(|e| e)
}

/// The Python exception for a runtime error: its class by kind, its step, errno and path.
pub(crate) fn rt_err(py: Python<'_>, e: RtError) -> PyErr {
    let class = match &e {
        RtError::Bundle { .. }
        | RtError::ConfigParse { .. }
        | RtError::Config { .. }
        | RtError::InvalidId { .. } => "ConfigError",
        RtError::NotFound(_) => "NotFoundError",
        RtError::State { .. } | RtError::AlreadyExists(_) => "StateError",
        _ => "SpawnError",
    };
    raise(
        py,
        class,
        e.to_string(),
        Some(e.step()),
        Some(e.errno()),
        e.path(),
    )
}

/// A `corral.ConfigError` for the Python argument `arg`.
pub(crate) fn config_err(py: Python<'_>, arg: &str, reason: impl std::fmt::Display) -> PyErr {
    raise(
        py,
        "ConfigError",
        format!("{arg}: {reason}"),
        Some("config".into()),
        Some(libc::EINVAL),
        Some(arg.to_string()),
    )
}

/// A `corral.StateError` for a call the container's state does not allow.
pub(crate) fn state_err(py: Python<'_>, id: &str, what: &str) -> PyErr {
    raise(
        py,
        "StateError",
        format!("container {id:?} {what}"),
        Some("state".into()),
        Some(libc::EBUSY),
        None,
    )
}

/// What a call run without the GIL can fail with.
pub(crate) enum Fail {
    Rt(RtError),
    /// The container is not created yet, or was deleted (the words say which).
    State(&'static str),
    /// A system call of this module's own (`what`, errno).
    Sys(&'static str, i32),
    /// A signal arrived while waiting: Python's handlers must run (with the GIL).
    Interrupted,
    /// The image store said no (a missing image: `NotFoundError`).
    Image(ImageError),
    /// Networking said no (bad input: `ConfigError`; a missing network: `NotFoundError`;
    /// a failing CNI plugin: `SpawnError` at step `network`).
    Net(Box<runtime::net::Error>),
}

impl From<corral_image::Error> for Fail {
    fn from(e: corral_image::Error) -> Fail {
        match e {
            corral_image::Error::Image(e) => Fail::Image(e),
            corral_image::Error::Runtime(e) => Fail::Rt(e),
            corral_image::Error::Net(e) => Fail::Net(e),
        }
    }
}

impl From<RtError> for Fail {
    fn from(e: RtError) -> Fail {
        Fail::Rt(e)
    }
}

pub(crate) fn fail_err(py: Python<'_>, id: &str, f: Fail) -> PyErr {
    match f {
        Fail::Rt(e) => rt_err(py, e),
        Fail::State(what) => state_err(py, id, what),
        Fail::Sys(what, errno) => raise(
            py,
            "SpawnError",
            format!(
                "container {id:?}: {what}: {}",
                std::io::Error::from_raw_os_error(errno)
            ),
            Some(what.to_string()),
            Some(errno),
            None,
        ),
        Fail::Image(e) => image_err(py, Some(id), e),
        Fail::Net(e) => crate::network::net_err(py, None, *e),
        Fail::Interrupted => match py.check_signals() {
            Err(e) => e,
            Ok(()) => raise(
                py,
                "Error",
                "interrupted".into(),
                None,
                Some(libc::EINTR),
                None,
            ),
        },
    }
}

/// The Python exception for an image store error (`id`: the container it was for): a
/// missing image is a `NotFoundError`, a bad name or archive a `ConfigError`, a failure of
/// the store (a file, a layer) an `ImageError`; `step` is "image".
pub(crate) fn image_err(py: Python<'_>, id: Option<&str>, e: ImageError) -> PyErr {
    let class = match e {
        ImageError::NotFound(_) => "NotFoundError",
        ImageError::Invalid(_) | ImageError::Json { .. } => "ConfigError",
        _ => "ImageError",
    };
    let path = match &e {
        ImageError::Io { path, .. } | ImageError::Json { path, .. } => {
            Some(path.display().to_string())
        }
        _ => None,
    };
    let message = match id {
        Some(id) => format!("container {id:?}: {e}"),
        None => e.to_string(),
    };
    raise(
        py,
        class,
        message,
        Some("image".into()),
        Some(e.errno()),
        path,
    )
}
