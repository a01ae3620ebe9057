//! Images from C: import, build, tag, list, remove and prune in an image store, each one
//! call of the `corral_image` crate's API (the lock each takes is the one the CLI takes).

use std::ffi::{c_char, c_int, c_void};
use std::path::PathBuf;

use corral_image::build::{BuildOptions, Dockerfile};
use corral_image::{ImageStore, Reference};
use serde_json::{json, Value};

use crate::args::*;
use crate::container::root_of;
use crate::error::*;

/// The store at `store` (NULL: $CORRAL_STORE, else /var/lib/corral).
fn open_store(store: *const c_char) -> Result<ImageStore, Fail> {
    let dir = opt_str_arg("store", store)?
        .map(PathBuf::from)
        .unwrap_or_else(corral_image::default_store);
    Ok(ImageStore::open(&dir)?)
}

/// `what` as an image reference ("name[:tag]"); errors name the argument.
fn reference_arg(what: &str, p: *const c_char) -> Result<Reference, Fail> {
    Reference::parse(str_arg(what, p)?).map_err(|e| {
        let mut f = Fail::from(e);
        f.step = Some("argument".into());
        f.path = Some(what.into());
        f
    })
}

/// An image as the JSON of corral_image_import() and corral_image_list().
fn image_json(img: &corral_image::Image, tags: &[Reference]) -> Value {
    json!({
        "id": img.id.to_string(),
        "tags": tags.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
    })
}

/// Writes `v` to `*out` when `out` is not NULL.
fn json_out_opt(out: *mut *mut c_char, v: Value) -> Result<(), Fail> {
    if out.is_null() {
        return Ok(());
    }
    strdup_out(out, v.to_string())
}

/// Imports `src` into the image store `store` (NULL: $CORRAL_STORE, else /var/lib/corral):
/// a `docker save` tarball or directory, an OCI image layout (directory or tar, possibly
/// compressed), or a plain root filesystem (a tarball, as `docker import` takes, or a
/// directory). With `reference` ("name[:tag]") the source must hold one image, which gets
/// that name and only that one; with NULL every image gets the names it carries. Nothing is
/// tagged unless the whole source imports, and a refused one leaves nothing behind. If
/// `json_out` is not NULL, `*json_out` is a JSON array of the images made,
/// `[{"id": "sha256:...", "tags": ["name:tag", ...]}, ...]`; free it with
/// corral_string_free().
#[no_mangle]
pub extern "C" fn corral_image_import(
    store: *const c_char,
    src: *const c_char,
    reference: *const c_char,
    json_out: *mut *mut c_char,
) -> c_int {
    call("corral_image_import", || {
        let src = PathBuf::from(str_arg("src", src)?);
        let r = if reference.is_null() {
            None
        } else {
            Some(reference_arg("reference", reference)?)
        };
        let s = open_store(store)?;
        let made = {
            let _l = s.lock_shared()?;
            s.import(&src, r.as_ref())?
        };
        let v: Vec<Value> = made.iter().map(|(i, t)| image_json(i, t)).collect();
        json_out_opt(json_out, Value::from(v))
    })
}

/// Flag of corral_build_options.flags: run every step again (results still go to the cache).
pub const CORRAL_BUILD_NO_CACHE: u32 = 1;
/// Flag of corral_build_options.flags: RUN steps on the host's network (default: a network
/// namespace of their own, loopback only), as `docker build --network host`.
pub const CORRAL_BUILD_HOST_NETWORK: u32 = 2;

/// How to build an image. Initialise with corral_build_options_init() (which sets `size`),
/// then set fields. Strings are copied.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct corral_build_options {
    /// sizeof(struct corral_build_options), set by corral_build_options_init().
    pub size: u32,
    /// CORRAL_BUILD_NO_CACHE, CORRAL_BUILD_HOST_NETWORK.
    pub flags: u32,
    /// The state directory of the RUN steps' containers (NULL: /run/corral).
    pub state_root: *const c_char,
    /// Build up to the end of the stage of this name (`FROM IMAGE AS NAME`; NULL: to the end).
    pub target: *const c_char,
    /// "KEY=VALUE" build arguments (`build_args_len` of them), as `--build-arg`.
    pub build_args: *const *const c_char,
    /// The number of strings in `build_args`.
    pub build_args_len: usize,
}

