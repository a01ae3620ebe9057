//! The step cache: each step's key chained from the one before, and what a cached step
//! made (its layer) turned back into the image's layer.

use sha2::{Digest as _, Sha256};

use crate::store::{CacheEntry, Layer};

pub(super) fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of a step: `prev` (the key so far) and the step's canonical parts, hashed.
pub(super) fn step_key(prev: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    for p in parts {
        h.update(b"\n");
        h.update(p.as_bytes());
    }
    format!("sha256:{}", hex(&h.finalize()))
}

pub(super) fn to_digest(s: &str) -> Result<unionfs::Digest, String> {
    unionfs::Digest::parse(s).map_err(|e| e.to_string())
}

/// The cache's record of a layer a step made.
pub(super) fn entry_of(made: &Layer) -> (String, String, u64, String) {
    (
        made.diff_id.to_string(),
        made.descriptor.digest().to_string(),
        made.descriptor.size(),
        made.descriptor.media_type().to_string(),
    )
}

/// The layer a cache entry names.
pub(super) fn layer_of(e: &CacheEntry) -> Result<Option<Layer>, String> {
    let Some((diff, digest, size, media)) = &e.layer else {
        return Ok(None);
    };
    let d = oci_spec::image::Digest::try_from(digest.as_str()).map_err(|e| e.to_string())?;
    Ok(Some(Layer {
        diff_id: to_digest(diff)?,
        descriptor: oci_spec::image::Descriptor::new(
            oci_spec::image::MediaType::from(media.as_str()),
            *size,
            d,
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain() {
        let a = step_key("", &["FROM scratch"]);
        assert_eq!(a, step_key("", &["FROM scratch"]));
        assert_ne!(step_key(&a, &["RUN x"]), step_key(&a, &["RUN y"]));
        assert_ne!(step_key(&a, &["RUN x"]), step_key("", &["RUN x"]));
        assert!(to_digest(&a).is_ok());
    }
}
