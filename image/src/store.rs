//! The store: its directory, blobs, layers, images and tags, and the build cache.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::{
    Arch, Descriptor, History, ImageConfiguration, ImageManifest, MediaType, Os,
};
use serde::{Deserialize, Serialize};
use unionfs::{Digest, FileLock, HashingReader, LayerStore, UnpackOptions};

use crate::error::{invalid, io_err, layer_err, ImageError, Result};
use crate::import::Added;
use crate::reference::Reference;

/// The default store directory.
pub const DEFAULT_STORE: &str = "/var/lib/corral";

/// Annotation with the image's full name in an OCI layout's index (containerd's).
pub const ANNOTATION_NAME: &str = "io.containerd.image.name";
/// Annotation with the image's tag in an OCI layout's index (the image spec's).
pub const ANNOTATION_REF: &str = "org.opencontainers.image.ref.name";

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

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Index {
    pub(crate) images: BTreeMap<String, String>,
    /// Images kept without a name (docker's `<none>:<none>`): a build without `-t`, a
    /// loaded archive's unnamed image. Manifest digests.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(crate) untagged: BTreeSet<String>,
}

/// The store of images, layers and image containers.
#[derive(Debug, Clone)]
pub struct ImageStore {
    pub(crate) root: PathBuf,
    pub(crate) layers: LayerStore,
    pub(crate) max_layer: u64,
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
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the epoch as RFC 3339 UTC (the runtime's one formatter).
pub use runtime::state::rfc3339;

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

pub(crate) fn mkdir(p: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(io_err("mkdir", p))
}

/// Write `data` to `path` through a temp file and a rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    runtime::atomic_file::write_durable(path, data, 0o644).map_err(io_err("write", path))
}

pub(crate) fn dir_size(p: &Path) -> u64 {
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

fn file_bytes(p: &Path) -> u64 {
    let Ok(md) = fs::symlink_metadata(p) else {
        return 0;
    };
    let mut n = if md.is_file() { md.len() } else { 0 };
    if md.is_dir() {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                n += file_bytes(&e.path());
            }
        }
    }
    n
}

pub(crate) fn media(s: &str) -> MediaType {
    MediaType::from(s)
}

pub(crate) fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Result<Descriptor> {
    let d = oci_spec::image::Digest::try_from(digest.as_str())
        .map_err(|e| invalid(format!("digest {digest}: {e}")))?;
    Ok(Descriptor::new(media(media_type), size, d))
}

pub(crate) fn desc_digest(d: &Descriptor) -> Result<Digest> {
    Digest::parse(d.digest().as_ref()).map_err(layer_err("descriptor digest"))
}

/// One entry of an image's history, with the layer it added.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The first 12 hex digits of the layer's diff ID; `<none>` for an entry that added no
    /// layer, `<missing>` when the image has fewer layers than its history says.
    pub layer: String,
    /// When (as the image says: not checked).
    pub created: String,
    /// By what (as the image says: not checked, may hold any text).
    pub created_by: String,
    /// The layer's size ([`ImageStore::layer_size`]).
    pub size: u64,
}