const BUILD_DEFAULT: corral_build_options = corral_build_options {
    size: std::mem::size_of::<corral_build_options>() as u32,
    flags: 0,
    state_root: std::ptr::null(),
    target: std::ptr::null(),
    build_args: std::ptr::null(),
    build_args_len: 0,
};

/// Initialises `opts`: sets `size`; the cache used, RUN steps without the host's network,
/// no build arguments.
#[no_mangle]
pub extern "C" fn corral_build_options_init(opts: *mut corral_build_options) {
    call_void("corral_build_options_init", || {
        // SAFETY: a non-NULL `opts` points to a writable struct of this type (the
        // header says so).
        if let Some(o) = unsafe { opts.as_mut() } {
            *o = BUILD_DEFAULT;
        }
    });
}

/// A build's progress callback: called with each line of progress (as `docker build`'s
/// classic output: "Step 1/3 : FROM base", " ---> Using cache", ...), without a newline. The
/// line belongs to the library and is valid during the call only; `user` is the pointer
/// given to corral_image_build().
pub type corral_progress_fn = Option<extern "C" fn(line: *const c_char, user: *mut c_void)>;

fn build_options(
    context: *const c_char,
    dockerfile: *const c_char,
    tags: *const *const c_char,
    tags_len: usize,
    opts: *const corral_build_options,
) -> Result<BuildOptions, Fail> {
    let o = sized("opts", opts, BUILD_DEFAULT)?;
    if o.flags & !(CORRAL_BUILD_NO_CACHE | CORRAL_BUILD_HOST_NETWORK) != 0 {
        return Err(invalid("opts.flags", "unknown flag bits"));
    }
    let mut refs = Vec::new();
    for (i, t) in str_array("tags", tags, tags_len)?.iter().enumerate() {
        let what = format!("tags[{i}]");
        refs.push(Reference::parse(t).map_err(|e| {
            let mut f = Fail::from(e);
            f.path = Some(what);
            f
        })?);
    }
    Ok(BuildOptions {
        context: PathBuf::from(str_arg("context", context)?),
        dockerfile: match opt_str_arg("dockerfile", dockerfile)? {
            Some(p) => Dockerfile::Path(PathBuf::from(p)),
            None => Dockerfile::Context,
        },
        tags: refs,
        build_args: env_pairs(o.build_args, o.build_args_len)?,
        target: opt_str_arg("opts.target", o.target)?.map(str::to_string),
        no_cache: o.flags & CORRAL_BUILD_NO_CACHE != 0,
        host_network: o.flags & CORRAL_BUILD_HOST_NETWORK != 0,
        networks: Vec::new(),
        state_root: root_of(opt_str_arg("opts.state_root", o.state_root)?),
    })
}

/// Builds an image from the Dockerfile `dockerfile` (NULL: `Dockerfile` in the context) and
/// the context directory `context` into the store `store` (NULL: $CORRAL_STORE, else
/// /var/lib/corral), and names it `tags[0..tags_len]` ("name[:tag]"; none: the image is
/// made untagged). `opts` (NULL: the defaults) says the rest. Each line of progress goes to
/// `progress` (NULL: none) with `user`; the output of RUN steps goes to this process's
/// stdout and stderr. If `id_out` is not NULL, `*id_out` is the image's id ("sha256:...");
/// free it with corral_string_free(). The calling process should have no other thread
/// making processes while a RUN step runs (its guard is a forked process, as a command's).
#[no_mangle]
pub extern "C" fn corral_image_build(
    store: *const c_char,
    context: *const c_char,
    dockerfile: *const c_char,
    tags: *const *const c_char,
    tags_len: usize,
    opts: *const corral_build_options,
    progress: corral_progress_fn,
    user: *mut c_void,
    id_out: *mut *mut c_char,
) -> c_int {
    call("corral_image_build", || {
        let bo = build_options(context, dockerfile, tags, tags_len, opts)?;
        let s = open_store(store)?;
        let mut report = |e: corral_image::build::BuildEvent| {
            if let Some(f) = progress {
                let line = cstring_lossy(e.to_string());
                f(line.as_ptr(), user);
            }
        };
        let img = corral_image::build::build(&s, &bo, &mut report)?;
        if id_out.is_null() {
            return Ok(());
        }
        strdup_out(id_out, img.id.to_string())
    })
}

