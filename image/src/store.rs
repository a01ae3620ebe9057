//! Images: OCI manifests and configs over `unionfs`'s layer store.
//!
//! A store directory (default `/var/lib/corral`, or `$CORRAL_STORE`) holds:
//!
//! | path | what |
//! |---|---|
//! | `layers/sha256/<diff id>/` | each layer unpacked once, in overlay form (`unionfs::LayerStore`) |
//! | `blobs/sha256/<digest>` | layer tars as imported or made (compressed), image configs and manifests (OCI JSON) |
//! | `images.json` | tags: `name:tag` -> manifest digest |
//! | `containers/<id>/` | a container made from an image: its bundle (`config.json`) and `image.json` (which image, which layers, where its state lives) |
//! | `cache/<key>.json` | the build cache: a step's key -> its layer and time |
//! | `gc.lock`, `index.lock` | `flock`s: every command holds `gc.lock` shared while it adds or uses content; `image rm` and `prune` hold it exclusive; `index.lock` serialises changes of `images.json` |
//!
//! Every file appears by `rename` (a command killed halfway leaves at most a temp file under
//! `layers/tmp` or `blobs/tmp`, which `prune` removes). References are counted, not stored:
//! a layer or blob is in use while a tagged image or a live container (its state dir exists,
//! or the command creating it is alive) refers to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::{
    Arch, Descriptor, History, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Os,
};
use serde::{Deserialize, Serialize};
use unionfs::{Digest, FileLock, HashingReader, LayerStore, UnpackOptions};

/// The default store directory.
pub const DEFAULT_STORE: &str = "/var/lib/corral";

/// Annotation with the image's full name in an OCI layout's index (containerd's).
pub const ANNOTATION_NAME: &str = "io.containerd.image.name";
/// Annotation with the image's tag in an OCI layout's index (the image spec's).
pub const ANNOTATION_REF: &str = "org.opencontainers.image.ref.name";

/// What can go wrong with images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A layer could not be stored or read (the error names the tar entry or path).
    #[error("{context}: {source}")]
    Layer {
        context: String,
        #[source]
        source: unionfs::Error,
    },
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A JSON document is not what it should be.
    #[error("{}: {reason}", path.display())]
    Json { path: PathBuf, reason: String },
    /// No such image.
    #[error("image {0:?} not found in the store")]
    NotFound(String),
    /// Anything else the caller got wrong.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of this module.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

impl ImageError {
    /// The errno that best says what went wrong (positive), as [`crate::Error::errno`].
    pub fn errno(&self) -> i32 {
        match self {
            ImageError::Layer { source, .. } => {
                source.errno().map(|e| e as i32).unwrap_or(libc::EIO)
            }
            ImageError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            ImageError::Json { .. } | ImageError::Invalid(_) => libc::EINVAL,
            ImageError::NotFound(_) => libc::ENOENT,
        }
    }
}

/// Makes what container `id` of `image` needs (for every face): the store's record of it
/// (which keeps its layers in use), its bundle (the spec from the image's config and `rc`,
/// see [`crate::image_spec::spec_for_image`]) and the layer dirs its root is an overlay of
/// (for [`crate::Options::layers`]). The state will live under `state_root`.
pub fn prepare_container(
    store: &ImageStore,
    id: &str,
    image: &str,
    rc: &crate::image_spec::RunConfig,
    state_root: &Path,
) -> Result<(PathBuf, Vec<PathBuf>)> {
    let _lock = store.lock_shared()?;
    let img = store.resolve(image)?;
    let dirs = store.layer_dirs(&img.diff_ids()?)?;
    let spec = crate::image_spec::spec_for_image(id, &img.config, &dirs, rc)?;
    let bundle = store.record_container(id, state_root, &img, image, &spec)?;
    Ok((bundle, dirs))
}

/// Forgets the store's record of container `id` once its state under `state_root` is gone
/// (after a delete). Anything else is left as it is.
pub fn forget_container(store_dir: &Path, state_root: &Path, id: &str) {
    if !store_dir.join("containers").join(id).is_dir() {
        return;
    }
    if let Ok(store) = ImageStore::open(store_dir) {
        if let Ok(Some(rec)) = store.container(id) {
            if rec.state_root == state_root && !state_root.join(id).exists() {
                let _ = store.remove_container(id);
            }
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ImageError {
    let path = path.to_path_buf();
    move |source| ImageError::Io { op, path, source }
}

fn layer_err(context: impl Into<String>) -> impl FnOnce(unionfs::Error) -> ImageError {
    let context = context.into();
    move |source| ImageError::Layer { context, source }
}

fn invalid(s: impl Into<String>) -> ImageError {
    ImageError::Invalid(s.into())
}

/// `NAME[:TAG]` (tag `latest` when absent).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// Repository name, e.g. `debian` or `example.org/team/app`.
    pub name: String,
    /// Tag, e.g. `latest`.
    pub tag: String,
}

impl Reference {
    /// Parse and check `NAME[:TAG]`: a name of lower-case letters, digits and `._-/:` (a
    /// registry port), a tag of letters, digits and `._-` (at most 128).
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| invalid(format!("image reference {s:?}: {why}"));
        let (name, tag) = match s.rfind(':') {
            Some(i) if !s[i..].contains('/') => (&s[..i], &s[i + 1..]),
            _ => (s, "latest"),
        };
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        if !name.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'_' | b'-' | b'/' | b':')
        }) || name.starts_with(['.', '-', '/'])
            || name.contains("..")
            || name.contains("//")
        {
            return Err(bad(
                "the name may hold lower-case letters, digits and . _ - / only",
            ));
        }
        if tag.is_empty()
            || tag.len() > 128
            || !tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            || tag.starts_with(['.', '-'])
        {
            return Err(bad(
                "the tag may hold letters, digits and . _ - only (at most 128)",
            ));
        }
        Ok(Reference {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// One layer of an image: its diff ID (the store's key) and its manifest descriptor.
#[derive(Debug, Clone)]
pub struct Layer {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// The blob as stored (digest, size, media type).
    pub descriptor: Descriptor,
}

/// An image in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's digest.
    pub manifest_digest: Digest,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The config's digest: the image ID.
    pub id: Digest,
    /// The image config.
    pub config: ImageConfiguration,
}

impl Image {
    /// The first 12 hex digits of the image ID, as `docker images` shows it.
    pub fn short_id(&self) -> &str {
        &self.id.hex()[..12]
    }

    /// The layers' diff IDs, bottom first.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d).map_err(layer_err("image config rootfs.diff_ids")))
            .collect()
    }

    /// The layers (diff ID with descriptor), bottom first.
    pub fn layers(&self) -> Result<Vec<Layer>> {
        let ids = self.diff_ids()?;
        if ids.len() != self.manifest.layers().len() {
            return Err(invalid(format!(
                "image {}: its config lists {} layers, its manifest {}",
                self.short_id(),
                ids.len(),
                self.manifest.layers().len()
            )));
        }
        Ok(ids
            .into_iter()
            .zip(self.manifest.layers().iter().cloned())
            .map(|(diff_id, descriptor)| Layer {
                diff_id,
                descriptor,
            })
            .collect())
    }
}

