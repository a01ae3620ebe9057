//! Pull an image into the store.
//!
//! The manifest is fetched (from the mirrors first, then the registry), an index or
//! manifest list resolved to the platform asked for (the host's by default), the config
//! fetched, and the layers the store lacks downloaded concurrently, each into
//! `blobs/tmp/pull-<hex>` while its sha256 is computed: a blob whose digest does not match
//! is refused, naming the digest, and its file removed. A download cut off (a network
//! error, a killed command) leaves that file, and the next pull of the layer asks the
//! registry for the rest only (an HTTP range request) after re-hashing what it has. Each
//! verified blob goes through [`ImageStore::add_layer`] (unpacked once into the layer
//! store, its diff ID checked against the config); then the config and the manifest are
//! stored byte for byte (the image keeps its registry digests) and the image is tagged.
//!
//! Two pulls of one layer at once (two commands) take turns on `pull-<hex>.lock`: the
//! second finds the layer in the store and skips it.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::PathBuf;

use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::BlobResponse;
use oci_client::errors::OciDistributionError;
use oci_client::Reference as Remote;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use sha2::{Digest as _, Sha256};
use unionfs::{Digest, FileLock};

use corral_image::{Image, ImageError, ImageStore, MAX_METADATA_BYTES};

use crate::auth;
use crate::config::{Endpoint, Registries};
use crate::error::{msg, oci, Error, Result};
use crate::name::Name;

/// The manifest media types asked for.
pub const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// When `run`, `create` and `build` pull (docker's `--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only when the store lacks the image (the default).
    Missing,
    /// Every time (the tag may have moved).
    Always,
    /// Never: a missing image is an error.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<PullPolicy> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            _ => Err(msg(format!(
                "--pull {s:?}: expected missing, always or never"
            ))),
        }
    }
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// `os/arch[/variant]` (default: linux and the host's architecture).
    pub platform: Option<String>,
    /// Registries this pull may reach without TLS checks, or over plain HTTP
    /// (`--tls-verify=false` names the reference's registry here).
    pub insecure: Vec<String>,
    /// Layers downloaded at once.
    pub jobs: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            insecure: Vec::new(),
            jobs: 3,
        }
    }
}

/// Where a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerState {
    /// In the store already: not fetched.
    Exists,
    /// Waiting for its turn.
    Waiting,
    /// Bytes arriving (`done` of `total`).
    Downloading,
    /// Downloaded and verified; being unpacked into the store.
    Extracting,
    /// In the store.
    Done,
}

/// A progress report: one layer's state.
#[derive(Debug, Clone)]
pub struct Event {
    /// The layer blob's digest.
    pub digest: String,
    /// Its state.
    pub state: LayerState,
    /// Bytes fetched so far (counting those a resumed download already had).
    pub done: u64,
    /// The blob's size.
    pub total: u64,
}

/// What a pull found: the image, and the digest the reference resolved to (the index's
/// when it named one).
pub struct Pulled {
    /// The image in the store.
    pub image: Image,
    /// The digest the registry gave for the reference.
    pub digest: String,
    /// The store's name for it.
    pub tag: corral_image::Reference,
    /// The tag was new or named another image before.
    pub fresh: bool,
}

/// Pull `reference` into `store` and tag it ([`Name::store_reference`]).
pub fn pull(
    store: &ImageStore,
    reference: &str,
    opts: &PullOptions,
    progress: &dyn Fn(&Event),
) -> Result<Pulled> {
    let name = Name::parse(reference)?;
    let mut regs = Registries::load(store.root())?;
    regs.insecure_now = opts.insecure.clone();
    let _l = store.lock_shared()?;
    crate::runtime()?.block_on(pull_async(store, &name, &regs, opts, progress))
}

/// The image `reference` names, pulled first as `policy` says.
pub fn ensure_image(
    store: &ImageStore,
    reference: &str,
    policy: PullPolicy,
    progress: &dyn Fn(&Event),
) -> Result<Image> {
    ensure_image_with(store, reference, policy, &PullOptions::default(), progress)
}

