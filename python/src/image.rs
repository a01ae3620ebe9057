//! Images from Python: the functions behind `corral.ImageStore` (import, build, tag, list,
//! remove, prune), each a call of `corral_image` with the GIL released. The store is named
//! by its directory; every call opens it (opening checks its owner and modes).

use std::path::{Path, PathBuf};

use corral_image::build::{BuildEvent, BuildOptions, Dockerfile};
use corral_image::{ImageError, ImageStore, Reference};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::args::{path_arg, root_arg, str_arg, str_list, str_map, type_err};
use crate::errors::config_err;
use crate::errors::image_err;

/// The store directory of a `store` argument (None: `$CORRAL_STORE`, else the default).
pub(crate) fn store_arg(store: Option<&Bound<'_, PyAny>>) -> PyResult<PathBuf> {
    match store.filter(|v| !v.is_none()) {
        Some(s) => Ok(PathBuf::from(path_arg("store", s)?)),
        None => Ok(corral_image::default_store()),
    }
}

/// A `NAME[:TAG]` argument, checked.
fn reference_arg(py: Python<'_>, arg: &str, v: &Bound<'_, PyAny>) -> PyResult<Reference> {
    let s = str_arg(arg, v)?;
    Reference::parse(&s).map_err(|e| config_err(py, arg, e))
}

/// Runs `f` on the store at `dir` without the GIL; its errors become `corral` exceptions.
fn with_store<T: Send>(
    py: Python<'_>,
    dir: &Path,
    f: impl FnOnce(&ImageStore) -> Result<T, ImageError> + Send,
) -> PyResult<T> {
    py.allow_threads(|| ImageStore::open(dir).and_then(|s| f(&s)))
        .map_err(|e| image_err(py, None, e))
}

/// corral's default image store (`$CORRAL_STORE`, else `/var/lib/corral`).
#[pyfunction]
pub(crate) fn default_store() -> String {
    corral_image::default_store().display().to_string()
}

/// Imports `path` (a root filesystem dir or tarball, a `docker save` tarball, an OCI image
/// layout) into the store: a list of `{"id", "names"}`, one per image made. With `name`,
/// the archive must hold one image and gets that name only.
#[pyfunction]
#[pyo3(signature = (store, path, name=None))]
pub(crate) fn image_import<'py>(
    py: Python<'py>,
    store: Option<&Bound<'py, PyAny>>,
    path: &Bound<'py, PyAny>,
    name: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let dir = store_arg(store)?;
    let src = PathBuf::from(path_arg("path", path)?);
    let r = match name.filter(|v| !v.is_none()) {
        Some(n) => Some(reference_arg(py, "name", n)?),
        None => None,
    };
    let made = with_store(py, &dir, |s| {
        let _l = s.lock_shared()?;
        s.import(&src, r.as_ref())
    })?;
    let out = PyList::empty(py);
    for (img, refs) in made {
        let d = PyDict::new(py);
        d.set_item("id", img.id.to_string())?;
        let names: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
        d.set_item("names", names)?;
        out.append(d)?;
    }
    Ok(out)
}

/// A build event as a dict: `event` (its kind), its fields, and `line` (as `docker build`
/// prints it).
fn event_dict<'py>(py: Python<'py>, ev: &BuildEvent) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match ev {
        BuildEvent::Step { n, total, text } => {
            d.set_item("event", "step")?;
            d.set_item("n", n)?;
            d.set_item("total", total)?;
            d.set_item("text", text)?;
        }
        BuildEvent::Base { short_id } => {
            d.set_item("event", "base")?;
            d.set_item("id", short_id)?;
        }
        BuildEvent::UsingCache => d.set_item("event", "cached")?,
        BuildEvent::Running { id } => {
            d.set_item("event", "running")?;
            d.set_item("container", id)?;
        }
        BuildEvent::StepDone { layer, seconds } => {
            d.set_item("event", "step_done")?;
            d.set_item("layer", layer)?;
            d.set_item("seconds", seconds)?;
        }
        BuildEvent::Built { short_id } => {
            d.set_item("event", "built")?;
            d.set_item("id", short_id)?;
        }
        BuildEvent::Tagged { reference } => {
            d.set_item("event", "tagged")?;
            d.set_item("reference", reference.to_string())?;
        }
    }
    d.set_item("line", ev.to_string())?;
    Ok(d)
}