/// What `corral run --image` records about a container made from an image.
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
}

impl ContainerRecord {
    /// Is the container there (its state dir) or being made?
    pub fn live(&self) -> bool {
        if self.state_root.join(&self.id).exists() {
            return true;
        }
        self.creator_pid > 0
            && crate::state::pid_start_time(self.creator_pid) == self.creator_start_time
            && self.creator_start_time != 0
    }

    /// Its writable layer (overlay upper dir) in its state dir.
    pub fn upper_dir(&self) -> PathBuf {
        crate::state::overlay_paths(&self.state_root.join(&self.id)).1
    }
}

/// A build cache entry: what a step made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The layer the step made, if any: diff ID, blob digest, size, media type.
    pub layer: Option<(String, String, u64, String)>,
    /// When the step ran (RFC 3339), kept so that a cached rebuild makes the same image.
    pub created: String,
}

/// What `prune` removed.
#[derive(Debug, Default, Clone)]
pub struct PruneReport {
    pub layers: usize,
    pub blobs: usize,
    pub containers: usize,
    pub cache: usize,
    pub temp: usize,
    pub bytes: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    images: BTreeMap<String, String>,
}

/// The file in a build step's temp dir naming the RUN container that uses its root
/// (`{"state_root": ..., "id": ...}`).
pub const STEP_CONTAINER: &str = "container.json";

/// The store of images, layers and image containers.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    layers: LayerStore,
    max_layer: u64,
}

/// The environment variable that caps what one layer may unpack to (a size: bytes, or
/// with k, M, G, T), default [`unionfs::DEFAULT_MAX_LAYER_BYTES`].
pub const MAX_LAYER_ENV: &str = "CORRAL_MAX_LAYER_SIZE";

/// The most bytes an image's metadata file (`manifest.json`, `index.json`, a config or
/// manifest blob) may have: real ones are a few KiB.
pub const MAX_METADATA_BYTES: u64 = 8 << 20;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The store directory: `$CORRAL_STORE`, else [`DEFAULT_STORE`].
pub fn default_store() -> PathBuf {
    std::env::var_os("CORRAL_STORE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
}

/// Now as RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The host's architecture in GOARCH words.
pub fn host_arch() -> Arch {
    match std::env::consts::ARCH {
        "x86_64" => Arch::Amd64,
        "aarch64" => Arch::ARM64,
        "x86" => Arch::i386,
        "arm" => Arch::ARM,
        other => Arch::Other(other.to_string()),
    }
}

fn mkdir(p: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(io_err("mkdir", p))
}

/// Write `data` to `path` through a temp file and a rename.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    crate::atomic_file::write_durable(path, data, 0o644).map_err(io_err("write", path))
}

fn dir_size(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = fs::symlink_metadata(p) else {
        return 0;
    };
    let mut n = md.blocks() * 512;
    if md.is_dir() {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                n += dir_size(&e.path());
            }
        }
    }
    n
}

fn media(s: &str) -> MediaType {
    MediaType::from(s)
}

fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Result<Descriptor> {
    let d = oci_spec::image::Digest::try_from(digest.as_str())
        .map_err(|e| invalid(format!("digest {digest}: {e}")))?;
    Ok(Descriptor::new(media(media_type), size, d))
}

fn desc_digest(d: &Descriptor) -> Result<Digest> {
    Digest::parse(d.digest().as_ref()).map_err(layer_err("descriptor digest"))
}

