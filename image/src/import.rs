//! Importing images: `docker save` archives, OCI image layouts, plain root filesystems.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Os};
use serde::Deserialize;
use unionfs::{Digest, UnpackOptions};

use crate::error::{invalid, io_err, layer_err, ImageError, Result};
use crate::reference::Reference;
use crate::store::{
    desc_digest, host_arch, manifest_bytes, rootfs_config, Image, ImageStore, ANNOTATION_NAME,
    ANNOTATION_REF, MAX_METADATA_BYTES,
};

impl ImageStore {
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
        self.import_with(src, reference, false)
    }

    /// `docker load`: an image archive (`docker save`, an OCI layout) imported under the
    /// names it carries; an image it gives no name is kept untagged (docker's
    /// `<none>:<none>`, found by its ID) instead of being refused.
    pub fn load(&self, src: &Path) -> Result<Vec<(Image, Vec<Reference>)>> {
        self.import_with(src, None, true)
    }

    fn import_with(
        &self,
        src: &Path,
        reference: Option<&Reference>,
        keep_unnamed: bool,
    ) -> Result<Vec<(Image, Vec<Reference>)>> {
        let mut added = Added::default();
        let res = self
            .import_noting(src, reference, &mut added)
            .and_then(|found| self.tag_imported(src, found, reference, keep_unnamed));
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
        keep_unnamed: bool,
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
                    if f.refs.is_empty() && !keep_unnamed {
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
            if refs.is_empty() {
                self.keep_untagged(img)?;
            }
        }
        if !keep_unnamed {
            return Ok(out);
        }
        // One entry per image (an OCI index names each tag in an entry of its own).
        let mut merged: Vec<(Image, Vec<Reference>)> = Vec::new();
        for (img, refs) in out {
            match merged
                .iter_mut()
                .find(|(i, _)| i.manifest_digest == img.manifest_digest)
            {
                Some((_, r)) => r.extend(refs),
                None => merged.push((img, refs)),
            }
        }
        Ok(merged)
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
            let (manifest, mbytes) = manifest_bytes(&cid, cbytes.len() as u64, &layers)?;
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
        runtime::in_root::open_regular(&self.fd, p, runtime::in_root::BENEATH).map_err(|e| {
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
        runtime::in_root::read_capped(f, MAX_METADATA_BYTES, &p).map_err(io_err("read", &p))
    }
}

/// What an import added to the store (removed again if the import fails).
#[derive(Default)]
pub(crate) struct Added {
    pub(crate) layers: Vec<Digest>,
    pub(crate) blobs: Vec<Digest>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