/// Builds the image of the Dockerfile (`dockerfile`, default `CONTEXT/Dockerfile`) in
/// `context`, named `tags`; `progress(event_dict)` is called at each step (with the GIL).
/// Returns `{"id", "short_id", "tags"}`. RUN steps' containers live under `root` while
/// they run; their output goes to this process's stdout and stderr.
#[pyfunction]
#[pyo3(signature = (store, context, dockerfile=None, tags=None, build_args=None, target=None,
                    no_cache=false, network="none", root=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn image_build<'py>(
    py: Python<'py>,
    store: Option<&Bound<'py, PyAny>>,
    context: &Bound<'py, PyAny>,
    dockerfile: Option<&Bound<'py, PyAny>>,
    tags: Option<&Bound<'py, PyAny>>,
    build_args: Option<&Bound<'py, PyAny>>,
    target: Option<&Bound<'py, PyAny>>,
    no_cache: bool,
    network: &str,
    root: Option<&Bound<'py, PyAny>>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let dir = store_arg(store)?;
    let mut tag_refs = Vec::new();
    for (i, t) in str_list("tags", tags)?.iter().enumerate() {
        let arg = format!("tags[{i}]");
        tag_refs.push(Reference::parse(t).map_err(|e| config_err(py, &arg, e))?);
    }
    let host_network = match network {
        "none" => false,
        "host" => true,
        other => {
            return Err(config_err(
                py,
                "network",
                format!("{other:?}: want \"none\" or \"host\""),
            ))
        }
    };
    let opts = BuildOptions {
        context: PathBuf::from(path_arg("context", context)?),
        dockerfile: match dockerfile.filter(|v| !v.is_none()) {
            Some(f) => Dockerfile::Path(PathBuf::from(path_arg("dockerfile", f)?)),
            None => Dockerfile::Context,
        },
        tags: tag_refs,
        build_args: match build_args.filter(|v| !v.is_none()) {
            Some(b) => str_map("build_args", b)?,
            None => Vec::new(),
        },
        target: match target.filter(|v| !v.is_none()) {
            Some(t) => Some(str_arg("target", t)?),
            None => None,
        },
        no_cache,
        host_network,
        networks: Vec::new(),
        state_root: root_arg(root)?,
    };
    let progress = progress
        .filter(|v| !v.is_none())
        .map(|p| p.clone().unbind());
    if let Some(p) = &progress {
        if !p.bind(py).is_callable() {
            return Err(type_err("progress", "a callable", p.bind(py)));
        }
    }
    // The first exception progress raised: the build goes on, and it is raised at the end.
    let mut raised: Option<PyErr> = None;
    let built = py.allow_threads(|| {
        let mut report = |ev: BuildEvent| {
            let Some(p) = &progress else { return };
            if raised.is_some() {
                return;
            }
            Python::with_gil(|py| {
                let r = event_dict(py, &ev).and_then(|d| p.bind(py).call1((d,)));
                if let Err(e) = r {
                    raised = Some(e);
                }
            });
        };
        ImageStore::open(&dir).and_then(|s| corral_image::build::build(&s, &opts, &mut report))
    });
    let img = built.map_err(|e| image_err(py, None, e))?;
    if let Some(e) = raised {
        return Err(e);
    }
    let d = PyDict::new(py);
    d.set_item("id", img.id.to_string())?;
    d.set_item("short_id", img.short_id())?;
    let names: Vec<String> = opts.tags.iter().map(|r| r.to_string()).collect();
    d.set_item("tags", names)?;
    Ok(d)
}