impl ImageStore {
    /// Open (creating if needed) the store at `root`.
    ///
    /// The store must be a directory owned by the caller and writable by nobody else, under
    /// parents no other user can change (the checks the state root gets): what is in it
    /// (layers, tags, container bundles) is trusted, so a store another user made or can
    /// write is refused, naming the path and why.
    pub fn open(root: &Path) -> Result<ImageStore> {
        mkdir(root)?;
        crate::state::check_private_dir(root)
            .and_then(|()| crate::state::check_ancestors(root))
            .map_err(io_err("refusing the image store", root))?;
        for d in ["blobs/sha256", "blobs/tmp", "containers", "cache"] {
            mkdir(&root.join(d))?;
        }
        let layers =
            LayerStore::open(&root.join("layers")).map_err(layer_err("opening the layer store"))?;
        let max_layer = match std::env::var(MAX_LAYER_ENV) {
            Ok(v) if !v.is_empty() => crate::builder::parse_size(MAX_LAYER_ENV, &v)
                .map_err(|e| invalid(e.to_string()))? as u64,
            _ => unionfs::DEFAULT_MAX_LAYER_BYTES,
        };
        Ok(ImageStore {
            root: root.to_path_buf(),
            layers,
            max_layer,
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How layers are unpacked: devices only when privileged, at most the store's cap
    /// ([`MAX_LAYER_ENV`]).
    pub fn unpack_options(&self) -> UnpackOptions {
        UnpackOptions {
            max_bytes: self.max_layer,
            ..UnpackOptions::default()
        }
    }

    /// The layer store.
    pub fn layer_store(&self) -> &LayerStore {
        &self.layers
    }

    /// Shared use of the store's content (adding, using): taken by every command but
    /// removals, which wait for it.
    pub fn lock_shared(&self) -> Result<FileLock> {
        FileLock::shared(&self.root.join("gc.lock")).map_err(layer_err("locking the store"))
    }

    /// Exclusive use: nothing is being added or used meanwhile (image rm, prune).
    pub fn lock_exclusive(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.root.join("gc.lock")).map_err(layer_err("locking the store"))
    }

    fn temp_path(&self, what: &str) -> PathBuf {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.root
            .join("blobs/tmp")
            .join(format!("{what}-{}-{n}-{nanos}", std::process::id()))
    }

    /// A fresh temp dir under the store (for builds and unpacked archives).
    pub fn temp_dir(&self, what: &str) -> Result<PathBuf> {
        let p = self.temp_path(what);
        mkdir(&p)?;
        Ok(p)
    }

    /// Path of a blob.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Store `data` as a blob; returns its digest.
    pub fn put_blob(&self, data: &[u8]) -> Result<Digest> {
        self.put_blob_noting(data, &mut Added::default())
    }

    fn put_blob_noting(&self, data: &[u8], added: &mut Added) -> Result<Digest> {
        let d = Digest::of(data);
        let p = self.blob_path(&d);
        if !p.exists() {
            write_atomic(&p, data)?;
            added.blobs.push(d.clone());
        }
        Ok(d)
    }

    /// Read a blob, checking its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        let data = fs::read(&p).map_err(io_err("read blob", &p))?;
        if Digest::of(&data) != *digest {
            return Err(invalid(format!(
                "blob {digest} is corrupt (its content has another digest)"
            )));
        }
        Ok(data)
    }

    /// Copy a layer tar (plain, gzip or zstd) into the blobs and unpack it into the layer
    /// store. `what` names the source in errors.
    pub fn add_layer<R: Read>(&self, r: R, what: &str) -> Result<Layer> {
        self.add_layer_noting(r, what, &mut Added::default())
    }

    fn add_layer_noting<R: Read>(&self, r: R, what: &str, added: &mut Added) -> Result<Layer> {
        let tmp = self.temp_path("layer");
        let res = (|| -> Result<Layer> {
            let mut hr = HashingReader::new(r);
            let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
            io::copy(&mut hr, &mut f).map_err(io_err("read layer", Path::new(what)))?;
            f.sync_all().map_err(io_err("sync", &tmp))?;
            drop(f);
            let digest = hr.digest();
            let f = File::open(&tmp).map_err(io_err("open", &tmp))?;
            let li = self
                .layers
                .import_layer(BufReader::new(f), self.unpack_options())
                .map_err(layer_err(format!("layer {what}")))?;
            if li.new {
                added.layers.push(li.diff_id.clone());
            }
            let dst = self.blob_path(&digest);
            if !dst.exists() {
                added.blobs.push(digest.clone());
            }
            fs::rename(&tmp, &dst).map_err(io_err("rename", &dst))?;
            Ok(Layer {
                diff_id: li.diff_id,
                descriptor: descriptor(li.compression.media_type(), &digest, li.size)?,
            })
        })();
        let _ = fs::remove_file(&tmp);
        res
    }

    /// Capture a container's (or build step's) upper dir as a layer: overlay whiteouts
    /// become OCI ones, the tar is gzip-compressed into the blobs and unpacked into the
    /// layer store.
    pub fn add_layer_from_upper(&self, upper: &Path) -> Result<Layer> {
        let tmp = self.temp_path("diff");
        let res = (|| -> Result<Layer> {
            let f = File::create(&tmp).map_err(io_err("create", &tmp))?;
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            unionfs::diff_layer(upper, &mut gz)
                .map_err(layer_err(format!("capturing {}", upper.display())))?;
            gz.finish()
                .and_then(|f| f.sync_all())
                .map_err(io_err("write", &tmp))?;
            let f = File::open(&tmp).map_err(io_err("open", &tmp))?;
            self.add_layer(f, &upper.display().to_string())
        })();
        let _ = fs::remove_file(&tmp);
        res
    }

    /// The unpacked directory of each layer, bottom first.
    pub fn layer_dirs(&self, diff_ids: &[Digest]) -> Result<Vec<PathBuf>> {
        diff_ids
            .iter()
            .map(|d| self.layers.path(d).map_err(layer_err("image layer")))
            .collect()
    }

    /// Write `config` and a manifest for `layers`; returns the new image (untagged).
    pub fn write_image(&self, mut config: ImageConfiguration, layers: &[Layer]) -> Result<Image> {
        config
            .rootfs_mut()
            .set_diff_ids(layers.iter().map(|l| l.diff_id.to_string()).collect());
        // Through a Value, whose maps are sorted: the config's own maps (Labels,
        // ExposedPorts) are HashMaps, and the same image must give the same digest.
        let cbytes = serde_json::to_value(&config)
            .and_then(|v| serde_json::to_vec(&v))
            .map_err(|e| invalid(format!("encoding image config: {e}")))?;
        let cid = self.put_blob(&cbytes)?;
        let manifest = oci_spec::image::ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(descriptor(
                "application/vnd.oci.image.config.v1+json",
                &cid,
                cbytes.len() as u64,
            )?)
            .layers(
                layers
                    .iter()
                    .map(|l| l.descriptor.clone())
                    .collect::<Vec<_>>(),
            )
            .build()
            .map_err(|e| invalid(format!("building manifest: {e}")))?;
        let mbytes = serde_json::to_vec(&manifest)
            .map_err(|e| invalid(format!("encoding manifest: {e}")))?;
        let mid = self.put_blob(&mbytes)?;
        Ok(Image {
            manifest_digest: mid,
            manifest,
            id: cid,
            config,
        })
    }

    /// Load an image by its manifest digest.
    pub fn image_by_manifest(&self, mid: &Digest) -> Result<Image> {
        let mbytes = self.read_blob(mid)?;
        let path = self.blob_path(mid);
        let manifest: ImageManifest =
            serde_json::from_slice(&mbytes).map_err(|e| ImageError::Json {
                path: path.clone(),
                reason: format!("manifest: {e}"),
            })?;
        let cid = desc_digest(manifest.config())?;
        let cbytes = self.read_blob(&cid)?;
        let config: ImageConfiguration =
            serde_json::from_slice(&cbytes).map_err(|e| ImageError::Json {
                path: self.blob_path(&cid),
                reason: format!("image config: {e}"),
            })?;
        Ok(Image {
            manifest_digest: mid.clone(),
            manifest,
            id: cid,
            config,
        })
    }

    fn read_index(&self) -> Result<Index> {
        let p = self.root.join("images.json");
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| ImageError::Json {
                path: p,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(io_err("read", &p)(e)),
        }
    }

    fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _l = FileLock::exclusive(&self.root.join("index.lock"))
            .map_err(layer_err("locking the image index"))?;
        let mut idx = self.read_index()?;
        let out = f(&mut idx)?;
        let bytes = serde_json::to_vec_pretty(&idx)
            .map_err(|e| invalid(format!("encoding the image index: {e}")))?;
        write_atomic(&self.root.join("images.json"), &bytes)?;
        Ok(out)
    }

    /// Point `reference` at `image` (moving the tag if it named another image).
    pub fn tag(&self, image: &Image, reference: &Reference) -> Result<()> {
        let mid = image.manifest_digest.to_string();
        self.update_index(|idx| {
            idx.images.insert(reference.to_string(), mid);
            Ok(())
        })
    }

    /// Every tag and the image it names, sorted by tag.
    pub fn tags(&self) -> Result<Vec<(Reference, Digest)>> {
        let idx = self.read_index()?;
        let mut out = Vec::new();
        for (r, m) in idx.images {
            let r = Reference::parse(&r)?;
            let m = Digest::parse(&m).map_err(layer_err("images.json"))?;
            out.push((r, m));
        }
        Ok(out)
    }

    /// Find an image by `NAME[:TAG]`, image ID (or a prefix of 4+ hex digits) or manifest
    /// digest.
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let tags = self.tags()?;
        if let Ok(r) = Reference::parse(name) {
            if let Some((_, m)) = tags.iter().find(|(t, _)| *t == r) {
                return self.image_by_manifest(m);
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found: Vec<Image> = Vec::new();
            let mut seen = BTreeSet::new();
            for (_, m) in &tags {
                if !seen.insert(m.clone()) {
                    continue;
                }
                let img = self.image_by_manifest(m)?;
                if img.id.hex().starts_with(hex) || m.hex().starts_with(hex) {
                    found.push(img);
                }
            }
            if found.len() == 1 {
                return Ok(found.remove(0));
            }
            if found.len() > 1 {
                return Err(invalid(format!("image ID {name:?} is ambiguous")));
            }
        }
        Err(ImageError::NotFound(name.to_string()))
    }

