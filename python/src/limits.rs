//! `corral.Limits`: resource limits, checked when made.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use runtime::describe::DeviceRate;
use runtime::Error as RtError;

use crate::args::{int_arg, path_arg, type_err};
use crate::errors::{config_err, raise, rt_err};

/// Resource limits of a container: `corral.Limits(memory="64M", pids=64, cpus=0.5)`.
///
/// memory, memory_swap: bytes, as an int or a str with a suffix k, M, G or T ("64M", "1.5G");
/// memory_swap is memory plus swap (-1: unlimited). pids: the most processes at once (-1:
/// unlimited). cpus: CPU time as a number of CPUs (0.5 is half of one). cpu_shares: the
/// relative CPU weight (2..262144). blkio_weight: the relative block IO weight (10..1000).
/// device_read_bps, device_write_bps: {block device path: bytes per second} (sizes as
/// memory: 1048576 or "1M"); device_read_iops, device_write_iops: {block device path: IO
/// operations per second}. blkio_weight_device: {block device path: weight 10..1000}.
/// cpu_period, cpu_quota: the CFS period and quota in microseconds (not with cpus).
/// cpuset_cpus, cpuset_mems: "0-1,3". memory_reservation: a soft limit (a size, at least
/// 6M). memory_swappiness: 0..100. oom_kill_disable: True. oom_score_adj: -1000..1000.
/// shm_size: the size of /dev/shm. ulimits: {name: limit or (soft, hard)} ("nofile",
/// "nproc"...; -1: unlimited), over the defaults (an image container's open files limit is
/// 1048576, capped at the caller's own hard limit without CAP_SYS_RESOURCE). Values are
/// checked against the host (docker's wording: "Range of CPUs is from 0.01 to 2.00, as
/// there are only 2 CPUs available"). A limit left at None is not set (unlimited for a new container,
/// unchanged for an update). A bad value raises corral.ConfigError naming it.
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

/// `{path: rate}` of a per-device limit `arg`: block device paths to positive rates (sizes
/// as "1M" too when `sizes`), in the mapping's order.
fn rates_arg(arg: &str, v: Option<&Bound<'_, PyAny>>, sizes: bool) -> PyResult<Vec<DeviceRate>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let py = v.py();
    let want = "a dict of block device path to rate";
    let items = match v.downcast::<PyDict>() {
        Ok(d) => d.items().into_any(),
        Err(_) => v
            .call_method0("items")
            .map_err(|_| type_err(arg, want, v))?,
    };
    let mut out = Vec::new();
    for kv in items.try_iter()? {
        let (k, r): (Bound<'_, PyAny>, Bound<'_, PyAny>) = kv?.extract()?;
        let path = path_arg(&format!("{arg} key"), &k)?;
        let item = format!("{arg}[{path:?}]");
        let n = if sizes {
            size_arg(&item, Some(&r), false)?.unwrap_or_default()
        } else {
            int_arg(&item, &r)?
        };
        let rate = u64::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| config_err(py, &item, format!("{n}: must be positive")))?;
        out.push(DeviceRate {
            path: PathBuf::from(path),
            rate,
        });
    }
    Ok(out)
}

/// An argument given and not None.
fn given<'py>(v: Option<&Bound<'py, PyAny>>) -> Option<Bound<'py, PyAny>> {
    v.filter(|v| !v.is_none()).cloned()
}

/// The Python argument that names an OCI resource field.
pub(crate) fn limit_arg_of(field: &str) -> &'static str {
    let f = field.trim_start_matches("linux.resources.");
    let f = f.split('[').next().unwrap_or(f);
    match f {
        "memory.limit" => "memory",
        "memory.swap" => "memory_swap",
        "pids.limit" => "pids",
        "cpu.quota" => "cpus",
        "cpu.shares" => "cpu_shares",
        "blockIO.weight" => "blkio_weight",
        "blockIO.throttleReadBpsDevice" => "device_read_bps",
        "blockIO.throttleWriteBpsDevice" => "device_write_bps",
        "blockIO.throttleReadIOPSDevice" => "device_read_iops",
        "blockIO.throttleWriteIOPSDevice" => "device_write_iops",
        "blockIO.weightDevice" => "blkio_weight_device",
        "cpu.period" => "cpu_period",
        "cpu.cpus" => "cpuset_cpus",
        "cpu.mems" => "cpuset_mems",
        "memory.reservation" => "memory_reservation",
        "memory.swappiness" => "memory_swappiness",
        "cpus" => "cpus",
        "cpu_period" => "cpu_period",
        "cpu_quota" => "cpu_quota",
        "cpu_shares" => "cpu_shares",
        "cpuset_cpus" => "cpuset_cpus",
        "cpuset_mems" => "cpuset_mems",
        "memory" => "memory",
        "memory_swap" => "memory_swap",
        "memory_reservation" => "memory_reservation",
        "memory_swappiness" => "memory_swappiness",
        "blkio_weight" => "blkio_weight",
        "oom_score_adj" => "oom_score_adj",
        "shm_size" => "shm_size",
        "ulimit" => "ulimits",
        _ => "limits",
    }
}

