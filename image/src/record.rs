//! Containers made from images: the store's record of each (which keeps its image's layers
//! in use), its bundle, and the one create and one remove every face calls.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use runtime::describe::{Description, Root};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, io_err, ImageError, Result};
use crate::store::{mkdir, write_atomic, Image, ImageStore};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The container id.
    pub id: String,
    /// The state root its state lives under.
    pub state_root: PathBuf,
    /// The image it was made from: manifest digest.
    pub manifest: String,
    /// The image's reference as given, for display.
    pub image: String,
    /// Its layers' diff IDs, bottom first.
    pub layers: Vec<String>,
    /// The process that made it, and that process's start time: a record is in use while
    /// that process lives, even before the container's state dir exists.
    pub creator_pid: i32,
    pub creator_start_time: u64,
    /// Kept until it is removed on purpose (an engine's container, `corral_engine`): live
    /// for prune whatever its state, never forgotten by [`forget_container`], and its dir
    /// (with the writable layer in it) survives a new create of the same id.
    #[serde(default)]
    pub keep: bool,
    /// The dir of the writable layer (`upper/`, `work/`) when it is not in the state dir
    /// ([`runtime::Options::upper`]): a kept record's own dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<PathBuf>,
}

impl ContainerRecord {
    /// Is the record in use: kept, or its container there (its state dir) or being made?
    pub fn live(&self) -> bool {
        self.keep || self.in_use()
    }

    /// Is the container there (its state dir) or being made (its creator alive)?
    pub fn in_use(&self) -> bool {
        if self.state_root.join(&self.id).exists() {
            return true;
        }
        self.creator_pid > 0
            && runtime::state::pid_start_time(self.creator_pid) == self.creator_start_time
            && self.creator_start_time != 0
    }

    /// Its writable layer (overlay upper dir): in [`ContainerRecord::upper`] when set, else
    /// in its state dir.
    pub fn upper_dir(&self) -> PathBuf {
        match &self.upper {
            Some(d) => d.join("upper"),
            None => runtime::state::overlay_paths(&self.state_root.join(&self.id)).1,
        }
    }
}

/// Makes what container `id` of an image needs (for every face): the store's record of it
/// (which keeps its layers in use), its bundle (`d` merged with the image's config, see
/// [`crate::describe::describe_image`], checked as a `config.json` is and written as one in
/// the record) and the layer dirs its root is an overlay of (for
/// [`runtime::Options::layers`]). `d`'s root must be [`Root::Image`]. The state will live
/// under `state_root`.
pub fn prepare_container(
    store: &ImageStore,
    id: &str,
    d: &Description,
    state_root: &Path,
) -> std::result::Result<(runtime::Bundle, Vec<PathBuf>), crate::Error> {
    let Root::Image(image) = &d.root else {
        return Err(invalid("not an image container: its root is a directory").into());
    };
    let _lock = store.lock_shared()?;
    let img = resolve_pinned(store, image)?;
    let dirs = store.layer_dirs(&img.diff_ids()?)?;
    let mut d = d.clone();
    crate::volume::mount_volumes(store.root(), id, &img.config, &dirs, &mut d)?;
    let spec = crate::describe::describe_image(id, &img.config, &dirs, &d)?.to_spec()?;
    let value =
        serde_json::to_value(&spec).map_err(|e| invalid(format!("encoding config.json: {e}")))?;
    let dir = store.record_container(id, state_root, &img, image, &value)?;
    match runtime::Bundle::from_spec(dir, spec) {
        Ok(b) => Ok((b, dirs)),
        Err(e) => {
            let _ = store.forget_unkept(id);
            Err(e.into())
        }
    }
}

/// The image `name` names: a reference or an id of a tagged image ([`ImageStore::resolve`]),
/// or a manifest digest in full (`sha256:` and 64 hex digits), which names the image even
/// when no tag is left on it (a kept container's image, pinned at its create).
pub fn resolve_pinned(store: &ImageStore, name: &str) -> Result<Image> {
    if let Some(hex) = name.strip_prefix("sha256:") {
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Ok(d) = unionfs::Digest::parse(name) {
                if let Ok(img) = store.image_by_manifest(&d) {
                    return Ok(img);
                }
            }
        }
    }
    store.resolve(name)
}

/// Forgets the store's record of container `id` once its state under `state_root` is gone
/// (after a delete). Anything else is left as it is.
pub fn forget_container(store_dir: &Path, state_root: &Path, id: &str) {
    if !store_dir.join("containers").join(id).is_dir() {
        return;
    }
    if let Ok(store) = ImageStore::open(store_dir) {
        if let Ok(Some(rec)) = store.container(id) {
            if rec.state_root == state_root && !rec.keep && !state_root.join(id).exists() {
                let _ = store.remove_container(id);
            }
        }
    }
}