/// Gives the image `source` (a name or image ID) the name `target` as well (moving it if it
/// named another image).
#[pyfunction]
#[pyo3(signature = (store, source, target))]
pub(crate) fn image_tag(
    py: Python<'_>,
    store: Option<&Bound<'_, PyAny>>,
    source: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let dir = store_arg(store)?;
    let source = str_arg("source", source)?;
    let target = reference_arg(py, "target", target)?;
    with_store(py, &dir, |s| {
        let _l = s.lock_shared()?;
        let img = s.resolve(&source)?;
        s.tag(&img, &target)
    })
}

/// One image name of the store, as `image_list` gives it.
struct Row {
    reference: Reference,
    id: String,
    short_id: String,
    created: Option<String>,
    size: u64,
}

/// Every name in the store, sorted: dicts of `reference`, `name`, `tag`, `id`, `short_id`,
/// `created` (RFC 3339, or None) and `size` (bytes of its layers unpacked).
#[pyfunction]
#[pyo3(signature = (store=None))]
pub(crate) fn image_list<'py>(
    py: Python<'py>,
    store: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let dir = store_arg(store)?;
    let rows = with_store(py, &dir, |s| {
        let mut rows = Vec::new();
        for (r, m) in s.tags()? {
            let img = s.image_by_manifest(&m)?;
            let size = img.diff_ids()?.iter().map(|d| s.layer_size(d)).sum();
            rows.push(Row {
                reference: r,
                id: img.id.to_string(),
                short_id: img.short_id().to_string(),
                created: img.config.created().clone(),
                size,
            });
        }
        Ok(rows)
    })?;
    let out = PyList::empty(py);
    for r in rows {
        let d = PyDict::new(py);
        d.set_item("reference", r.reference.to_string())?;
        d.set_item("name", &r.reference.name)?;
        d.set_item("tag", &r.reference.tag)?;
        d.set_item("id", r.id)?;
        d.set_item("short_id", r.short_id)?;
        d.set_item("created", r.created)?;
        d.set_item("size", r.size)?;
        out.append(d)?;
    }
    Ok(out)
}

/// Removes the name `name` (with an image ID: every name of the image); the image itself
/// and the layers only it used go with its last name. A name of an image a live container
/// uses is refused. Returns `{"untagged": [...], "deleted": [...]}`.
#[pyfunction]
#[pyo3(signature = (store, name))]
pub(crate) fn image_remove<'py>(
    py: Python<'py>,
    store: Option<&Bound<'py, PyAny>>,
    name: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let dir = store_arg(store)?;
    let name = str_arg("name", name)?;
    let lines = with_store(py, &dir, |s| {
        let _l = s.lock_exclusive()?;
        s.remove_image(&name)
    })?;
    let (mut untagged, mut deleted) = (Vec::new(), Vec::new());
    for l in lines {
        if let Some(r) = l.strip_prefix("Untagged: ") {
            untagged.push(r.to_string());
        } else if let Some(d) = l.strip_prefix("Deleted: ") {
            deleted.push(d.to_string());
        }
    }
    let d = PyDict::new(py);
    d.set_item("untagged", untagged)?;
    d.set_item("deleted", deleted)?;
    Ok(d)
}

/// Removes everything nothing uses (layers and blobs of no name or live container, stale
/// container records, build cache entries whose layer is gone, temp leftovers): a dict of
/// how many of each went (`layers`, `blobs`, `containers`, `cache`, `temp`) and `bytes`.
#[pyfunction]
#[pyo3(signature = (store=None))]
pub(crate) fn image_prune<'py>(
    py: Python<'py>,
    store: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let dir = store_arg(store)?;
    let r = with_store(py, &dir, |s| {
        let _l = s.lock_exclusive()?;
        s.prune()
    })?;
    let d = PyDict::new(py);
    d.set_item("layers", r.layers)?;
    d.set_item("blobs", r.blobs)?;
    d.set_item("containers", r.containers)?;
    d.set_item("cache", r.cache)?;
    d.set_item("temp", r.temp)?;
    d.set_item("bytes", r.bytes)?;
    Ok(d)
}