/// A build cache entry: what a step made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The layer the step made, if any: diff ID, blob digest, size, media type.
    pub layer: Option<(String, String, u64, String)>,
    /// When the step ran (RFC 3339), kept so that a cached rebuild makes the same image.
    pub created: String,
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
        runtime::state::check_private_dir(root)
            .and_then(|()| runtime::state::check_ancestors(root))
            .map_err(io_err("refusing the image store", root))?;
        for d in ["blobs/sha256", "blobs/tmp", "containers", "cache"] {
            mkdir(&root.join(d))?;
        }
        let layers =
            LayerStore::open(&root.join("layers")).map_err(layer_err("opening the layer store"))?;
        let max_layer = match std::env::var(MAX_LAYER_ENV) {
            Ok(v) if !v.is_empty() => {
                runtime::parse_size(MAX_LAYER_ENV, &v).map_err(|e| invalid(e.to_string()))? as u64
            }
            _ => unionfs::DEFAULT_MAX_LAYER_BYTES,
        };
        Ok(ImageStore {
            root: root.to_path_buf(),
            layers,
            max_layer,
        })
    }

    /// The store at `root` for reading only: nothing is created or changed, and no lock is
    /// taken (`corral info`, `system df`, also for a user who may not write it). `None` when
    /// there is no store there yet. Its content is read as figures to show, never trusted
    /// for making anything (no ownership checks: use [`ImageStore::open`] for that).
    pub fn open_read(root: &Path) -> Result<Option<ImageStore>> {
        match fs::symlink_metadata(root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(invalid(format!(
                    "the image store {} is not a directory",
                    root.display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("stat", root)(e)),
        }
        fs::read_dir(root).map_err(io_err("read the image store", root))?;
        Ok(Some(ImageStore {
            root: root.to_path_buf(),
            layers: LayerStore::at(&root.join("layers")),
            max_layer: unionfs::DEFAULT_MAX_LAYER_BYTES,
        }))
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

    pub(crate) fn temp_path(&self, what: &str) -> PathBuf {
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

    pub(crate) fn put_blob_noting(&self, data: &[u8], added: &mut Added) -> Result<Digest> {
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

    pub(crate) fn add_layer_noting<R: Read>(
        &self,
        r: R,
        what: &str,
        added: &mut Added,
    ) -> Result<Layer> {
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

    /// The bytes of the regular files of the unpacked layer `diff_id` (its size as
    /// `docker images` shows it); 0 for a layer not in the store.
    pub fn layer_size(&self, diff_id: &Digest) -> u64 {
        self.layers
            .path(diff_id)
            .map(|p| file_bytes(&p))
            .unwrap_or(0)
    }

    /// `image`'s history, oldest first, each entry with the layer it added: entries without
    /// `empty_layer` match the layers in order.
    pub fn history(&self, image: &Image) -> Result<Vec<HistoryEntry>> {
        let layers = image.layers()?;
        let mut li = layers.iter();
        let hist = image.config.history().clone().unwrap_or_default();
        Ok(hist
            .iter()
            .map(|h| {
                let (layer, size) = if h.empty_layer().unwrap_or(false) {
                    ("<none>".to_string(), 0)
                } else {
                    match li.next() {
                        Some(l) => (
                            l.diff_id.hex()[..12].to_string(),
                            self.layer_size(&l.diff_id),
                        ),
                        None => ("<missing>".to_string(), 0),
                    }
                };
                HistoryEntry {
                    layer,
                    created: h.created().clone().unwrap_or_default(),
                    created_by: h.created_by().clone().unwrap_or_default(),
                    size,
                }
            })
            .collect())
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
        let (manifest, mbytes) = manifest_bytes(&cid, cbytes.len() as u64, layers)?;
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

    pub(crate) fn read_index(&self) -> Result<Index> {
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

    pub(crate) fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
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
            idx.untagged.remove(&mid);
            idx.images.insert(reference.to_string(), mid);
            Ok(())
        })
    }

    /// Keep `image` without a name (docker's `<none>:<none>`): listed, found by its ID,
    /// in use until `image rm` or `image prune`. Nothing changes for a tagged image.
    pub fn keep_untagged(&self, image: &Image) -> Result<()> {
        let mid = image.manifest_digest.to_string();
        self.update_index(|idx| {
            if !idx.images.values().any(|m| *m == mid) {
                idx.untagged.insert(mid);
            }
            Ok(())
        })
    }

    /// The images kept without a name (manifest digests).
    pub fn untagged(&self) -> Result<Vec<Digest>> {
        self.read_index()?
            .untagged
            .iter()
            .map(|m| Digest::parse(m).map_err(layer_err("images.json")))
            .collect()
    }

    /// Every image of the store, each once, with its tags (none for an untagged one).
    pub fn images(&self) -> Result<Vec<(Image, Vec<Reference>)>> {
        let mut by: BTreeMap<Digest, Vec<Reference>> = BTreeMap::new();
        for (r, m) in self.tags()? {
            by.entry(m).or_default().push(r);
        }
        for m in self.untagged()? {
            by.entry(m).or_default();
        }
        by.into_iter()
            .map(|(m, refs)| Ok((self.image_by_manifest(&m)?, refs)))
            .collect()
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
            let all: Vec<Digest> = tags
                .iter()
                .map(|(_, m)| m.clone())
                .chain(self.untagged()?)
                .collect();
            for m in &all {
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

/// The OCI manifest of an image whose config blob is `cid` (`clen` bytes) over `layers`,
/// and its encoding.
pub(crate) fn manifest_bytes(
    cid: &Digest,
    clen: u64,
    layers: &[Layer],
) -> Result<(oci_spec::image::ImageManifest, Vec<u8>)> {
    let manifest = oci_spec::image::ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            "application/vnd.oci.image.config.v1+json",
            cid,
            clen,
        )?)
        .layers(
            layers
                .iter()
                .map(|l| l.descriptor.clone())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(|e| invalid(format!("building manifest: {e}")))?;
    let bytes =
        serde_json::to_vec(&manifest).map_err(|e| invalid(format!("encoding manifest: {e}")))?;
    Ok((manifest, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