impl ImageStore {
    // ---- containers ----

    /// The directory of the container `id`'s record and bundle.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// Record that container `id` (state under `state_root`) is being made from `image`,
    /// and write its bundle (`spec` as config.json). Returns the bundle dir. A live
    /// container of that id is refused.
    pub fn record_container(
        &self,
        id: &str,
        state_root: &Path,
        image: &Image,
        image_name: &str,
        spec: &serde_json::Value,
    ) -> Result<PathBuf> {
        runtime::state::check_id(id).map_err(|e| invalid(e.to_string()))?;
        let old = self.container(id)?;
        if let Some(old) = &old {
            // A kept record is made on again and again (its engine starts it); its container
            // is there only if its state dir is (checked below).
            if !old.keep && old.in_use() {
                return Err(invalid(format!("container {id:?} already exists")));
            }
        }
        if state_root.join(id).exists() {
            return Err(invalid(format!(
                "container {id:?} already exists in {}",
                state_root.display()
            )));
        }
        let dir = self.container_dir(id);
        // A kept record's dir holds its writable layer and its engine's files: kept.
        let kept = old.filter(|o| o.keep);
        if kept.is_none() {
            let _ = fs::remove_dir_all(&dir);
        }
        mkdir(&dir)?;
        // SAFETY: plain getter.
        let me = unsafe { libc::getpid() };
        let rec = ContainerRecord {
            id: id.to_string(),
            state_root: state_root.to_path_buf(),
            manifest: image.manifest_digest.to_string(),
            image: kept
                .as_ref()
                .map(|k| k.image.clone())
                .unwrap_or_else(|| image_name.to_string()),
            layers: image.diff_ids()?.iter().map(|d| d.to_string()).collect(),
            creator_pid: me,
            creator_start_time: runtime::state::pid_start_time(me),
            keep: kept.is_some(),
            upper: kept.and_then(|k| k.upper),
        };
        let text = serde_json::to_vec_pretty(&rec)
            .map_err(|e| invalid(format!("encoding container record: {e}")))?;
        write_atomic(&dir.join("image.json"), &text)?;
        let spec_text = serde_json::to_vec_pretty(spec)
            .map_err(|e| invalid(format!("encoding config.json: {e}")))?;
        write_atomic(&dir.join("config.json"), &spec_text)?;
        Ok(dir)
    }

