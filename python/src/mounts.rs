//! `corral.Mount`: one mount of a container.

use pyo3::prelude::*;

use crate::args::{args_arg, path_arg};

/// One mount of a container: `Mount(destination, source, type="bind", options=[...])`, or
/// `Mount.bind(source, destination, readonly=False)`, or `Mount.tmpfs(destination)`.
///
/// destination is absolute, inside the container; source is a host path for a bind mount
/// (else a name such as "tmpfs"); options are mount options as in an OCI config ("ro",
/// "nosuid", "size=64m"...).
#[pyclass(frozen, eq, module = "corral")]
#[derive(Clone, PartialEq)]
pub(crate) struct Mount {
    pub(crate) inner: runtime::Mount,
}

#[pymethods]
impl Mount {
    #[new]
    #[pyo3(signature = (destination, source, r#type="bind", options=None))]
    fn new(
        destination: &Bound<'_, PyAny>,
        source: &Bound<'_, PyAny>,
        r#type: &str,
        options: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Mount> {
        let kind = r#type.to_string();
        let mut opts = match options.filter(|o| !o.is_none()) {
            Some(o) => args_arg("options", o)?,
            None => Vec::new(),
        };
        if kind == "bind" && opts.is_empty() {
            opts = vec!["rbind".into(), "nosuid".into(), "nodev".into()];
        }
        Ok(Mount {
            inner: runtime::Mount {
                destination: path_arg("destination", destination)?,
                kind,
                source: path_arg("source", source)?,
                options: opts,
            },
        })
    }

    /// A bind mount of the host path `source` at `destination` (read-only if `readonly`).
    #[staticmethod]
    #[pyo3(signature = (source, destination, readonly=false))]
    fn bind(
        source: &Bound<'_, PyAny>,
        destination: &Bound<'_, PyAny>,
        readonly: bool,
    ) -> PyResult<Mount> {
        Ok(Mount {
            inner: runtime::Mount::bind(
                path_arg("source", source)?,
                path_arg("destination", destination)?,
                readonly,
            ),
        })
    }

    /// An empty tmpfs at `destination`.
    #[staticmethod]
    fn tmpfs(destination: &Bound<'_, PyAny>) -> PyResult<Mount> {
        Ok(Mount {
            inner: runtime::Mount::tmpfs(path_arg("destination", destination)?),
        })
    }

    /// Where it goes, inside the container.
    #[getter]
    fn destination(&self) -> &str {
        &self.inner.destination
    }

    /// The host path (bind mounts) or the name of the source.
    #[getter]
    fn source(&self) -> &str {
        &self.inner.source
    }

    /// The filesystem type ("bind", "tmpfs", ...).
    #[getter]
    fn r#type(&self) -> &str {
        &self.inner.kind
    }

    /// The mount options.
    #[getter]
    fn options(&self) -> Vec<String> {
        self.inner.options.clone()
    }

    fn __repr__(&self) -> String {
        let m = &self.inner;
        format!(
            "Mount({:?}, {:?}, type={:?}, options={:?})",
            m.destination, m.source, m.kind, m.options
        )
    }
}