    /// The tags that name the image with manifest `mid`.
    pub fn tags_of(&self, mid: &Digest) -> Result<Vec<Reference>> {
        Ok(self
            .tags()?
            .into_iter()
            .filter(|(_, m)| m == mid)
            .map(|(r, _)| r)
            .collect())
    }

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
        crate::state::check_id(id).map_err(|e| invalid(e.to_string()))?;
        if let Some(old) = self.container(id)? {
            if old.live() {
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
        let _ = fs::remove_dir_all(&dir);
        mkdir(&dir)?;
        // SAFETY: plain getter.
        let me = unsafe { libc::getpid() };
        let rec = ContainerRecord {
            id: id.to_string(),
            state_root: state_root.to_path_buf(),
            manifest: image.manifest_digest.to_string(),
            image: image_name.to_string(),
            layers: image.diff_ids()?.iter().map(|d| d.to_string()).collect(),
            creator_pid: me,
            creator_start_time: crate::state::pid_start_time(me),
        };
        let text = serde_json::to_vec_pretty(&rec)
            .map_err(|e| invalid(format!("encoding container record: {e}")))?;
        write_atomic(&dir.join("image.json"), &text)?;
        let spec_text = serde_json::to_vec_pretty(spec)
            .map_err(|e| invalid(format!("encoding config.json: {e}")))?;
        write_atomic(&dir.join("config.json"), &spec_text)?;
        Ok(dir)
    }

    /// The record of container `id`, if it was made from an image of this store.
    pub fn container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        if crate::state::check_id(id).is_err() {
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
        if crate::state::check_id(id).is_err() {
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

    // ---- references ----

    /// How many tagged images and live containers use each layer (by diff ID).
    pub fn layer_refcounts(&self) -> Result<BTreeMap<String, usize>> {
        let mut n: BTreeMap<String, usize> = BTreeMap::new();
        for l in self.layers.list().map_err(layer_err("listing layers"))? {
            n.insert(l, 0);
        }
        let mut seen = BTreeSet::new();
        for (_, m) in self.tags()? {
            if seen.insert(m.clone()) {
                for d in self.image_by_manifest(&m)?.diff_ids()? {
                    *n.entry(d.to_string()).or_default() += 1;
                }
            }
        }
        for c in self.containers()? {
            if c.live() {
                for d in &c.layers {
                    *n.entry(d.clone()).or_default() += 1;
                }
            }
        }
        Ok(n)
    }

    /// Blobs and layers in use: by tagged images and live containers (and the manifests
    /// those containers were made from).
    fn in_use(&self) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
        let mut blobs = BTreeSet::new();
        let mut layers = BTreeSet::new();
        let mut manifests: BTreeSet<Digest> = self.tags()?.into_iter().map(|(_, m)| m).collect();
        for c in self.containers()? {
            if c.live() {
                layers.extend(c.layers.iter().cloned());
                if let Ok(m) = Digest::parse(&c.manifest) {
                    manifests.insert(m);
                }
            }
        }
        for m in manifests {
            let Ok(img) = self.image_by_manifest(&m) else {
                continue;
            };
            blobs.insert(m.to_string());
            blobs.insert(img.id.to_string());
            for l in img.layers()? {
                blobs.insert(l.descriptor.digest().to_string());
                layers.insert(l.diff_id.to_string());
            }
        }
        Ok((blobs, layers))
    }

    /// Remove a tag; when no tag is left on its image and no live container uses it, remove
    /// what only it used (manifest, config, layers). Returns docker-like lines (`Untagged:`,
    /// `Deleted:`). The caller holds the exclusive lock.
    pub fn remove_image(&self, name: &str) -> Result<Vec<String>> {
        let img = self.resolve(name)?;
        let tags = self.tags_of(&img.manifest_digest)?;
        let mut out = Vec::new();
        let by_tag = Reference::parse(name).ok().filter(|r| tags.contains(r));
        let users: Vec<String> = self
            .containers()?
            .into_iter()
            .filter(|c| c.live() && c.manifest == img.manifest_digest.as_str())
            .map(|c| c.id)
            .collect();
        let last = by_tag.is_none() || tags.len() == 1;
        if last && !users.is_empty() {
            return Err(invalid(format!(
                "image {name:?} is used by container(s) {}: delete them first",
                users.join(", ")
            )));
        }
        let drop_tags: Vec<Reference> = match &by_tag {
            Some(r) => vec![r.clone()],
            None => tags.clone(),
        };
        self.update_index(|idx| {
            for r in &drop_tags {
                idx.images.remove(&r.to_string());
            }
            Ok(())
        })?;
        for r in &drop_tags {
            out.push(format!("Untagged: {r}"));
        }
        if !last {
            return Ok(out);
        }
        let (blobs, layers) = self.in_use()?;
        let mut gone = vec![img.manifest_digest.clone(), img.id.clone()];
        for l in img.layers()? {
            gone.push(desc_digest(&l.descriptor)?);
            if !layers.contains(l.diff_id.as_str()) && self.layers.contains(&l.diff_id) {
                self.layers
                    .remove(&l.diff_id)
                    .map_err(layer_err("removing a layer"))?;
                out.push(format!("Deleted: {}", l.diff_id));
            }
        }
        for b in gone {
            if !blobs.contains(b.as_str()) {
                let p = self.blob_path(&b);
                if p.exists() {
                    fs::remove_file(&p).map_err(io_err("remove", &p))?;
                }
                if b == img.id {
                    out.push(format!("Deleted: {b}"));
                }
            }
        }
        Ok(out)
    }

    /// Remove everything nothing uses: stale container records, layers and blobs of no
    /// tagged image or live container, build cache entries whose layer is gone, and what
    /// commands killed halfway left in the temp dirs. The caller holds the exclusive lock.
    pub fn prune(&self) -> Result<PruneReport> {
        let mut rep = PruneReport::default();
        for c in self.containers()? {
            if !c.live() {
                rep.bytes += dir_size(&self.container_dir(&c.id));
                self.remove_container(&c.id)?;
                rep.containers += 1;
            }
        }
        let (blobs, layers) = self.in_use()?;
        for l in self.layers.list().map_err(layer_err("listing layers"))? {
            if !layers.contains(&l) {
                let p = self.layers.path(&l).map_err(layer_err("layer"))?;
                rep.bytes += dir_size(&p);
                self.layers
                    .remove(&l)
                    .map_err(layer_err("removing a layer"))?;
                rep.layers += 1;
            }
        }
        let bdir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&bdir).map_err(io_err("readdir", &bdir))? {
            let e = e.map_err(io_err("readdir", &bdir))?;
            let name = format!("sha256:{}", e.file_name().to_string_lossy());
            if !blobs.contains(&name) {
                rep.bytes += dir_size(&e.path());
                fs::remove_file(e.path()).map_err(io_err("remove", &e.path()))?;
                rep.blobs += 1;
            }
        }
        let cdir = self.root.join("cache");
        for e in fs::read_dir(&cdir).map_err(io_err("readdir", &cdir))? {
            let e = e.map_err(io_err("readdir", &cdir))?;
            let keep = fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<CacheEntry>(&b).ok())
                .map(|c| match c.layer {
                    Some((diff, digest, _, _)) => {
                        self.layers.contains(&diff)
                            && Digest::parse(&digest)
                                .map(|d| self.blob_path(&d).exists())
                                .unwrap_or(false)
                    }
                    None => true,
                })
                .unwrap_or(false);
            if !keep {
                fs::remove_file(e.path()).map_err(io_err("remove", &e.path()))?;
                rep.cache += 1;
            }
        }
        rep.temp += self
            .layers
            .clean_tmp()
            .map_err(layer_err("cleaning temp dirs"))?;
        let tdir = self.root.join("blobs/tmp");
        // A RUN container whose build died (and its guard with it) still uses its step's
        // root: no build runs now (we hold the store exclusively), so it is taken down
        // before its root goes.
        for e in fs::read_dir(&tdir)
            .map_err(io_err("readdir", &tdir))?
            .flatten()
        {
            #[derive(Deserialize)]
            struct Step {
                state_root: PathBuf,
                id: String,
            }
            let p = e.path().join(STEP_CONTAINER);
            let Some(step) = fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Step>(&b).ok())
            else {
                continue;
            };
            if step.state_root.join(&step.id).exists() {
                crate::Container::force_delete(&step.state_root, &step.id).map_err(|err| {
                    invalid(format!(
                        "removing the RUN container {} of a killed build (named in {}): {err}",
                        step.id,
                        p.display()
                    ))
                })?;
            }
        }
        // A build killed while a step's overlay was mounted left the mount: detach it
        // before its directory goes (deepest first).
        let mut left: Vec<PathBuf> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|m| PathBuf::from(m.replace("\\040", " ")))
            .filter(|m| m.starts_with(&tdir))
            .collect();
        left.sort();
        for m in left.iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        for e in fs::read_dir(&tdir).map_err(io_err("readdir", &tdir))? {
            let e = e.map_err(io_err("readdir", &tdir))?;
            let p = e.path();
            rep.bytes += dir_size(&p);
            let r = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            r.map_err(io_err("remove", &p))?;
            rep.temp += 1;
        }
        Ok(rep)
    }

    // ---- build cache ----

    /// A cached build step.
    pub fn cache_get(&self, key: &Digest) -> Option<CacheEntry> {
        let p = self.root.join("cache").join(format!("{}.json", key.hex()));
        let e: CacheEntry = serde_json::from_slice(&fs::read(p).ok()?).ok()?;
        if let Some((diff, digest, _, _)) = &e.layer {
            let d = Digest::parse(digest).ok()?;
            if !self.layers.contains(diff) || !self.blob_path(&d).exists() {
                return None;
            }
        }
        Some(e)
    }

    /// Remember a build step.
    pub fn cache_put(&self, key: &Digest, e: &CacheEntry) -> Result<()> {
        let p = self.root.join("cache").join(format!("{}.json", key.hex()));
        let b = serde_json::to_vec(e).map_err(|e| invalid(format!("encoding cache: {e}")))?;
        write_atomic(&p, &b)
    }

    /// Usage figures: (images, layers, blobs' bytes, layers' bytes).
    pub fn usage(&self) -> Result<(usize, usize, u64, u64)> {
        let imgs: BTreeSet<Digest> = self.tags()?.into_iter().map(|(_, m)| m).collect();
        let layers = self.layers.list().map_err(layer_err("listing layers"))?;
        Ok((
            imgs.len(),
            layers.len(),
            dir_size(&self.root.join("blobs")),
            dir_size(&self.root.join("layers")),
        ))
    }

    // ---- import ----

    /// Import `src`: a `docker save` tarball or dir, an OCI image layout (dir or tar,
    /// possibly compressed), or a plain root filesystem (a tarball, as `docker import`
    /// takes, or a directory). Returns the images made and the tags they got.
    ///
    /// With `reference`, the archive must hold one image and only `reference` is tagged
    /// (the names the archive carries are not applied); without it, every image gets the
    /// names it carries. Nothing is tagged unless the whole archive imports, and a
    /// rejected archive leaves no layer or blob it added behind. Every path the archive
    /// names resolves inside it, and only regular files are read (metadata files at most
    /// [`MAX_METADATA_BYTES`]).
    pub fn import(
        &self,
        src: &Path,
        reference: Option<&Reference>,
    ) -> Result<Vec<(Image, Vec<Reference>)>> {
        let mut added = Added::default();
        let res = self
            .import_noting(src, reference, &mut added)
            .and_then(|found| self.tag_imported(src, found, reference));
        if res.is_err() {
            self.roll_back(&added);
        }
        res
    }

    /// Tag what an import found: `reference` alone (one image), or each image's own names.
    fn tag_imported(
        &self,
        src: &Path,
        found: Vec<Found>,
        reference: Option<&Reference>,
    ) -> Result<Vec<(Image, Vec<Reference>)>> {
        if found.is_empty() {
            return Err(invalid(format!("{}: no images", src.display())));
        }
        let out: Vec<(Image, Vec<Reference>)> = match reference {
            Some(r) => {
                let distinct: BTreeSet<&str> = found
                    .iter()
                    .map(|f| f.img.manifest_digest.as_str())
                    .collect();
                if distinct.len() > 1 {
                    return Err(invalid(format!(
                        "{} holds {} images: NAME[:TAG] names one; import it without a NAME to \
                         get each under the names it carries",
                        src.display(),
                        distinct.len()
                    )));
                }
                let img = found.into_iter().next().map(|f| f.img);
                img.into_iter().map(|i| (i, vec![r.clone()])).collect()
            }
            None => {
                let mut out = Vec::new();
                for f in found {
                    if f.refs.is_empty() {
                        return Err(invalid(f.unnamed));
                    }
                    out.push((f.img, f.refs));
                }
                out
            }
        };
        for (img, refs) in &out {
            for r in refs {
                self.tag(img, r)?;
            }
        }
        Ok(out)
    }

    /// Remove the layers and blobs a failed import added (not those it found there).
    fn roll_back(&self, added: &Added) {
        for l in &added.layers {
            let _ = self.layers.remove(l);
        }
        for b in &added.blobs {
            let _ = fs::remove_file(self.blob_path(b));
        }
    }

    fn import_noting(
        &self,
        src: &Path,
        reference: Option<&Reference>,
        added: &mut Added,
    ) -> Result<Vec<Found>> {
        let md = fs::metadata(src).map_err(io_err("import", src))?;
        if md.is_dir() {
            return self.import_dir(src, reference, &src.display().to_string(), added);
        }
        if !md.is_file() {
            return Err(invalid(format!(
                "import {}: not a regular file or directory",
                src.display()
            )));
        }
        if archive_kind(src)?.is_some() {
            // An image archive: unpacked (safely, as a layer is) into a temp dir.
            let tmp = self.temp_dir("archive")?;
            let res = (|| {
                let f = File::open(src).map_err(io_err("open", src))?;
                unionfs::unpack_layer_with(
                    BufReader::new(f),
                    &tmp,
                    UnpackOptions {
                        devices: false,
                        ..self.unpack_options()
                    },
                )
                .map_err(layer_err(format!("image archive {}", src.display())))?;
                self.import_dir(&tmp, reference, &src.display().to_string(), added)
            })();
            let _ = fs::remove_dir_all(&tmp);
            return res;
        }
        if reference.is_none() {
            return Err(invalid(format!(
                "{} is a root filesystem tarball: give the image a NAME[:TAG]",
                src.display()
            )));
        }
        let f = File::open(src).map_err(io_err("open", src))?;
        let layer = self.add_layer_noting(BufReader::new(f), &src.display().to_string(), added)?;
        let img = self.write_image(
            rootfs_config(&format!("corral image import {}", src.display())),
            &[layer],
        )?;
        Ok(vec![Found::new(img)])
    }

    fn import_dir(
        &self,
        dir: &Path,
        reference: Option<&Reference>,
        what: &str,
        added: &mut Added,
    ) -> Result<Vec<Found>> {
        // Told apart by the names at the top (whatever they are: one that is not a regular
        // file beneath the archive is refused when read, not taken for a root filesystem).
        let ad = Archive::at(dir)?;
        let named = |n: &str| fs::symlink_metadata(dir.join(n)).is_ok();
        if named("oci-layout") && named("index.json") {
            return self.import_oci_layout(&ad, added);
        }
        if named("manifest.json") {
            return self.import_docker_save(&ad, added);
        }
        // A root filesystem directory.
        if reference.is_none() {
            return Err(invalid(format!(
                "{what} is a root filesystem directory: give the image a NAME[:TAG]"
            )));
        }
        let tmp = self.temp_path("rootfs");
        let res = (|| -> Result<Image> {
            let f = File::create(&tmp).map_err(io_err("create", &tmp))?;
            let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            let mut b = tar::Builder::new(gz);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Complete);
            b.append_dir_all(".", dir).map_err(io_err("archive", dir))?;
            b.into_inner()
                .and_then(|gz| gz.finish())
                .and_then(|f| f.sync_all())
                .map_err(io_err("write", &tmp))?;
            let f = File::open(&tmp).map_err(io_err("open", &tmp))?;
            let layer = self.add_layer_noting(BufReader::new(f), what, added)?;
            self.write_image(
                rootfs_config(&format!("corral image import {what}")),
                &[layer],
            )
        })();
        let _ = fs::remove_file(&tmp);
        Ok(vec![Found::new(res?)])
    }

    /// A blob of an OCI layout (its path in the layout and digest).
    fn layout_blob(d: &Descriptor) -> Result<(String, Digest)> {
        let dg = desc_digest(d)?;
        Ok((format!("blobs/sha256/{}", dg.hex()), dg))
    }

    /// A metadata blob of a layout, checked against its digest.
    fn read_checked(ad: &Archive, rel: &str, dg: &Digest) -> Result<Vec<u8>> {
        let b = ad.read(rel)?;
        if Digest::of(&b) != *dg {
            return Err(invalid(format!(
                "{}: content does not match digest {dg}",
                ad.path(rel).display()
            )));
        }
        Ok(b)
    }

    fn import_oci_layout(&self, ad: &Archive, added: &mut Added) -> Result<Vec<Found>> {
        let ip = ad.path("index.json");
        let index: ImageIndex =
            serde_json::from_slice(&ad.read("index.json")?).map_err(|e| ImageError::Json {
                path: ip.clone(),
                reason: e.to_string(),
            })?;
        let mut out = Vec::new();
        for d in index.manifests() {
            let name = d.annotations().as_ref().and_then(|a| {
                a.get(ANNOTATION_NAME).cloned().or_else(|| {
                    a.get(ANNOTATION_REF)
                        .filter(|r| r.contains(':') || r.contains('/'))
                        .cloned()
                })
            });
            let tag_only = d
                .annotations()
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_REF).cloned());
            let img = self.import_oci_manifest(ad, d, 0, added)?;
            let mut f = Found::new(img);
            match name {
                Some(n) => f.refs.push(Reference::parse(&n)?),
                None => {
                    f.unnamed = format!(
                        "{}: manifest {} has no image name{}: give the image a NAME[:TAG]",
                        ip.display(),
                        d.digest(),
                        tag_only
                            .map(|t| format!(" (only the tag {t:?})"))
                            .unwrap_or_default()
                    )
                }
            }
            out.push(f);
        }
        if out.is_empty() {
            return Err(invalid(format!("{}: no manifests", ip.display())));
        }
        Ok(out)
    }

    fn import_oci_manifest(
        &self,
        ad: &Archive,
        d: &Descriptor,
        depth: u32,
        added: &mut Added,
    ) -> Result<Image> {
        let (p, dg) = Self::layout_blob(d)?;
        let bytes = Self::read_checked(ad, &p, &dg)?;
        let p = ad.path(&p);
        if *d.media_type() == MediaType::ImageIndex || depth > 0 && looks_like_index(&bytes) {
            if depth > 2 {
                return Err(invalid(format!("{}: nested indexes too deep", p.display())));
            }
            let idx: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| ImageError::Json {
                path: p.clone(),
                reason: e.to_string(),
            })?;
            let want = host_arch();
            let pick = idx
                .manifests()
                .iter()
                .find(|m| {
                    m.platform()
                        .as_ref()
                        .map(|pl| *pl.architecture() == want && *pl.os() == Os::Linux)
                        .unwrap_or(false)
                })
                .or_else(|| idx.manifests().first())
                .ok_or_else(|| invalid(format!("{}: empty index", p.display())))?;
            return self.import_oci_manifest(ad, pick, depth + 1, added);
        }
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::Json {
                path: p.clone(),
                reason: format!("manifest: {e}"),
            })?;
        let (cp, cdg) = Self::layout_blob(manifest.config())?;
        let cbytes = Self::read_checked(ad, &cp, &cdg)?;
        let config: ImageConfiguration =
            serde_json::from_slice(&cbytes).map_err(|e| ImageError::Json {
                path: ad.path(&cp),
                reason: format!("image config: {e}"),
            })?;
        let want_ids = config.rootfs().diff_ids().clone();
        if want_ids.len() != manifest.layers().len() {
            return Err(invalid(format!(
                "{}: the config lists {} layers, the manifest {}",
                p.display(),
                want_ids.len(),
                manifest.layers().len()
            )));
        }
        for (i, ld) in manifest.layers().iter().enumerate() {
            let (lp, ldg) = Self::layout_blob(ld)?;
            let f = ad.open(&lp)?;
            let shown = ad.path(&lp).display().to_string();
            let layer = self.add_layer_noting(BufReader::new(f), &shown, added)?;
            if desc_digest(&layer.descriptor)? != ldg {
                return Err(invalid(format!(
                    "{shown}: content does not match digest {ldg}"
                )));
            }
            if layer.diff_id.as_str() != want_ids[i] {
                return Err(invalid(format!(
                    "{shown}: its diff ID is {}, the config says {}",
                    layer.diff_id, want_ids[i]
                )));
            }
        }
        // Keep the original documents (so the image ID and digests stay the same).
        let cid = self.put_blob_noting(&cbytes, added)?;
        let mid = self.put_blob_noting(&bytes, added)?;
        Ok(Image {
            manifest_digest: mid,
            manifest,
            id: cid,
            config,
        })
    }

    fn import_docker_save(&self, ad: &Archive, added: &mut Added) -> Result<Vec<Found>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let mp = ad.path("manifest.json");
        let entries: Vec<Entry> =
            serde_json::from_slice(&ad.read("manifest.json")?).map_err(|e| ImageError::Json {
                path: mp.clone(),
                reason: e.to_string(),
            })?;
        if entries.is_empty() {
            return Err(invalid(format!("{}: no images", mp.display())));
        }
        let mut out = Vec::new();
        for e in &entries {
            let cbytes = ad.read(&e.config)?;
            let config: ImageConfiguration =
                serde_json::from_slice(&cbytes).map_err(|err| ImageError::Json {
                    path: ad.path(&e.config),
                    reason: format!("image config: {err}"),
                })?;
            let want = config.rootfs().diff_ids().clone();
            if want.len() != e.layers.len() {
                return Err(invalid(format!(
                    "{}: {} lists {} layers, its config {}",
                    mp.display(),
                    e.config,
                    e.layers.len(),
                    want.len()
                )));
            }
            let mut layers = Vec::new();
            for (j, l) in e.layers.iter().enumerate() {
                let f = ad.open(l)?;
                let layer = self.add_layer_noting(BufReader::new(f), l, added)?;
                if layer.diff_id.as_str() != want[j] {
                    return Err(invalid(format!(
                        "{}: layer {l}: its diff ID is {}, the config says {}",
                        mp.display(),
                        layer.diff_id,
                        want[j]
                    )));
                }
                layers.push(layer);
            }
            let cid = self.put_blob_noting(&cbytes, added)?;
            let manifest = oci_spec::image::ImageManifestBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageManifest)
                .config(descriptor(
                    "application/vnd.oci.image.config.v1+json",
                    &cid,
                    cbytes.len() as u64,
                )?)
                .layers(
                    layers
                        .iter()
                        .map(|l| l.descriptor.clone())
                        .collect::<Vec<_>>(),
                )
                .build()
                .map_err(|err| invalid(format!("building manifest: {err}")))?;
            let mbytes = serde_json::to_vec(&manifest)
                .map_err(|err| invalid(format!("encoding manifest: {err}")))?;
            let mid = self.put_blob_noting(&mbytes, added)?;
            let mut f = Found::new(Image {
                manifest_digest: mid,
                manifest,
                id: cid,
                config,
            });
            for t in e.repo_tags.iter().flatten() {
                f.refs.push(Reference::parse(t)?);
            }
            f.unnamed = format!(
                "{}: image {} has no RepoTags: give the image a NAME[:TAG]",
                mp.display(),
                e.config
            );
            out.push(f);
        }
        Ok(out)
    }

    // ---- export ----

    /// Write `image` as an OCI image layout: a directory `dest` (made; must not exist or
    /// be empty), or a tar when `dest` ends in `.tar`. The index names it `reference`.
    pub fn export(&self, image: &Image, reference: &Reference, dest: &Path) -> Result<()> {
        let mut ann = HashMap::new();
        ann.insert(ANNOTATION_NAME.to_string(), reference.to_string());
        ann.insert(ANNOTATION_REF.to_string(), reference.tag.clone());
        let mbytes = self.read_blob(&image.manifest_digest)?;
        let mut md = descriptor(
            "application/vnd.oci.image.manifest.v1+json",
            &image.manifest_digest,
            mbytes.len() as u64,
        )?;
        md.set_annotations(Some(ann));
        let index = oci_spec::image::ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![md])
            .build()
            .map_err(|e| invalid(format!("building index: {e}")))?;
        let ibytes =
            serde_json::to_vec(&index).map_err(|e| invalid(format!("encoding index: {e}")))?;
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let mut blobs = vec![image.manifest_digest.clone(), image.id.clone()];
        for l in image.layers()? {
            blobs.push(desc_digest(&l.descriptor)?);
        }
        let is_tar = dest.extension().map(|e| e == "tar").unwrap_or(false);
        if is_tar {
            let res = (|| -> io::Result<()> {
                let tmp = crate::atomic_file::temp_beside(dest, 0o644)?;
                let mut b = tar::Builder::new(tmp);
                {
                    let mut put = |name: &str, data: &[u8]| -> io::Result<()> {
                        let mut h = tar::Header::new_ustar();
                        h.set_size(data.len() as u64);
                        h.set_mode(0o644);
                        h.set_mtime(0);
                        h.set_entry_type(tar::EntryType::Regular);
                        b.append_data(&mut h, name, data)
                    };
                    put("oci-layout", layout)?;
                    put("index.json", &ibytes)?;
                }

                for d in &blobs {
                    let mut f = File::open(self.blob_path(d))?;
                    let mut h = tar::Header::new_ustar();
                    h.set_size(f.metadata()?.len());
                    h.set_mode(0o644);
                    h.set_mtime(0);
                    h.set_entry_type(tar::EntryType::Regular);
                    b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), &mut f)?;
                }
                crate::atomic_file::persist(b.into_inner()?, dest, true)
            })();
            return res.map_err(io_err("export", dest));
        }
        if dest.exists()
            && fs::read_dir(dest)
                .map_err(io_err("export", dest))?
                .next()
                .is_some()
        {
            return Err(invalid(format!(
                "export {}: the directory is not empty",
                dest.display()
            )));
        }
        fs::create_dir_all(dest.join("blobs/sha256")).map_err(io_err("mkdir", dest))?;
        fs::write(dest.join("oci-layout"), layout).map_err(io_err("write", dest))?;
        fs::write(dest.join("index.json"), &ibytes).map_err(io_err("write", dest))?;
        for d in &blobs {
            let to = dest.join("blobs/sha256").join(d.hex());
            fs::copy(self.blob_path(d), &to).map_err(io_err("copy", &to))?;
        }
        Ok(())
    }
}

