//! Which registries are reached how: `<store>/registries.json`.
//!
//! ```json
//! { "registries": [
//!     { "location": "127.0.0.1:5000", "insecure": true,
//!       "mirrors": [ { "location": "127.0.0.1:5001", "insecure": true } ] } ] }
//! ```
//!
//! A registry is reached over verified HTTPS unless it is named `insecure` here or by
//! `--tls-verify=false` for one command: then HTTPS without certificate checks, and plain
//! HTTP when HTTPS does not answer. Mirrors are tried in order before the registry itself
//! (for pulls only). CA certificates for a registry are read from `<store>/certs.d/HOST/*.crt`,
//! `/etc/containers/certs.d/HOST/*.crt` and `/etc/docker/certs.d/HOST/*.crt` (PEM).

use std::fs;
use std::path::{Path, PathBuf};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use serde::Deserialize;

use crate::error::{msg, Result};

/// The file's name in the store.
pub const REGISTRIES_FILE: &str = "registries.json";

/// One registry's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConf {
    /// `host[:port]`.
    pub location: String,
    /// Plain HTTP or unverified TLS allowed.
    #[serde(default)]
    pub insecure: bool,
    /// Tried in order before the registry, for pulls.
    #[serde(default)]
    pub mirrors: Vec<RegistryConf>,
}

/// `<store>/registries.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    /// The registries named.
    #[serde(default)]
    pub registries: Vec<RegistryConf>,
    /// Extra directories of `HOST/*.crt` (tests; `<store>/certs.d` and the system ones are
    /// always read).
    #[serde(skip)]
    pub cert_dirs: Vec<PathBuf>,
    /// Registries this command may reach without TLS checks (`--tls-verify=false`).
    #[serde(skip)]
    pub insecure_now: Vec<String>,
}

/// How to reach one host.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host[:port]`.
    pub host: String,
    /// Plain HTTP or unverified TLS allowed.
    pub insecure: bool,
}

impl Registries {
    /// Read `<store>/registries.json` (none: no settings).
    pub fn load(store: &Path) -> Result<Registries> {
        let p = store.join(REGISTRIES_FILE);
        let mut r = match fs::read(&p) {
            Ok(b) => serde_json::from_slice::<Registries>(&b)
                .map_err(|e| msg(format!("{}: {e}", p.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Registries::default(),
            Err(e) => return Err(msg(format!("read {}: {e}", p.display()))),
        };
        r.cert_dirs = vec![
            store.join("certs.d"),
            PathBuf::from("/etc/containers/certs.d"),
            PathBuf::from("/etc/docker/certs.d"),
        ];
        Ok(r)
    }

    fn conf(&self, host: &str) -> Option<&RegistryConf> {
        self.registries.iter().find(|r| r.location == host)
    }

    /// Is `host` allowed plain HTTP or unverified TLS?
    pub fn insecure(&self, host: &str) -> bool {
        self.insecure_now.iter().any(|h| h == host) || self.conf(host).is_some_and(|r| r.insecure)
    }

    /// Where to pull from, in order: the mirrors of `host`, then `host`.
    pub fn pull_endpoints(&self, host: &str) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .conf(host)
            .map(|r| {
                r.mirrors
                    .iter()
                    .map(|m| Endpoint {
                        host: m.location.clone(),
                        insecure: m.insecure || self.insecure(&m.location),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Endpoint {
            host: host.to_string(),
            insecure: self.insecure(host),
        });
        out
    }

    /// The CA certificates given for `host`.
    fn certificates(&self, host: &str) -> Result<Vec<Certificate>> {
        let mut out = Vec::new();
        for d in &self.cert_dirs {
            let dir = d.join(host);
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                if p.extension().is_some_and(|e| e == "crt") {
                    let data =
                        fs::read(&p).map_err(|e| msg(format!("read {}: {e}", p.display())))?;
                    out.push(Certificate {
                        encoding: CertificateEncoding::Pem,
                        data,
                    });
                }
            }
        }
        Ok(out)
    }

    /// A client for `ep`: verified HTTPS, or (insecure) unverified HTTPS / plain HTTP.
    pub fn client(&self, ep: &Endpoint, plain_http: bool) -> Result<oci_client::Client> {
        let cfg = ClientConfig {
            protocol: if plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: ep.insecure,
            extra_root_certificates: self.certificates(&ep.host)?,
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(30)),
            ..ClientConfig::default()
        };
        oci_client::Client::try_from(cfg)
            .map_err(|e| msg(format!("registry client for {}: {e}", ep.host)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_then_the_registry() {
        let t = tempfile::tempdir().unwrap();
        fs::write(
            t.path().join(REGISTRIES_FILE),
            r#"{"registries":[{"location":"a:1","mirrors":[{"location":"m:2","insecure":true}]}]}"#,
        )
        .unwrap();
        let r = Registries::load(t.path()).unwrap();
        let eps = r.pull_endpoints("a:1");
        assert_eq!(eps.len(), 2);
        assert_eq!((eps[0].host.as_str(), eps[0].insecure), ("m:2", true));
        assert_eq!((eps[1].host.as_str(), eps[1].insecure), ("a:1", false));
        assert!(!r.insecure("b"));
        fs::write(
            t.path().join(REGISTRIES_FILE),
            r#"{"registries":[{"place":1}]}"#,
        )
        .unwrap();
        let e = Registries::load(t.path()).unwrap_err().to_string();
        assert!(e.contains("registries.json") && e.contains("place"), "{e}");
    }
}
