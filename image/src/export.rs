//! Exporting an image as an OCI image layout (a directory or a tar).

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use oci_spec::image::MediaType;

use crate::error::{invalid, io_err, Result};
use crate::reference::Reference;
use crate::store::{desc_digest, descriptor, Image, ImageStore, ANNOTATION_NAME, ANNOTATION_REF};

impl ImageStore {
    /// The name an export of `image` (found by `name`) gives it in the layout's index:
    /// `name` when it is one of the image's tags, else the image's first tag.
    pub fn export_name(&self, name: &str, image: &Image) -> Result<Reference> {
        let tags = self.tags_of(&image.manifest_digest)?;
        match Reference::parse(name) {
            Ok(r) if tags.contains(&r) => Ok(r),
            _ => tags
                .into_iter()
                .next()
                .ok_or_else(|| invalid(format!("image {name:?} has no name"))),
        }
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
                let tmp = runtime::atomic_file::temp_beside(dest, 0o644)?;
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
                runtime::atomic_file::persist(b.into_inner()?, dest, true)
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

    // ---- save ----

    /// `docker save`: `images` (each with the names to give it; none for an untagged one)
    /// as one tar on `out` that both `docker load` and `corral load` read: an OCI image
    /// layout (`oci-layout`, `index.json` with one entry per name, each annotated with the
    /// image's name, and `blobs/sha256/`) that also holds docker's `manifest.json` (Config,
    /// RepoTags, Layers: paths of those blobs) and `repositories`. Each blob is written once.
    pub fn save<W: Write>(&self, images: &[(Image, Vec<Reference>)], out: W) -> Result<()> {
        let mut index_entries = Vec::new();
        let mut manifest_json = Vec::new();
        let mut repositories: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
        let mut blobs: Vec<unionfs::Digest> = Vec::new();
        let mut seen = BTreeSet::new();
        for (image, refs) in images {
            let mbytes = self.read_blob(&image.manifest_digest)?;
            let layers = image.layers()?;
            let layer_blobs: Vec<unionfs::Digest> = layers
                .iter()
                .map(|l| desc_digest(&l.descriptor))
                .collect::<Result<_>>()?;
            let names: Vec<Option<&Reference>> = if refs.is_empty() {
                vec![None]
            } else {
                refs.iter().map(Some).collect()
            };
            for r in names {
                let mut md = descriptor(
                    "application/vnd.oci.image.manifest.v1+json",
                    &image.manifest_digest,
                    mbytes.len() as u64,
                )?;
                if let Some(r) = r {
                    let mut ann = HashMap::new();
                    ann.insert(ANNOTATION_NAME.to_string(), r.to_string());
                    ann.insert(ANNOTATION_REF.to_string(), r.tag.clone());
                    md.set_annotations(Some(ann));
                    let top = layer_blobs.last().map(|d| d.hex().to_string());
                    let e = repositories
                        .entry(r.name.clone())
                        .or_insert_with(|| serde_json::json!({}));
                    if let (Some(top), Some(m)) = (top, e.as_object_mut()) {
                        m.insert(r.tag.clone(), serde_json::Value::String(top));
                    }
                }
                index_entries.push(md);
            }
            let blob = |d: &unionfs::Digest| format!("blobs/sha256/{}", d.hex());
            manifest_json.push(serde_json::json!({
                "Config": blob(&image.id),
                "RepoTags": if refs.is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::json!(refs.iter().map(|r| r.to_string()).collect::<Vec<_>>())
                },
                "Layers": layer_blobs.iter().map(blob).collect::<Vec<_>>(),
            }));
            for d in [image.manifest_digest.clone(), image.id.clone()]
                .into_iter()
                .chain(layer_blobs)
            {
                if seen.insert(d.clone()) {
                    blobs.push(d);
                }
            }
        }
        let index = oci_spec::image::ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(index_entries)
            .build()
            .map_err(|e| invalid(format!("building index: {e}")))?;
        let ibytes = enc(&index)?;
        let mbytes = enc(&manifest_json)?;
        let rbytes = enc(&serde_json::Value::Object(repositories))?;
        let res = (|| -> io::Result<()> {
            let mut b = tar::Builder::new(out);
            let put = |b: &mut tar::Builder<W>, name: &str, data: &[u8]| -> io::Result<()> {
                let mut h = tar::Header::new_ustar();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, name, data)
            };
            put(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            for d in &blobs {
                let mut f = File::open(self.blob_path(d))?;
                let mut h = tar::Header::new_ustar();
                h.set_size(f.metadata()?.len());
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), &mut f)?;
            }
            put(&mut b, "index.json", &ibytes)?;
            put(&mut b, "manifest.json", &mbytes)?;
            put(&mut b, "repositories", &rbytes)?;
            b.into_inner()?.flush()
        })();
        res.map_err(io_err("save", Path::new("the archive")))
    }
}

/// JSON encoding of the archive's documents.
fn enc<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| invalid(format!("encoding the archive: {e}")))
}