fn looks_like_index(b: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(b)
        .map(|v| v.get("manifests").is_some())
        .unwrap_or(false)
}

/// An image archive unpacked (or a layout directory): what it names is opened beneath it,
/// never through a symlink leading out, and only if it is a regular file.
struct Archive {
    dir: PathBuf,
    fd: File,
}

impl Archive {
    fn at(dir: &Path) -> Result<Archive> {
        let fd = File::open(dir).map_err(io_err("open", dir))?;
        Ok(Archive {
            dir: dir.to_path_buf(),
            fd,
        })
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Open `rel`: an absolute path or `..` is refused, symlinks resolve beneath the archive
    /// (one that leads out is refused), and it must be a regular file.
    fn open(&self, rel: &str) -> Result<File> {
        let p = Path::new(rel);
        if p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(invalid(format!("archive path {rel:?} leaves the archive")));
        }
        crate::in_root::open_regular(&self.fd, p, crate::in_root::BENEATH).map_err(|e| {
            ImageError::Io {
                op: "open in the archive",
                path: self.path(rel),
                source: e,
            }
        })
    }

    /// Read the metadata file `rel` (at most [`MAX_METADATA_BYTES`]).
    fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let f = self.open(rel)?;
        let p = self.path(rel);
        crate::in_root::read_capped(f, MAX_METADATA_BYTES, &p).map_err(io_err("read", &p))
    }
}