/// Names the image `source` ("name[:tag]", or an image id) of the store `store` (NULL:
/// $CORRAL_STORE, else /var/lib/corral) also `target` ("name[:tag]"), moving that name if
/// another image had it.
#[no_mangle]
pub extern "C" fn corral_image_tag(
    store: *const c_char,
    source: *const c_char,
    target: *const c_char,
) -> c_int {
    call("corral_image_tag", || {
        let source = str_arg("source", source)?;
        let t = reference_arg("target", target)?;
        let s = open_store(store)?;
        let _l = s.lock_shared()?;
        let img = s.resolve(source)?;
        Ok(s.tag(&img, &t)?)
    })
}

/// Writes the tagged images of the store `store` (NULL: $CORRAL_STORE, else
/// /var/lib/corral) as a JSON array to `*json_out`, one entry per tag, sorted by it:
/// `[{"reference": "name:tag", "name", "tag", "id": "sha256:...", "created": "RFC 3339" or
/// null, "size": bytes unpacked}, ...]`; free it with corral_string_free().
#[no_mangle]
pub extern "C" fn corral_image_list(store: *const c_char, json_out: *mut *mut c_char) -> c_int {
    call("corral_image_list", || {
        out_ptr("json_out", json_out)?;
        let s = open_store(store)?;
        let mut v = Vec::new();
        for (r, m) in s.tags()? {
            let img = s.image_by_manifest(&m)?;
            let size: u64 = img.diff_ids()?.iter().map(|d| s.layer_size(d)).sum();
            v.push(json!({
                "reference": r.to_string(),
                "name": r.name,
                "tag": r.tag,
                "id": img.id.to_string(),
                "created": img.config.created(),
                "size": size,
            }));
        }
        strdup_out(json_out, Value::from(v).to_string())
    })
}

/// Removes the name `image` ("name[:tag]") from the store `store` (NULL: $CORRAL_STORE,
/// else /var/lib/corral), or every name of an image given by id; an image left with no name
/// goes with what only it used (its layers, config, manifest). An image a live container
/// uses is refused (-EINVAL, naming the containers).
#[no_mangle]
pub extern "C" fn corral_image_remove(store: *const c_char, image: *const c_char) -> c_int {
    call("corral_image_remove", || {
        let image = str_arg("image", image)?;
        let s = open_store(store)?;
        let _l = s.lock_exclusive()?;
        s.remove_image(image)?;
        Ok(())
    })
}

/// Removes everything nothing uses from the store `store` (NULL: $CORRAL_STORE, else
/// /var/lib/corral): records of containers that are gone, layers and blobs of no named
/// image or live container, build cache entries whose layer is gone, leftovers of commands
/// killed halfway. `*json_out` says what went: `{"layers": N, "blobs": N, "containers": N,
/// "cache": N, "temp": N, "bytes": N}`; free it with corral_string_free().
#[no_mangle]
pub extern "C" fn corral_image_prune(store: *const c_char, json_out: *mut *mut c_char) -> c_int {
    call("corral_image_prune", || {
        out_ptr("json_out", json_out)?;
        let s = open_store(store)?;
        let r = {
            let _l = s.lock_exclusive()?;
            s.prune()?
        };
        let v = json!({
            "layers": r.layers,
            "blobs": r.blobs,
            "containers": r.containers,
            "cache": r.cache,
            "temp": r.temp,
            "bytes": r.bytes,
        });
        strdup_out(json_out, v.to_string())
    })
}