/// [`ensure_image`] with pull options (platform, insecure registries).
pub fn ensure_image_with(
    store: &ImageStore,
    reference: &str,
    policy: PullPolicy,
    opts: &PullOptions,
    progress: &dyn Fn(&Event),
) -> Result<Image> {
    if policy != PullPolicy::Always {
        match local(store, reference) {
            Ok(img) => return Ok(img),
            Err(ImageError::NotFound(_)) if policy == PullPolicy::Missing => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(pull(store, reference, opts, progress)?.image)
}

/// The image in the store named `reference` as given, or by its docker name.
fn local(store: &ImageStore, reference: &str) -> std::result::Result<Image, ImageError> {
    match store.resolve(reference) {
        Err(ImageError::NotFound(n)) => match Name::parse(reference)
            .ok()
            .and_then(|n| n.store_reference().ok())
        {
            Some(r) => store.resolve(&r.to_string()).map_err(|e| match e {
                ImageError::NotFound(_) => ImageError::NotFound(n),
                e => e,
            }),
            None => Err(ImageError::NotFound(n)),
        },
        r => r,
    }
}

/// A manifest as fetched: where from, its bytes and digest.
struct Fetched {
    client: oci_client::Client,
    remote: Remote,
    bytes: Vec<u8>,
    digest: String,
}

/// The client for `ep`, checked with a manifest request: verified HTTPS, or for an insecure
/// endpoint unverified HTTPS and then plain HTTP.
async fn fetch_manifest(regs: &Registries, ep: &Endpoint, name: &Name) -> Result<Fetched> {
    let mut remote = name.remote.clone();
    if ep.host != name.registry() {
        remote.set_mirror_registry(ep.host.clone());
    }
    let auth = auth::registry_auth(&ep.host)?;
    let tries: &[bool] = if ep.insecure {
        &[false, true]
    } else {
        &[false]
    };
    let mut last = None;
    for &plain in tries {
        let client = regs.client(ep, plain)?;
        match client.pull_manifest_raw(&remote, &auth, ACCEPT).await {
            Ok((bytes, digest)) => {
                return Ok(Fetched {
                    client,
                    remote,
                    bytes: bytes.to_vec(),
                    digest,
                })
            }
            Err(e @ OciDistributionError::RequestError(_)) => last = Some(e),
            Err(e) => return Err(oci(format!("manifest of {name} from {}", ep.host))(e)),
        }
    }
    Err(match last {
        Some(e) => oci(format!("manifest of {name} from {}", ep.host))(e),
        None => msg(format!("manifest of {name}: no endpoint")),
    })
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

/// `os/arch[/variant]` of the platform wanted.
fn wanted_platform(opts: &PullOptions) -> Result<(String, String, Option<String>)> {
    let Some(p) = &opts.platform else {
        return Ok(("linux".into(), corral_image::host_arch().to_string(), None));
    };
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => {
            Ok((os.to_string(), arch.to_string(), None))
        }
        [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
            Ok((os.to_string(), arch.to_string(), Some(v.to_string())))
        }
        _ => Err(msg(format!("--platform {p:?}: expected OS/ARCH[/VARIANT]"))),
    }
}

/// The entry of `idx` for the platform wanted.
fn pick(idx: &ImageIndex, opts: &PullOptions, what: &str) -> Result<Descriptor> {
    let (os, arch, variant) = wanted_platform(opts)?;
    let mut have = Vec::new();
    for m in idx.manifests() {
        let Some(p) = m.platform() else { continue };
        let (pos, parch) = (p.os().to_string(), p.architecture().to_string());
        let pv = p.variant().clone();
        have.push(format!(
            "{pos}/{parch}{}",
            pv.as_ref().map(|v| format!("/{v}")).unwrap_or_default()
        ));
        if pos == os && parch == arch && (variant.is_none() || variant == pv) {
            return Ok(m.clone());
        }
    }
    Err(msg(format!(
        "{what} has no image for {os}/{arch}{} (it has: {})",
        variant.map(|v| format!("/{v}")).unwrap_or_default(),
        if have.is_empty() {
            "none with a platform".to_string()
        } else {
            have.join(", ")
        }
    )))
}

fn is_index(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .map(|v| v.get("manifests").is_some())
        .unwrap_or(false)
}

async fn pull_async(
    store: &ImageStore,
    name: &Name,
    regs: &Registries,
    opts: &PullOptions,
    progress: &dyn Fn(&Event),
) -> Result<Pulled> {
    let mut errors = Vec::new();
    let mut found = None;
    for ep in regs.pull_endpoints(name.registry()) {
        match fetch_manifest(regs, &ep, name).await {
            Ok(f) => {
                found = Some(f);
                break;
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let Some(mut f) = found else {
        return Err(msg(errors.join("; ")));
    };
    check_digest(&f.bytes, &f.digest, name.remote.digest(), &name.to_string())?;
    let top_digest = sha256(&f.bytes);
    let auth = auth::registry_auth(f.remote.resolve_registry())?;
    if is_index(&f.bytes) {
        let idx: ImageIndex =
            serde_json::from_slice(&f.bytes).map_err(|e| msg(format!("index of {name}: {e}")))?;
        let d = pick(&idx, opts, &name.to_string())?;
        let r = f.remote.clone_with_digest(d.digest().to_string());
        let (bytes, _) = f
            .client
            .pull_manifest_raw(&r, &auth, ACCEPT)
            .await
            .map_err(oci(format!("manifest {} of {name}", d.digest())))?;
        check_digest(
            &bytes,
            d.digest().as_ref(),
            Some(d.digest().as_ref()),
            &name.to_string(),
        )?;
        if is_index(&bytes) {
            return Err(msg(format!(
                "{name}: the index entry {} is another index (nested indexes are not followed)",
                d.digest()
            )));
        }
        f.bytes = bytes.to_vec();
        f.digest = d.digest().to_string();
    }
    let manifest: ImageManifest =
        serde_json::from_slice(&f.bytes).map_err(|e| msg(format!("manifest of {name}: {e}")))?;
    // The config: small, in memory, verified.
    let cdesc = manifest.config();
    if cdesc.size() > MAX_METADATA_BYTES {
        return Err(msg(format!(
            "{name}: config {} is {} bytes (at most {MAX_METADATA_BYTES})",
            cdesc.digest(),
            cdesc.size()
        )));
    }
    let mut cbytes = Vec::new();
    f.client
        .pull_blob(&f.remote, cdesc.digest().as_ref(), &mut cbytes)
        .await
        .map_err(oci(format!("config {} of {name}", cdesc.digest())))?;
    check_digest(
        &cbytes,
        "",
        Some(cdesc.digest().as_ref()),
        &format!("config of {name}"),
    )?;
    let config: ImageConfiguration =
        serde_json::from_slice(&cbytes).map_err(|e| msg(format!("config of {name}: {e}")))?;
    if opts.platform.is_some() {
        // A single-platform image must be of the platform asked for.
        let (os, arch, _) = wanted_platform(opts)?;
        let (cos, carch) = (config.os().to_string(), config.architecture().to_string());
        if cos != os || carch != arch {
            return Err(msg(format!(
                "{name} is an image for {cos}/{carch}, not {os}/{arch}"
            )));
        }
    }
    let diff_ids = config.rootfs().diff_ids().clone();
    if diff_ids.len() != manifest.layers().len() {
        return Err(msg(format!(
            "{name}: its config lists {} layers, its manifest {}",
            diff_ids.len(),
            manifest.layers().len()
        )));
    }
    for l in manifest.layers() {
        progress(&Event {
            digest: l.digest().to_string(),
            state: LayerState::Waiting,
            done: 0,
            total: l.size(),
        });
    }
    // Each blob once (an image may list one layer twice: two fetches of it would wait on
    // each other's lock); fetched concurrently, then unpacked in order.
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<(&Descriptor, &String)> = manifest
        .layers()
        .iter()
        .zip(diff_ids.iter())
        .filter(|(d, _)| seen.insert(d.digest().to_string()))
        .collect();
    let jobs = opts.jobs.max(1);
    let client = &f.client;
    let remote = &f.remote;
    // Each layer is unpacked (on a blocking thread) as soon as it is there, while the
    // others download.
    let what = name.to_string();
    futures_util::stream::iter(unique.iter().map(|(d, id)| async {
        let Some((part, lock)) = fetch_layer(store, client, remote, d, id, progress).await? else {
            return Ok::<(), Error>(());
        };
        let dg = d.digest().to_string();
        progress(&Event {
            digest: dg.clone(),
            state: LayerState::Extracting,
            done: d.size(),
            total: d.size(),
        });
        let (st, p, id2, what2, dg2) = (
            store.clone(),
            part.clone(),
            id.to_string(),
            what.clone(),
            dg.clone(),
        );
        let res = tokio::task::spawn_blocking(move || -> Result<()> {
            let f = File::open(&p).map_err(|e| msg(format!("open {}: {e}", p.display())))?;
            let layer = st.add_layer(BufReader::new(f), &format!("{what2} layer {dg2}"))?;
            if layer.diff_id.as_str() != id2 {
                return Err(msg(format!(
                    "{what2}: layer {dg2} unpacks to diff ID {}, the config says {id2}",
                    layer.diff_id
                )));
            }
            Ok(())
        })
        .await
        .map_err(|e| msg(format!("unpacking layer {dg}: {e}")))
        .and_then(|r| r);
        let _ = fs::remove_file(&part);
        drop(lock);
        res?;
        progress(&Event {
            digest: dg,
            state: LayerState::Done,
            done: d.size(),
            total: d.size(),
        });
        Ok(())
    }))
    .buffer_unordered(jobs)
    .try_collect::<Vec<()>>()
    .await?;
    store.put_blob(&cbytes)?;
    let mid = store.put_blob(&f.bytes)?;
    let image = store.image_by_manifest(&mid)?;
    let tag = name.store_reference()?;
    let fresh = store
        .tags()?
        .iter()
        .all(|(t, m)| *t != tag || *m != image.manifest_digest);
    store.tag(&image, &tag)?;
    Ok(Pulled {
        image,
        digest: top_digest,
        tag,
        fresh,
    })
}

/// `bytes` must hash to `want` (when given); `got` is what the registry said.
fn check_digest(bytes: &[u8], _got: &str, want: Option<&str>, what: &str) -> Result<()> {
    if let Some(want) = want {
        let have = sha256(bytes);
        if have != want {
            return Err(msg(format!(
                "{what}: the registry sent content of digest {have} for {want}: refused"
            )));
        }
    }
    Ok(())
}

/// Download one layer blob into `blobs/tmp/pull-<hex>`, verified; `None` when the store has
/// it. The returned lock is held until the layer is in the store.
async fn fetch_layer(
    store: &ImageStore,
    client: &oci_client::Client,
    remote: &Remote,
    d: &Descriptor,
    diff_id: &str,
    progress: &dyn Fn(&Event),
) -> Result<Option<(PathBuf, FileLock)>> {
    let dg = d.digest().to_string();
    let want = Digest::parse(&dg).map_err(|e| msg(format!("layer digest {dg:?}: {e}")))?;
    let total = d.size();
    let ev = |state, done| {
        progress(&Event {
            digest: dg.clone(),
            state,
            done,
            total,
        })
    };
    let have = |s: &ImageStore| s.blob_path(&want).exists() && s.layer_store().contains(diff_id);
    if have(store) {
        ev(LayerState::Exists, total);
        return Ok(None);
    }
    let part = store
        .root()
        .join("blobs/tmp")
        .join(format!("pull-{}", want.hex()));
    let lock_path = part.with_extension("lock");
    let lock = tokio::task::spawn_blocking(move || FileLock::exclusive(&lock_path))
        .await
        .map_err(|e| msg(format!("waiting for layer {dg}: {e}")))?
        .map_err(|e| msg(format!("locking layer {dg}: {e}")))?;
    if have(store) {
        ev(LayerState::Exists, total);
        return Ok(None);
    }
    let io = |what: &str, e: std::io::Error| msg(format!("{what} {}: {e}", part.display()));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .append(true)
        .open(&part)
        .map_err(|e| io("open", e))?;
    let mut hasher = Sha256::new();
    let mut done = file.metadata().map_err(|e| io("stat", e))?.len();
    if done > total {
        file.set_len(0).map_err(|e| io("truncate", e))?;
        done = 0;
    }
    if done > 0 {
        // What an earlier pull left: hashed again, then only the rest is asked for.
        let mut r = File::open(&part).map_err(|e| io("open", e))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = r.read(&mut buf).map_err(|e| io("read", e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    ev(LayerState::Downloading, done);
    if done < total {
        let sized = match client
            .pull_blob_stream_partial(remote, dg.as_str(), done, None)
            .await
            .map_err(oci(format!("layer {dg}")))?
        {
            BlobResponse::Partial(s) => s,
            BlobResponse::Full(s) => {
                // The registry sent it all again.
                file.set_len(0).map_err(|e| io("truncate", e))?;
                hasher = Sha256::new();
                done = 0;
                s
            }
        };
        let mut stream = sized.stream;
        let mut last_report = done;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                // oci-client's own check of a whole blob fails at its end: ours says more.
                Err(_) if done == total => break,
                Err(e) => {
                    return Err(msg(format!(
                        "layer {dg}: download cut off after {done} of {total} bytes ({e}); \
                         pulling again resumes it"
                    )))
                }
            };
            done += chunk.len() as u64;
            if done > total {
                drop(file);
                let _ = fs::remove_file(&part);
                return Err(msg(format!(
                    "layer {dg}: the registry sent more than its {total} bytes: refused"
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(|e| io("write", e))?;
            if done - last_report >= 256 << 10 || done == total {
                last_report = done;
                ev(LayerState::Downloading, done);
            }
        }
    }
    let got = format!("sha256:{:x}", hasher.finalize());
    if done != total || got != dg {
        drop(file);
        let _ = fs::remove_file(&part);
        return Err(msg(if done != total {
            format!("layer {dg}: the registry sent {done} bytes of {total}: refused")
        } else {
            format!("layer {dg}: the registry sent content of digest {got}: refused, nothing kept")
        }));
    }
    // Not synced: add_layer copies it into the store and syncs that copy.
    Ok(Some((part, lock)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let idx: ImageIndex = serde_json::from_str(
            r#"{"schemaVersion":2,"manifests":[
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
               "digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
               "platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
               "digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
               "platform":{"os":"linux","architecture":"amd64"}}]}"#,
        )
        .unwrap();
        let o = |p: &str| PullOptions {
            platform: Some(p.to_string()),
            ..PullOptions::default()
        };
        assert!(pick(&idx, &o("linux/amd64"), "x")
            .unwrap()
            .digest()
            .to_string()
            .contains("bbbb"));
        assert!(pick(&idx, &o("linux/arm64/v8"), "x")
            .unwrap()
            .digest()
            .to_string()
            .contains("aaaa"));
        let e = pick(&idx, &o("linux/s390x"), "x").unwrap_err().to_string();
        assert!(
            e.contains("linux/s390x") && e.contains("linux/arm64/v8, linux/amd64"),
            "{e}"
        );
        assert!(pick(&idx, &o("linux"), "x").is_err());
        assert_eq!("never".parse::<PullPolicy>().unwrap(), PullPolicy::Never);
        assert!("sometimes".parse::<PullPolicy>().is_err());
    }
}
