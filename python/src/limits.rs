//! `corral.Limits`: resource limits, checked when made.

use pyo3::prelude::*;
use pyo3::types::PyString;
use runtime::Error as RtError;

use crate::args::{int_arg, type_err};
use crate::errors::{config_err, raise, rt_err};

/// Resource limits of a container: `corral.Limits(memory="64M", pids=64, cpus=0.5)`.
///
/// memory, memory_swap: bytes, as an int or a str with a suffix k, M, G or T ("64M", "1.5G");
/// memory_swap is memory plus swap (-1: unlimited). pids: the most processes at once (-1:
/// unlimited). cpus: CPU time as a number of CPUs (0.5 is half of one). cpu_shares: the
/// relative CPU weight (2..262144). A limit left at None is not set (unlimited for a new
/// container, unchanged for an update). A bad value raises corral.ConfigError naming it.
#[pyclass(frozen, eq, module = "corral")]
#[derive(Clone, PartialEq)]
pub(crate) struct Limits {
    pub(crate) inner: runtime::Limits,
}

pub(crate) fn size_arg(
    arg: &str,
    v: Option<&Bound<'_, PyAny>>,
    allow_unlimited: bool,
) -> PyResult<Option<i64>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let py = v.py();
    if v.is_instance_of::<PyString>() {
        let s: String = v.extract()?;
        if allow_unlimited && s.trim() == "-1" {
            return Ok(Some(-1));
        }
        return runtime::parse_size(arg, &s).map(Some).map_err(|_| {
            config_err(
                py,
                arg,
                format!("{s:?} is not a size (want bytes, or a number with k, M, G or T)"),
            )
        });
    }
    let n =
        int_arg(arg, v).map_err(|_| type_err(arg, "an int (bytes) or a str such as \"64M\"", v))?;
    Ok(Some(n))
}

/// The Python argument that names an OCI resource field.
pub(crate) fn limit_arg_of(field: &str) -> &'static str {
    match field.trim_start_matches("linux.resources.") {
        "memory.limit" => "memory",
        "memory.swap" => "memory_swap",
        "pids.limit" => "pids",
        "cpu.quota" => "cpus",
        "cpu.shares" => "cpu_shares",
        _ => "limits",
    }
}

#[pymethods]
impl Limits {
    #[new]
    #[pyo3(signature = (*, memory=None, memory_swap=None, pids=None, cpus=None, cpu_shares=None))]
    fn new(
        py: Python<'_>,
        memory: Option<&Bound<'_, PyAny>>,
        memory_swap: Option<&Bound<'_, PyAny>>,
        pids: Option<&Bound<'_, PyAny>>,
        cpus: Option<&Bound<'_, PyAny>>,
        cpu_shares: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Limits> {
        let cpus = match cpus.filter(|v| !v.is_none()) {
            None => None,
            Some(v) if v.is_instance_of::<pyo3::types::PyBool>() => {
                return Err(type_err("cpus", "a number of CPUs", v))
            }
            Some(v) => Some(
                v.extract::<f64>()
                    .map_err(|_| type_err("cpus", "a number of CPUs", v))?,
            ),
        };
        let cpu_shares = match cpu_shares.filter(|v| !v.is_none()) {
            None => None,
            Some(v) => {
                let n = int_arg("cpu_shares", v)?;
                Some(u64::try_from(n).map_err(|_| {
                    config_err(py, "cpu_shares", format!("{n}: must be in 2..=262144"))
                })?)
            }
        };
        let pids = match pids.filter(|v| !v.is_none()) {
            None => None,
            Some(v) => Some(int_arg("pids", v)?),
        };
        let inner = runtime::Limits {
            memory: size_arg("memory", memory, false)?,
            memory_swap: size_arg("memory_swap", memory_swap, true)?,
            pids,
            cpus,
            cpu_shares,
            ..Default::default()
        };
        if let Err(e) = inner.check() {
            return Err(match e {
                RtError::Config { field, reason } => {
                    let arg = limit_arg_of(&field);
                    raise(
                        py,
                        "ConfigError",
                        format!("{arg}: {reason} ({field})"),
                        Some("config".into()),
                        Some(libc::EINVAL),
                        Some(arg.to_string()),
                    )
                }
                e => rt_err(py, e),
            });
        }
        Ok(Limits { inner })
    }

    /// The memory limit in bytes, or None.
    #[getter]
    fn memory(&self) -> Option<i64> {
        self.inner.memory
    }

    /// The memory plus swap limit in bytes (-1: unlimited), or None.
    #[getter]
    fn memory_swap(&self) -> Option<i64> {
        self.inner.memory_swap
    }

    /// The most processes at once (-1: unlimited), or None.
    #[getter]
    fn pids(&self) -> Option<i64> {
        self.inner.pids
    }

    /// CPU time as a number of CPUs, or None.
    #[getter]
    fn cpus(&self) -> Option<f64> {
        self.inner.cpus
    }

    /// The relative CPU weight, or None.
    #[getter]
    fn cpu_shares(&self) -> Option<u64> {
        self.inner.cpu_shares
    }

    fn __repr__(&self) -> String {
        let l = &self.inner;
        let mut parts = Vec::new();
        if let Some(v) = l.memory {
            parts.push(format!("memory={v}"));
        }
        if let Some(v) = l.memory_swap {
            parts.push(format!("memory_swap={v}"));
        }
        if let Some(v) = l.pids {
            parts.push(format!("pids={v}"));
        }
        if let Some(v) = l.cpus {
            parts.push(format!("cpus={v}"));
        }
        if let Some(v) = l.cpu_shares {
            parts.push(format!("cpu_shares={v}"));
        }
        format!("Limits({})", parts.join(", "))
    }
}
