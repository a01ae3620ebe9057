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
        let imgs: BTreeSet<Digest> = self.tags()?.into_iter().map(|(_, m)| m).collect();
        let layers = self.layers.list().map_err(layer_err("listing layers"))?;
        Ok((
            imgs.len(),
            layers.len(),
            dir_size(&self.root.join("blobs")),
            dir_size(&self.root.join("layers")),
        ))
    }
}
