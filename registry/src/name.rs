//! References as docker parses them, and the name a pulled image gets in the store.
//!
//! `debian` is `docker.io/library/debian:latest`, `me/app` is `docker.io/me/app:latest`, a
//! first part with a `.` or `:` or that is `localhost` names a registry
//! (`127.0.0.1:5000/app:1`), and `@sha256:...` pins a manifest digest. The store names an
//! image as `docker images` shows it: `debian:latest`, `me/app:latest`,
//! `127.0.0.1:5000/app:1`; an image pulled by digest alone is tagged `NAME:sha256-<hex>`
//! (the store keeps images by tag).

use oci_client::Reference as Remote;

use crate::error::{msg, Result};

/// A parsed reference: where the image lives, and what it is called in the store.
#[derive(Debug, Clone)]
pub struct Name {
    /// The registry reference (registry, repository, tag and/or digest).
    pub remote: Remote,
}

impl Name {
    /// Parse `s` as docker does.
    pub fn parse(s: &str) -> Result<Name> {
        let remote: Remote = s
            .parse()
            .map_err(|e| msg(format!("image reference {s:?}: {e}")))?;
        Ok(Name { remote })
    }

    /// The registry as named (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        self.remote.registry()
    }

    /// The repository within the registry (`library/debian`).
    pub fn repository(&self) -> &str {
        self.remote.repository()
    }

    /// The repository as `docker images` shows it: without `docker.io/` and `library/`.
    pub fn familiar(&self) -> String {
        let repo = self.repository();
        if self.registry() == "docker.io" {
            repo.strip_prefix("library/").unwrap_or(repo).to_string()
        } else {
            format!("{}/{repo}", self.registry())
        }
    }

    /// The tag the store gives the pulled image: the reference's tag, `latest` when it has
    /// neither tag nor digest, `sha256-<hex>` for a digest alone.
    pub fn store_tag(&self) -> String {
        match (self.remote.tag(), self.remote.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => d.replace(':', "-"),
            (None, None) => "latest".to_string(),
        }
    }

    /// `familiar:store_tag`, the store's reference of the image.
    pub fn store_reference(&self) -> Result<corral_image::Reference> {
        Ok(corral_image::Reference::parse(&format!(
            "{}:{}",
            self.familiar(),
            self.store_tag()
        ))?)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.remote.whole())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names() {
        let n = Name::parse("debian").unwrap();
        assert_eq!(n.to_string(), "docker.io/library/debian:latest");
        assert_eq!(n.store_reference().unwrap().to_string(), "debian:latest");
        let n = Name::parse("me/app:2").unwrap();
        assert_eq!(n.to_string(), "docker.io/me/app:2");
        assert_eq!(n.store_reference().unwrap().to_string(), "me/app:2");
        let n = Name::parse("127.0.0.1:5000/team/app:1.0").unwrap();
        assert_eq!(n.registry(), "127.0.0.1:5000");
        assert_eq!(n.repository(), "team/app");
        assert_eq!(
            n.store_reference().unwrap().to_string(),
            "127.0.0.1:5000/team/app:1.0"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let n = Name::parse(&format!("localhost/app@{d}")).unwrap();
        assert_eq!(n.remote.digest(), Some(d.as_str()));
        assert_eq!(n.store_tag(), format!("sha256-{}", "a".repeat(64)));
        for bad in ["", "UPPER", "a@sha256:12", "a:b:c"] {
            assert!(Name::parse(bad).is_err(), "{bad:?}");
        }
    }
}
