//! `corral._corral.PoolCore`: a warm pool.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;

use crate::args::{args_arg, env_arg, stdio_arg, str_arg};
use crate::container::Core;
use crate::describe::Source;
use crate::errors::{config_err, fail_err, rt_err, Fail};
use crate::wait::{lock, my_pid};

/// The native handle of a warm pool (`corral.Pool` wraps it).
#[pyclass(frozen, module = "corral._corral")]
pub(crate) struct PoolCore {
    pub(crate) root: PathBuf,
    /// `None` once closed.
    pub(crate) pool: Mutex<Option<runtime::Pool>>,
    /// In a child after `os.fork()` the pool is the parent's: it is not used there.
    pub(crate) owner: u32,
}

#[pymethods]
impl PoolCore {
    /// A pool of `size` containers made ahead from `template`'s description (a `Core` that
    /// was not created), ids `ID_PREFIX-PID-N`. The first is made before this returns.
    #[new]
    #[pyo3(signature = (template, size, id_prefix=None))]
    fn new(
        py: Python<'_>,
        template: &Bound<'_, Core>,
        size: &Bound<'_, PyAny>,
        id_prefix: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PoolCore> {
        let t = template.get();
        let size: usize = size
            .extract::<i64>()
            .ok()
            .filter(|n| (1..=4096).contains(n))
            .map(|n| n as usize)
            .ok_or_else(|| config_err(py, "size", "want a number of containers from 1 to 4096"))?;
        let prefix = match id_prefix.filter(|v| !v.is_none()) {
            Some(p) => str_arg("id_prefix", p)?,
            None => "corral-pool".to_string(),
        };
        let bundle = match &t.source {
            None => {
                return Err(config_err(
                    py,
                    "template",
                    "a loaded container cannot be a template",
                ))
            }
            Some(Source::Bundle(b)) => b.clone(),
            Some(Source::Described { d, .. }) if d.network.attaches() => {
                return Err(config_err(
                    py,
                    "networks",
                    "a pool's containers join no network",
                ))
            }
            Some(Source::Described {
                d:
                    d @ runtime::Description {
                        root: runtime::Root::Dir(_),
                        ..
                    },
                ..
            }) => py.allow_threads(|| d.bundle()).map_err(|e| rt_err(py, e))?,
            Some(Source::Described { .. }) => {
                return Err(config_err(
                    py,
                    "image",
                    "a pool is made of a root filesystem or a bundle, not an image",
                ))
            }
        };
        let opts = t.opts.clone();
        let pool = py
            .allow_threads(|| {
                runtime::Pool::new(
                    bundle,
                    opts,
                    runtime::PoolOptions {
                        size,
                        id_prefix: prefix,
                    },
                )
            })
            .map_err(|e| rt_err(py, e))?;
        Ok(PoolCore {
            root: t.root.clone(),
            pool: Mutex::new(Some(pool)),
            owner: my_pid(),
        })
    }

    /// A container of the pool started with `args`, the template's environment plus `env`,
    /// and `stdio`: running when this returns. With `wait`, waits for a ready one rather than
    /// making one here when none is ready.
    #[pyo3(signature = (args, env=None, stdio=None, wait=false))]
    fn take(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyAny>,
        env: Option<&Bound<'_, PyAny>>,
        stdio: Option<&Bound<'_, PyAny>>,
        wait: bool,
    ) -> PyResult<Core> {
        let args = args_arg("args", args)?;
        if args.is_empty() {
            return Err(config_err(py, "args", "empty: give the program to run"));
        }
        let env = match env.filter(|v| !v.is_none()) {
            Some(e) => env_arg(e)?,
            None => Vec::new(),
        };
        let stdio = match stdio.filter(|s| !s.is_none()) {
            Some(s) => stdio_arg(s)?,
            None => [-1; 3],
        };
        if self.owner != my_pid() {
            return Err(config_err(
                py,
                "pool",
                "belongs to the parent process (os.fork)",
            ));
        }
        let c = py
            .allow_threads(|| {
                let g = lock(&self.pool);
                let p = g.as_ref().ok_or(Fail::State("was closed"))?;
                let c = if wait {
                    p.take_ready(&args, &env, stdio)
                } else {
                    p.take(&args, &env, stdio)
                };
                c.map_err(Fail::Rt)
            })
            .map_err(|e| fail_err(py, "pool", e))?;
        let id = c.id().to_string();
        let core = Core::made_of(py, id, self.root.clone(), [-1; 3], Some(c), None);
        core.warn_new(py)?;
        Ok(core)
    }

    /// Containers ready now.
    #[getter]
    fn ready(&self, py: Python<'_>) -> usize {
        py.allow_threads(|| lock(&self.pool).as_ref().map(|p| p.ready()).unwrap_or(0))
    }

    /// Stops the refill and removes every container still waiting in the pool.
    fn close(&self, py: Python<'_>) {
        let p = py.allow_threads(|| lock(&self.pool).take());
        py.allow_threads(|| drop(p));
    }
}

impl Drop for PoolCore {
    fn drop(&mut self) {
        let p = lock(&self.pool).take();
        if self.owner != my_pid() {
            // A copy in a forked child: the parent's pool, not to be torn down here.
            std::mem::forget(p);
        }
    }
}