/// What an import added to the store (removed again if the import fails).
#[derive(Default)]
struct Added {
    layers: Vec<Digest>,
    blobs: Vec<Digest>,
}

/// An image an import found, with the names it carries (and the error for none).
struct Found {
    img: Image,
    refs: Vec<Reference>,
    unnamed: String,
}

impl Found {
    fn new(img: Image) -> Found {
        Found {
            img,
            refs: Vec::new(),
            unnamed: String::new(),
        }
    }
}

/// Is `path` (a tar, possibly compressed) an image archive: `oci-layout` or
/// `manifest.json` at its top? Reads the entry names only.
fn archive_kind(path: &Path) -> Result<Option<&'static str>> {
    let f = File::open(path).map_err(io_err("open", path))?;
    let (_, plain) =
        unionfs::decompress(BufReader::new(f)).map_err(layer_err(path.display().to_string()))?;
    let mut ar = tar::Archive::new(plain);
    // A broken tar is not an image archive: importing it as a root filesystem reports the
    // entry it breaks at.
    let Ok(entries) = ar.entries() else {
        return Ok(None);
    };
    for e in entries {
        let Ok(e) = e else {
            return Ok(None);
        };
        let Ok(p) = e.path().map(|p| p.into_owned()) else {
            return Ok(None);
        };
        let s = p.to_string_lossy();
        let s = s.trim_start_matches("./");
        match s {
            "oci-layout" => return Ok(Some("oci")),
            "manifest.json" => return Ok(Some("docker")),
            _ => {}
        }
    }
    Ok(None)
}

