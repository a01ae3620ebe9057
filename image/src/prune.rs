//! What uses what (reference counts), and removing what nothing uses: `image rm`, `prune`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use serde::Deserialize;
use unionfs::Digest;

use crate::error::{invalid, io_err, layer_err, Result};
use crate::reference::Reference;
use crate::store::{desc_digest, dir_size, CacheEntry, ImageStore};

/// The file in a build step's temp dir naming the RUN container that uses its root
/// (`{"state_root": ..., "id": ...}`).
pub const STEP_CONTAINER: &str = "container.json";

/// What `system df` shows of a store's images and build cache.
#[derive(Debug, Default, Clone)]
pub struct DiskUsage {
    /// Images (tagged or kept untagged).
    pub images: usize,
    /// Of them, those a live container was made from.
    pub active_images: usize,
    /// Bytes of the layers of every image, each layer once.
    pub images_bytes: u64,
    /// Bytes of the layers no active image uses.
    pub images_reclaimable: u64,
    /// Build cache entries.
    pub cache_entries: usize,
    /// Bytes of the layers only the build cache keeps (no image, no container).
    pub cache_bytes: u64,
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

impl ImageStore {
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
        manifests.extend(self.untagged()?);
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
        self.remove_image_with(name, false)
    }

    /// `docker rmi [-f]`: [`ImageStore::remove_image`] with docker's rules and words. By a
    /// tag, the tag goes; the image goes with its last name unless a container uses it
    /// (refused; with `force` the image stays, untagged, for the container). By ID, every
    /// tag goes with it: an image with several names only with `force`, one a container
    /// uses never (a running one) or only untagged (`force`, a stopped one).
    pub fn remove_image_with(&self, name: &str, force: bool) -> Result<Vec<String>> {
        let img = self.resolve(name)?;
        let tags = self.tags_of(&img.manifest_digest)?;
        let mut out = Vec::new();
        let by_tag = Reference::parse(name).ok().filter(|r| tags.contains(r));
        let users: Vec<(String, bool)> = self
            .containers()?
            .into_iter()
            .filter(|c| c.live() && c.manifest == img.manifest_digest.as_str())
            .map(|c| {
                let running = runtime::Container::listed_state(&c.state_root, &c.id)
                    .map(|s| matches!(s.status, runtime::Status::Running | runtime::Status::Paused))
                    .unwrap_or(false);
                (c.id, running)
            })
            .collect();
        let short = img.short_id().to_string();
        if by_tag.is_none() && tags.len() > 1 && !force {
            return Err(invalid(format!(
                "conflict: unable to delete {short} (must be forced) - image is referenced in \
                 multiple repositories"
            )));
        }
        let last = by_tag.is_none() || tags.len() == 1;
        let drop_tags: Vec<Reference> = match &by_tag {
            Some(r) => vec![r.clone()],
            None => tags.clone(),
        };
        let mid = img.manifest_digest.to_string();
        if last && !users.is_empty() {
            let (cid, running) = &users[0];
            let cid = short_container(cid);
            match &by_tag {
                Some(r) if !force => {
                    return Err(invalid(format!(
                        "conflict: unable to remove repository reference \"{r}\" (must force) - \
                         container {cid} is using its referenced image {short}"
                    )))
                }
                None if *running => {
                    return Err(invalid(format!(
                        "conflict: unable to delete {short} (cannot be forced) - image is being \
                         used by running container {cid}"
                    )))
                }
                None if !force => {
                    return Err(invalid(format!(
                        "conflict: unable to delete {short} (must be forced) - image is being \
                         used by stopped container {cid}"
                    )))
                }
                _ => {}
            }
            // Forced: the names go, the image stays (untagged) for its container.
            self.update_index(|idx| {
                for r in &drop_tags {
                    idx.images.remove(&r.to_string());
                }
                idx.untagged.insert(mid.clone());
                Ok(())
            })?;
            out.extend(drop_tags.iter().map(|r| format!("Untagged: {r}")));
            return Ok(out);
        }
        self.update_index(|idx| {
            for r in &drop_tags {
                idx.images.remove(&r.to_string());
            }
            if last {
                idx.untagged.remove(&mid);
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
        let mut deleted_layers = Vec::new();
        for l in img.layers()? {
            gone.push(desc_digest(&l.descriptor)?);
            if !layers.contains(l.diff_id.as_str()) && self.layers.contains(&l.diff_id) {
                self.layers
                    .remove(&l.diff_id)
                    .map_err(layer_err("removing a layer"))?;
                deleted_layers.push(format!("Deleted: {}", l.diff_id));
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
        out.extend(deleted_layers);
        Ok(out)
    }

    /// `docker image prune`: the images kept without a name (`all`: every image) that no
    /// live container uses are removed, then whatever nothing uses ([`ImageStore::prune`]).
    /// Returns docker's lines (`untagged: ...`, `deleted: sha256:...`), what the sweep
    /// after them removed, and the bytes freed in all. The caller holds the exclusive lock.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<String>, PruneReport, u64)> {
        let before = self.disk_bytes();
        let used: BTreeSet<String> = self
            .containers()?
            .into_iter()
            .filter(|c| c.live())
            .map(|c| c.manifest)
            .collect();
        let mut lines = Vec::new();
        for (img, refs) in self.images()? {
            if used.contains(img.manifest_digest.as_str()) || (!all && !refs.is_empty()) {
                continue;
            }
            let name = img.id.to_string();
            if !refs.is_empty() {
                // Every name goes, then the image.
                for r in &refs {
                    for l in self.remove_image_with(&r.to_string(), true)? {
                        lines.push(lower_first(&l));
                    }
                }
                continue;
            }
            for l in self.remove_image_with(&name, true)? {
                lines.push(lower_first(&l));
            }
        }
        let rep = self.prune()?;
        Ok((lines, rep, before.saturating_sub(self.disk_bytes())))
    }

    /// The figures of `system df` (reads only).
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let mut du = DiskUsage::default();
        let live: Vec<crate::ContainerRecord> = match self.containers() {
            Ok(v) => v.into_iter().filter(|c| c.live()).collect(),
            Err(_) => Vec::new(),
        };
        let used: BTreeSet<&str> = live.iter().map(|c| c.manifest.as_str()).collect();
        let mut all_layers = BTreeSet::new();
        let mut active_layers = BTreeSet::new();
        for (img, _) in self.images()? {
            du.images += 1;
            let active = used.contains(img.manifest_digest.as_str());
            if active {
                du.active_images += 1;
            }
            for d in img.diff_ids()? {
                if active {
                    active_layers.insert(d.to_string());
                }
                all_layers.insert(d);
            }
        }
        for c in &live {
            active_layers.extend(c.layers.iter().cloned());
        }
        for d in &all_layers {
            let n = self.layer_size(d);
            du.images_bytes += n;
            if !active_layers.contains(d.as_str()) {
                du.images_reclaimable += n;
            }
        }
        let cdir = self.root.join("cache");
        du.cache_entries = fs::read_dir(&cdir).map(|rd| rd.count()).unwrap_or(0);
        if let Ok(list) = self.layers.list() {
            for l in list {
                if !active_layers.contains(&l) && !all_layers.iter().any(|d| d.as_str() == l) {
                    if let Ok(d) = Digest::parse(&l) {
                        du.cache_bytes += self.layer_size(&d);
                    }
                }
            }
        }
        Ok(du)
    }

    /// Bytes on disk of the store's content (layers, blobs, records, cache).
    pub fn disk_bytes(&self) -> u64 {
        ["layers", "blobs", "containers", "cache"]
            .iter()
            .map(|d| dir_size(&self.root.join(d)))
            .sum()
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
                runtime::Container::force_delete(&step.state_root, &step.id).map_err(|err| {
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
        let mut left: Vec<PathBuf> = runtime::hostmounts::mountinfo()
            .into_iter()
            .map(|m| m.mount_point)
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

    /// Usage figures: (images, layers, blobs' bytes, layers' bytes).
    pub fn usage(&self) -> Result<(usize, usize, u64, u64)> {
        let mut imgs: BTreeSet<Digest> = self.tags()?.into_iter().map(|(_, m)| m).collect();
        imgs.extend(self.untagged()?);
        let layers = self.layers.list().map_err(layer_err("listing layers"))?;
        Ok((
            imgs.len(),
            layers.len(),
            dir_size(&self.root.join("blobs")),
            dir_size(&self.root.join("layers")),
        ))
    }
}

/// A container id as docker shows it: the first 12 of a 64-hex id, else the id.
fn short_container(id: &str) -> &str {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        &id[..12]
    } else {
        id
    }
}

/// `Deleted: x` -> `deleted: x` (docker's prune lists in lower case).
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
