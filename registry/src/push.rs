//! Push an image of the store to a registry.
//!
//! Each blob (layers, then the config) is first asked for (`HEAD`): one the repository has
//! is not sent. One the registry has in another repository that the image is also named
//! after (another tag of it in the store on the same registry) is mounted from there when
//! the registry allows it; the rest are uploaded as oci-client does (chunked `PATCH`es). The
//! manifest goes last, byte for byte as stored, so the registry's digest is the store's.

use oci_client::secrets::RegistryAuth;
use oci_client::{Reference as Remote, RegistryOperation};

use corral_image::ImageStore;

use crate::auth;
use crate::config::{Endpoint, Registries};
use crate::error::{msg, oci, Result};
use crate::name::Name;
use crate::pull::{Event, LayerState};

/// How to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Registries this push may reach without TLS checks or over plain HTTP.
    pub insecure: Vec<String>,
}

/// Push the image `image` (a name, tag or ID in the store) as `target` (default: `image`
/// read as a reference). Returns the reference pushed and the manifest's digest.
pub fn push(
    store: &ImageStore,
    image: &str,
    target: Option<&str>,
    opts: &PushOptions,
    progress: &dyn Fn(&Event),
) -> Result<(String, String)> {
    let _l = store.lock_shared()?;
    let img = store.resolve(image)?;
    let name = Name::parse(target.unwrap_or(image))?;
    if name.remote.digest().is_some() {
        return Err(msg(format!("push {name}: push to a tag, not a digest")));
    }
    let mut regs = Registries::load(store.root())?;
    regs.insecure_now = opts.insecure.clone();
    // Other names of the image on the same registry: blobs may be mounted from them.
    let sources: Vec<Remote> = store
        .tags_of(&img.manifest_digest)?
        .iter()
        .filter_map(|r| Name::parse(&r.to_string()).ok())
        .filter(|n| n.registry() == name.registry() && n.repository() != name.repository())
        .map(|n| n.remote)
        .collect();
    let mbytes = store.read_blob(&img.manifest_digest)?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&mbytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_string());
    let mut blobs: Vec<(String, u64)> = img
        .manifest
        .layers()
        .iter()
        .map(|d| (d.digest().to_string(), d.size()))
        .collect();
    blobs.push((
        img.manifest.config().digest().to_string(),
        img.manifest.config().size(),
    ));
    let ep = Endpoint {
        host: name.registry().to_string(),
        insecure: regs.insecure(name.registry()),
    };
    let auth = auth::registry_auth(name.remote.resolve_registry())?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        let client = connect(&regs, &ep, &name, &auth).await?;
        let remote = &name.remote;
        for (dg, size) in &blobs {
            let ev = |state, done| {
                progress(&Event {
                    digest: dg.clone(),
                    state,
                    done,
                    total: *size,
                })
            };
            if client
                .blob_exists(remote, dg)
                .await
                .map_err(oci(format!("blob {dg} on {name}")))?
            {
                ev(LayerState::Exists, *size);
                continue;
            }
            let mut mounted = false;
            for src in &sources {
                if client.mount_blob(remote, src, dg).await.is_ok()
                    && client.blob_exists(remote, dg).await.unwrap_or(false)
                {
                    mounted = true;
                    break;
                }
            }
            if mounted {
                ev(LayerState::Exists, *size);
                continue;
            }
            ev(LayerState::Downloading, 0);
            let d = unionfs::Digest::parse(dg).map_err(|e| msg(format!("blob {dg}: {e}")))?;
            let path = store.blob_path(&d);
            let data = std::fs::read(&path)
                .map_err(|e| msg(format!("read blob {}: {e}", path.display())))?;
            client
                .push_blob(remote, data, dg)
                .await
                .map_err(oci(format!("upload of blob {dg} to {name}")))?;
            ev(LayerState::Done, *size);
        }
        let ct = http::HeaderValue::from_str(&media_type)
            .map_err(|e| msg(format!("manifest media type {media_type:?}: {e}")))?;
        client
            .push_manifest_raw(remote, mbytes.clone(), ct)
            .await
            .map_err(oci(format!("manifest of {name}")))?;
        Ok((name.to_string(), img.manifest_digest.to_string()))
    })
}

/// A client for `ep` that has answered (authenticated for pushing): verified HTTPS, or for
/// an insecure registry unverified HTTPS, then plain HTTP.
pub(crate) async fn connect(
    regs: &Registries,
    ep: &Endpoint,
    name: &Name,
    auth: &RegistryAuth,
) -> Result<oci_client::Client> {
    let tries: &[bool] = if ep.insecure {
        &[false, true]
    } else {
        &[false]
    };
    let mut last = String::new();
    for &plain in tries {
        let client = regs.client(ep, plain)?;
        match client
            .auth(&name.remote, auth, RegistryOperation::Push)
            .await
        {
            Ok(_) => return Ok(client),
            Err(e) => last = format!("{}: {}", ep.host, crate::error::chain(&e)),
        }
    }
    Err(msg(format!("registry {last}")))
}

/// Check `user`/`secret` against `host` and store them in the docker config.
pub fn login(
    store: &ImageStore,
    host: &str,
    user: &str,
    secret: &str,
    insecure: bool,
) -> Result<()> {
    let mut regs = Registries::load(store.root())?;
    if insecure {
        regs.insecure_now.push(host.to_string());
    }
    let ep = Endpoint {
        host: host.to_string(),
        insecure: regs.insecure(host),
    };
    let probe = Remote::with_tag(host.to_string(), "corral/login".into(), "latest".into());
    let auth = RegistryAuth::Basic(user.to_string(), secret.to_string());
    crate::runtime()?.block_on(async {
        let tries: &[bool] = if ep.insecure {
            &[false, true]
        } else {
            &[false]
        };
        let mut last = String::new();
        for &plain in tries {
            let client = regs.client(&ep, plain)?;
            let refused = |s: String| msg(format!("login to {host} as {user}: refused ({s})"));
            match client.auth(&probe, &auth, RegistryOperation::Pull).await {
                // A token service gave a token for these credentials: they hold.
                Ok(Some(_)) => return Ok(()),
                // The registry wants basic auth (or none): try them on the catalog, where a
                // 401 means they are wrong.
                Ok(None) => {}
                Err(e @ oci_client::errors::OciDistributionError::RequestError(_)) => {
                    last = crate::error::chain(&e);
                    continue;
                }
                Err(e) => return Err(refused(e.to_string())),
            }
            match client.catalog(&probe, &auth, Some(1), None).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let s = e.to_string();
                    let l = s.to_lowercase();
                    if s.contains("401")
                        || l.contains("unauthorized")
                        || l.contains("not authorized")
                    {
                        return Err(refused(s));
                    }
                    last = s;
                }
            }
        }
        Err(msg(format!("login to {host}: {last}")))
    })?;
    auth::store_credentials(host, user, secret)
}