/// A per-device limit as `{path: rate}`.
fn rates_dict<'py>(py: Python<'py>, rates: &[DeviceRate]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for r in rates {
        d.set_item(r.path.display().to_string(), r.rate)?;
    }
    Ok(d)
}

#[pymethods]
impl Limits {
    #[new]
    #[pyo3(signature = (*, memory=None, memory_swap=None, pids=None, cpus=None, cpu_shares=None,
                        blkio_weight=None, device_read_bps=None, device_write_bps=None,
                        device_read_iops=None, device_write_iops=None, blkio_weight_device=None,
                        cpu_period=None, cpu_quota=None, cpuset_cpus=None, cpuset_mems=None,
                        memory_reservation=None, memory_swappiness=None, oom_kill_disable=None,
                        oom_score_adj=None, shm_size=None, ulimits=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        memory: Option<&Bound<'_, PyAny>>,
        memory_swap: Option<&Bound<'_, PyAny>>,
        pids: Option<&Bound<'_, PyAny>>,
        cpus: Option<&Bound<'_, PyAny>>,
        cpu_shares: Option<&Bound<'_, PyAny>>,
        blkio_weight: Option<&Bound<'_, PyAny>>,
        device_read_bps: Option<&Bound<'_, PyAny>>,
        device_write_bps: Option<&Bound<'_, PyAny>>,
        device_read_iops: Option<&Bound<'_, PyAny>>,
        device_write_iops: Option<&Bound<'_, PyAny>>,
        blkio_weight_device: Option<&Bound<'_, PyAny>>,
        cpu_period: Option<&Bound<'_, PyAny>>,
        cpu_quota: Option<&Bound<'_, PyAny>>,
        cpuset_cpus: Option<&Bound<'_, PyAny>>,
        cpuset_mems: Option<&Bound<'_, PyAny>>,
        memory_reservation: Option<&Bound<'_, PyAny>>,
        memory_swappiness: Option<&Bound<'_, PyAny>>,
        oom_kill_disable: Option<&Bound<'_, PyAny>>,
        oom_score_adj: Option<&Bound<'_, PyAny>>,
        shm_size: Option<&Bound<'_, PyAny>>,
        ulimits: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Limits> {
        let opt_int = |arg: &str, v: Option<&Bound<'_, PyAny>>| -> PyResult<Option<i64>> {
            given(v).map(|v| int_arg(arg, &v)).transpose()
        };
        let opt_str = |arg: &str, v: Option<&Bound<'_, PyAny>>| -> PyResult<Option<String>> {
            given(v)
                .map(|v| {
                    v.extract::<String>()
                        .map_err(|_| type_err(arg, "a str such as \"0-1\"", &v))
                })
                .transpose()
        };
        let nonneg = |arg: &str, n: Option<i64>| -> PyResult<Option<u64>> {
            n.map(|n| {
                u64::try_from(n)
                    .map_err(|_| config_err(py, arg, format!("{n}: must not be negative")))
            })
            .transpose()
        };
        let oom_kill_disable = match given(oom_kill_disable) {
            None => None,
            Some(v) => Some(
                v.extract::<bool>()
                    .map_err(|_| type_err("oom_kill_disable", "a bool", &v))?,
            ),
        };
        let oom_score_adj = match opt_int("oom_score_adj", oom_score_adj)? {
            None => None,
            Some(n) => Some(i32::try_from(n).map_err(|_| {
                config_err(
                    py,
                    "oom_score_adj",
                    format!("Invalid value {n}, range for oom score adj is [-1000, 1000]"),
                )
            })?),
        };
        let mut uls: Vec<runtime::describe::Ulimit> = Vec::new();
        if let Some(v) = given(ulimits) {
            let want = "a dict of ulimit name to a limit or (soft, hard)";
            let items = match v.downcast::<PyDict>() {
                Ok(d) => d.items().into_any(),
                Err(_) => v
                    .call_method0("items")
                    .map_err(|_| type_err("ulimits", want, &v))?,
            };
            for kv in items.try_iter()? {
                let (k, lim): (Bound<'_, PyAny>, Bound<'_, PyAny>) = kv?.extract()?;
                let name: String = k.extract().map_err(|_| type_err("ulimits", want, &k))?;
                let item = format!("ulimits[{name:?}]");
                let (soft, hard) = match lim.extract::<(i64, i64)>() {
                    Ok(p) => p,
                    Err(_) => {
                        let n = int_arg(&item, &lim)?;
                        (n, n)
                    }
                };
                let u = runtime::describe::Ulimit::parse(&format!("{name}={soft}:{hard}"))
                    .map_err(|e| match e {
                        RtError::Config { reason, .. } => config_err(py, &item, reason),
                        e => rt_err(py, e),
                    })?;
                uls.retain(|x| x.name != u.name);
                uls.push(u);
            }
        }
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
        let blkio_weight = match blkio_weight.filter(|v| !v.is_none()) {
            None => None,
            Some(v) => {
                let n = int_arg("blkio_weight", v)?;
                Some(u16::try_from(n).map_err(|_| {
                    config_err(py, "blkio_weight", format!("{n}: must be in 10..=1000"))
                })?)
            }
        };
        let inner = runtime::Limits {
            memory: size_arg("memory", memory, false)?,
            memory_swap: size_arg("memory_swap", memory_swap, true)?,
            pids,
            cpus,
            cpu_shares,
            blkio_weight,
            device_read_bps: rates_arg("device_read_bps", device_read_bps, true)?,
            device_write_bps: rates_arg("device_write_bps", device_write_bps, true)?,
            device_read_iops: rates_arg("device_read_iops", device_read_iops, false)?,
            device_write_iops: rates_arg("device_write_iops", device_write_iops, false)?,
            blkio_weight_device: rates_arg("blkio_weight_device", blkio_weight_device, false)?,
            cpu_period: nonneg("cpu_period", opt_int("cpu_period", cpu_period)?)?,
            cpu_quota: opt_int("cpu_quota", cpu_quota)?,
            cpuset_cpus: opt_str("cpuset_cpus", cpuset_cpus)?,
            cpuset_mems: opt_str("cpuset_mems", cpuset_mems)?,
            memory_reservation: size_arg("memory_reservation", memory_reservation, false)?,
            memory_swappiness: nonneg(
                "memory_swappiness",
                opt_int("memory_swappiness", memory_swappiness)?,
            )?,
            oom_kill_disable,
            oom_score_adj,
            shm_size: size_arg("shm_size", shm_size, false)?,
            ulimits: uls,
        };
        // The checks of a config.json first (their errors name the spec's field), then the
        // host's (docker's wording).
        if let Err(e) = inner.check().and_then(|_| inner.check_host()) {
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

    /// The relative block IO weight, or None.
    #[getter]
    fn blkio_weight(&self) -> Option<u16> {
        self.inner.blkio_weight
    }

    /// Read bytes per second, `{device path: rate}`.
    #[getter]
    fn device_read_bps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        rates_dict(py, &self.inner.device_read_bps)
    }

    /// Written bytes per second, `{device path: rate}`.
    #[getter]
    fn device_write_bps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        rates_dict(py, &self.inner.device_write_bps)
    }

    /// Read operations per second, `{device path: rate}`.
    #[getter]
    fn device_read_iops<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        rates_dict(py, &self.inner.device_read_iops)
    }

    /// Write operations per second, `{device path: rate}`.
    #[getter]
    fn device_write_iops<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        rates_dict(py, &self.inner.device_write_iops)
    }

    /// The CFS period in microseconds, or None.
    #[getter]
    fn cpu_period(&self) -> Option<u64> {
        self.inner.cpu_period
    }

    /// The CFS quota in microseconds, or None.
    #[getter]
    fn cpu_quota(&self) -> Option<i64> {
        self.inner.cpu_quota
    }

    /// The CPUs the container may run on, or None.
    #[getter]
    fn cpuset_cpus(&self) -> Option<String> {
        self.inner.cpuset_cpus.clone()
    }

    /// The memory nodes the container may use, or None.
    #[getter]
    fn cpuset_mems(&self) -> Option<String> {
        self.inner.cpuset_mems.clone()
    }

    /// The soft memory limit in bytes, or None.
    #[getter]
    fn memory_reservation(&self) -> Option<i64> {
        self.inner.memory_reservation
    }

    /// The memory swappiness, or None.
    #[getter]
    fn memory_swappiness(&self) -> Option<u64> {
        self.inner.memory_swappiness
    }

    /// The OOM killer is off, or None.
    #[getter]
    fn oom_kill_disable(&self) -> Option<bool> {
        self.inner.oom_kill_disable
    }

    /// The OOM score adjustment, or None.
    #[getter]
    fn oom_score_adj(&self) -> Option<i32> {
        self.inner.oom_score_adj
    }

    /// The size of /dev/shm in bytes, or None.
    #[getter]
    fn shm_size(&self) -> Option<i64> {
        self.inner.shm_size
    }

    /// Block IO weight per device, `{device path: weight}`.
    #[getter]
    fn blkio_weight_device<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        rates_dict(py, &self.inner.blkio_weight_device)
    }

    /// The ulimits set, `{name: (soft, hard)}` (-1: unlimited).
    #[getter]
    fn ulimits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let n = |v: u64| if v == u64::MAX { -1 } else { v as i64 };
        for u in &self.inner.ulimits {
            d.set_item(&u.name, (n(u.soft), n(u.hard)))?;
        }
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
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
        if let Some(v) = l.blkio_weight {
            parts.push(format!("blkio_weight={v}"));
        }
        for (name, rates) in [
            ("device_read_bps", &l.device_read_bps),
            ("device_write_bps", &l.device_write_bps),
            ("device_read_iops", &l.device_read_iops),
            ("device_write_iops", &l.device_write_iops),
        ] {
            if !rates.is_empty() {
                parts.push(format!("{name}={}", rates_dict(py, rates)?.repr()?));
            }
        }
        Ok(format!("Limits({})", parts.join(", ")))
    }
}