    /// Records container `id` (state under `state_root`) of `image` (named `image_name` by
    /// its user) as a **kept** record: live until [`ImageStore::remove_container`], its
    /// writable layer in its own dir (`upper/`, `work/`; see [`runtime::Options::upper`]).
    /// Nothing runs; a later [`create`] of that id (the engine's start) makes the container
    /// on this record, keeping its dir. Returns the dir. An id that has a record is refused.
    pub fn record_kept(
        &self,
        id: &str,
        state_root: &Path,
        image: &Image,
        image_name: &str,
    ) -> Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        runtime::state::check_id(id).map_err(|e| invalid(e.to_string()))?;
        let dir = self.container_dir(id);
        // Only root enters it: the writable layer is in it (a set-user-ID binary the
        // container wrote must not be reachable through the host's paths).
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => {
                    invalid(format!("container {id:?} already has a record"))
                }
                _ => io_err("mkdir", &dir)(e),
            })?;
        let rec = ContainerRecord {
            id: id.to_string(),
            state_root: state_root.to_path_buf(),
            manifest: image.manifest_digest.to_string(),
            image: image_name.to_string(),
            layers: image.diff_ids()?.iter().map(|d| d.to_string()).collect(),
            creator_pid: 0,
            creator_start_time: 0,
            keep: true,
            upper: Some(dir.clone()),
        };
        let text = serde_json::to_vec_pretty(&rec)
            .map_err(|e| invalid(format!("encoding container record: {e}")))?;
        if let Err(e) = write_atomic(&dir.join("image.json"), &text) {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(dir)
    }

    /// Forgets container `id`'s record unless it is kept (the undo of a failed create).
    pub fn forget_unkept(&self, id: &str) -> Result<()> {
        match self.container(id) {
            Ok(Some(r)) if r.keep => Ok(()),
            _ => self.remove_container(id),
        }
    }

    /// The record of container `id`, if it was made from an image of this store.
    pub fn container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        if runtime::state::check_id(id).is_err() {
            return Ok(None);
        }
        let p = self.container_dir(id).join("image.json");
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| ImageError::Json {
                    path: p,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &p)(e)),
        }
    }

    /// Forget container `id` (its record and bundle).
    pub fn remove_container(&self, id: &str) -> Result<()> {
        if runtime::state::check_id(id).is_err() {
            return Ok(());
        }
        let d = self.container_dir(id);
        match fs::remove_dir_all(&d) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &d)(e)),
        }
    }

    /// Every container record, live or stale.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        let d = self.root.join("containers");
        let mut out = Vec::new();
        for e in fs::read_dir(&d).map_err(io_err("readdir", &d))? {
            let e = e.map_err(io_err("readdir", &d))?;
            if let Some(name) = e.file_name().to_str() {
                if let Ok(Some(r)) = self.container(name) {
                    out.push(r);
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// Makes container `id` as `d` describes it, its state under `state_root`: the one create
/// of every face. A directory root is [`Description::bundle`] then
/// `Container::create_from`; an image root (an image of the store at `store_dir`) is the
/// store's record and bundle ([`prepare_container`]), then the container on an overlay of
/// the image's layers (`opts` with its `root` and `layers` set here). On failure nothing is
/// left: a container the runtime half-made is removed by the runtime, and the record goes
/// unless another command made a container of that id meanwhile.
pub fn create(
    store_dir: &Path,
    state_root: &Path,
    id: &str,
    d: &Description,
    opts: &runtime::Options,
) -> std::result::Result<runtime::Container, crate::Error> {
    let opts = runtime::Options {
        root: state_root.to_path_buf(),
        ..opts.clone()
    };
    let mut d = d.clone();
    // The networks' hosts files, bound into the root, exist before the container.
    let plan = crate::network::plan(store_dir, id, &mut d)?;
    let made = make(store_dir, state_root, id, &d, &opts);
    let (Some(plan), Ok(c)) = (&plan, &made) else {
        if let (Some(p), Err(_)) = (&plan, &made) {
            p.undo(id);
        }
        return made;
    };
    // The container's network namespace exists now (its process waits for start): attach.
    match plan.attach(id, state_root, c.pid()) {
        Ok(_) => made,
        Err(e) => {
            if let Ok(c) = made {
                let _ = c.delete_checked(true);
            }
            plan.undo(id);
            forget_container(store_dir, state_root, id);
            Err(e)
        }
    }
}

/// The container of [`create`], before its networks.
fn make(
    store_dir: &Path,
    state_root: &Path,
    id: &str,
    d: &Description,
    opts: &runtime::Options,
) -> std::result::Result<runtime::Container, crate::Error> {
    if let Root::Dir(_) = d.root {
        return Ok(runtime::Container::create_from(id, &d.bundle()?, opts)?);
    }
    let store = ImageStore::open(store_dir)?;
    // The record keeps the layers in use from here on: no lock is held while it runs.
    let (bundle, layers) = prepare_container(&store, id, d, state_root)?;
    let opts = runtime::Options {
        layers,
        ..opts.clone()
    };
    match runtime::Container::create_from(id, &bundle, &opts) {
        Ok(c) => Ok(c),
        Err(e) => {
            if !state_root.join(id).exists() {
                store.forget_unkept(id)?;
            }
            Err(e.into())
        }
    }
}

/// Removes container `id` (state under `state_root`) with everything it made: the
/// container through the runtime (a running or paused one only with `force`, which also
/// removes whatever is left of a half-made one, and takes a missing one for done), then the
/// record of the store at `store_dir`, if it was made from an image.
pub fn remove(
    store_dir: &Path,
    state_root: &Path,
    id: &str,
    force: bool,
) -> std::result::Result<(), crate::Error> {
    let res = runtime::Container::delete_by_id(state_root, id, force);
    let net = if res.is_ok() || !state_root.join(id).exists() {
        crate::network::detach(store_dir, id, force)
    } else {
        Ok(())
    };
    forget_container(store_dir, state_root, id);
    res?;
    net
}

/// Deletes container `c` through the handle that owns it (a running or paused one only
/// with `force`), then the record of the store at `store_dir`, if it was made from an image:
/// [`remove`] for a face that holds the container itself (its child to reap).
pub fn delete(
    store_dir: &Path,
    c: runtime::Container,
    force: bool,
) -> std::result::Result<(), crate::Error> {
    let (state_root, id) = (c.state_root(), c.id().to_string());
    let res = c.delete_checked(force);
    let net = if res.is_ok() || !state_root.join(&id).exists() {
        crate::network::detach(store_dir, &id, force)
    } else {
        Ok(())
    };
    forget_container(store_dir, &state_root, &id);
    res?;
    net
}
