//! `corral._corral`: the native core of the Python module `corral`.
//!
//! This crate maps Python arguments, objects and errors onto the library API of `runtime`
//! and `corral_image`: a container is a `runtime::Description` (a root filesystem directory
//! or an image of a store) made by `corral_image::create`, or a bundle directory; then
//! `Container` and `ExecProcess`; images are `corral_image`'s store and build. It holds no
//! container or image logic of its own. The Python package around it (`corral/`) adds what
//! is Python's: `run` in the shape of `subprocess.run` (pipes, input, timeouts), the context
//! manager, `asyncio` waiting, `ImageStore` and the exception and warning classes.
//!
//! | module | what |
//! |---|---|
//! | `errors` | runtime and image errors as `corral.errors` classes |
//! | `args` | Python values to strings, numbers, fds (errors name the argument) |
//! | `limits`, `mounts` | `corral.Limits` and `corral.Mount` |
//! | `network` | the network keywords, a container's attachments, a store's networks |
//! | `describe` | `Container(...)`'s keywords to a `Description` (or a bundle) |
//! | `container` | `Core`, the handle of one container; its warnings to `warnings.warn` |
//! | `exec` | `Process`, a process exec'd into a container |
//! | `wait` | waiting on pidfds without holding a lock |
//! | `pool` | `PoolCore`, a warm pool |
//! | `image` | import, build, tag, list, remove, prune |
//!
//! It promises that every call that can block (create, start, wait, signal, pause, resume,
//! update, stats, exec, delete, load, list, and the image calls) runs with the GIL released, that no lock of a
//! container is held while the GIL is wanted (so threads cannot deadlock on the pair), and
//! that a container is waited for on its pidfd, never with a thread of its own. It never
//! panics on input: bad arguments become `TypeError` or `corral.ConfigError` naming the
//! argument.

mod args;
mod container;
mod describe;
mod errors;
mod exec;
mod image;
mod limits;
mod mounts;
mod network;
mod pool;
mod wait;

use pyo3::prelude::*;
use pyo3::types::PyList;
use runtime::Error as RtError;

use crate::args::{root_arg, str_arg};
use crate::container::{state_dict, Core};
use crate::errors::rt_err;
use crate::exec::Process;
use crate::limits::Limits;
use crate::mounts::Mount;
use crate::pool::PoolCore;

// ---------------------------------------------------------------------------------------
// Module functions

/// The containers under `root` (default: corral's state root) as a list of dicts (`id`,
/// `status`, `pid`, `bundle`, `created`, `annotations`), sorted by id. A container that
/// vanishes while listed is left out.
#[pyfunction]
#[pyo3(signature = (root=None))]
fn list_states<'py>(
    py: Python<'py>,
    root: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let root = root_arg(root)?;
    let states = py
        .allow_threads(|| -> Result<Vec<runtime::State>, RtError> {
            let mut out = Vec::new();
            for id in runtime::state::list_ids(&root)? {
                match runtime::Container::listed_state(&root, &id) {
                    Ok(st) => out.push(st),
                    Err(RtError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
        .map_err(|e| rt_err(py, e))?;
    let l = PyList::empty(py);
    for st in &states {
        l.append(state_dict(py, st)?)?;
    }
    Ok(l)
}

/// Removes whatever is left of the container `id` under `root`, however little of it was
/// made (`corral delete --force`). An id with nothing left is not an error.
#[pyfunction]
#[pyo3(signature = (id, root=None))]
fn force_delete(
    py: Python<'_>,
    id: &Bound<'_, PyAny>,
    root: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let id = str_arg("id", id)?;
    let root = root_arg(root)?;
    py.allow_threads(|| runtime::Container::force_delete(&root, &id))
        .map_err(|e| rt_err(py, e))
}

/// corral's default state root (`/run/corral`, or `$XDG_RUNTIME_DIR/corral` for a user).
#[pyfunction]
fn default_root() -> String {
    runtime::state::default_root().display().to_string()
}

/// Bytes in a size such as "64M" (k, M, G, T: powers of 1024); `what` names it in errors.
#[pyfunction]
fn parse_size(py: Python<'_>, what: &str, size: &str) -> PyResult<i64> {
    runtime::parse_size(what, size).map_err(|e| rt_err(py, e))
}

/// The native core of the module `corral`; use `corral` itself.
#[pymodule]
fn _corral(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Limits>()?;
    m.add_class::<Mount>()?;
    m.add_class::<Core>()?;
    m.add_class::<PoolCore>()?;
    m.add_class::<Process>()?;
    m.add_function(wrap_pyfunction!(list_states, m)?)?;
    m.add_function(wrap_pyfunction!(force_delete, m)?)?;
    m.add_function(wrap_pyfunction!(default_root, m)?)?;
    m.add_function(wrap_pyfunction!(parse_size, m)?)?;
    m.add_function(wrap_pyfunction!(image::default_store, m)?)?;
    m.add_function(wrap_pyfunction!(image::image_import, m)?)?;
    m.add_function(wrap_pyfunction!(image::image_build, m)?)?;
    m.add_function(wrap_pyfunction!(image::image_tag, m)?)?;
    m.add_function(wrap_pyfunction!(image::image_list, m)?)?;
    m.add_function(wrap_pyfunction!(image::image_remove, m)?)?;
    m.add_function(wrap_pyfunction!(image::image_prune, m)?)?;
    m.add_function(wrap_pyfunction!(network::network_create, m)?)?;
    m.add_function(wrap_pyfunction!(network::network_list, m)?)?;
    m.add_function(wrap_pyfunction!(network::network_remove, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let phases: Vec<&str> = runtime::timings::CREATE_PHASES
        .iter()
        .copied()
        .chain([runtime::timings::START_PHASE])
        .collect();
    m.add("PHASES", phases)?;
    Ok(())
}