/// The config of an image made from a plain root filesystem.
pub fn rootfs_config(created_by: &str) -> ImageConfiguration {
    let now = now_rfc3339();
    let mut c = ImageConfiguration::default();
    c.set_architecture(host_arch());
    c.set_os(Os::Linux);
    c.set_created(Some(now.clone()));
    let mut cfg = oci_spec::image::Config::default();
    cfg.set_env(Some(vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    ]));
    c.set_config(Some(cfg));
    let mut h = History::default();
    h.set_created(Some(now));
    h.set_created_by(Some(created_by.to_string()));
    c.set_history(Some(vec![h]));
    c
}

/// A path inside an image's layers (bottom first), found as overlay would: the topmost
/// layer that has it wins, a whiteout hides it; no component may be a symlink (so nothing
/// outside the layers is ever read). Only regular files are returned.
pub fn find_in_layers(layers: &[PathBuf], rel: &str) -> Option<PathBuf> {
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    for l in layers.iter().rev() {
        let mut p = l.clone();
        let mut hidden = false;
        for (i, c) in comps.iter().enumerate() {
            p.push(c);
            match fs::symlink_metadata(&p) {
                Ok(md) => {
                    if unionfs::is_whiteout(&md) {
                        hidden = true;
                        break;
                    }
                    let last = i + 1 == comps.len();
                    if last && md.is_file() {
                        return Some(p);
                    }
                    if !last && !md.is_dir() {
                        hidden = true;
                        break;
                    }
                    if !last && unionfs::is_opaque(&p).unwrap_or(false) {
                        // Below this layer the dir's content is hidden: look only here.
                        let rest: PathBuf = comps[i + 1..].iter().collect();
                        let full = p.join(&rest);
                        return fs::symlink_metadata(&full)
                            .ok()
                            .filter(|m| m.is_file())
                            .map(|_| full);
                    }
                }
                Err(_) => break,
            }
        }
        if hidden {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("debian").unwrap();
        assert_eq!((r.name.as_str(), r.tag.as_str()), ("debian", "latest"));
        let r = Reference::parse("example.org:5000/team/app:1.2").unwrap();
        assert_eq!(r.name, "example.org:5000/team/app");
        assert_eq!(r.tag, "1.2");
        assert_eq!(r.to_string(), "example.org:5000/team/app:1.2");
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(
            (r.name.as_str(), r.tag.as_str()),
            ("localhost:5000/app", "latest")
        );
        for bad in [
            "", "Upper", "a:", "a:b c", "../x", "/abs", "a//b", "a:-x", ":tag",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn archive_paths_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("a")).unwrap();
        fs::write(t.path().join("a/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("out")).unwrap();
        let ad = Archive::at(t.path()).unwrap();
        assert!(ad.open("a/f").is_ok());
        assert!(ad.open("../x").is_err());
        assert!(ad.open("/etc/passwd").is_err());
        assert!(ad.open("out/passwd").is_err());
        // Only regular files: a FIFO is refused, not read (which would block).
        nix::unistd::mkfifo(
            &t.path().join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let e = ad.read("fifo").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // Metadata files are read with a cap.
        let big = fs::File::create(t.path().join("big")).unwrap();
        big.set_len(MAX_METADATA_BYTES + 1).unwrap();
        let e = ad.read("big").unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn files_are_found_in_layers_as_overlay_shows_them() {
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, l3) = (t.path().join("1"), t.path().join("2"), t.path().join("3"));
        for l in [&l1, &l2, &l3] {
            fs::create_dir_all(l.join("etc")).unwrap();
        }
        fs::write(l1.join("etc/passwd"), "bottom").unwrap();
        fs::write(l1.join("etc/group"), "bottom").unwrap();
        fs::write(l2.join("etc/passwd"), "middle").unwrap();
        // A symlinked dir in the top layer is never followed.
        std::os::unix::fs::symlink("/etc", l3.join("host")).unwrap();
        let layers = vec![l1.clone(), l2.clone(), l3.clone()];
        assert_eq!(
            find_in_layers(&layers, "etc/passwd"),
            Some(l2.join("etc/passwd"))
        );
        assert_eq!(
            find_in_layers(&layers, "/etc/group"),
            Some(l1.join("etc/group"))
        );
        assert_eq!(find_in_layers(&layers, "host/passwd"), None);
        assert_eq!(find_in_layers(&layers, "etc/nothing"), None);
    }
}
