//! corral's registry client: `pull`, `push`, `login` and `logout` over the OCI distribution
//! protocol, done by the `oci-client` crate (token and basic auth, manifests, blobs, uploads,
//! cross-repository mounts). What comes in goes through the image store's own import path
//! (`add_layer`, blobs, `tag`), so a pulled image is an ordinary image of the store.
//!
//! | module | what |
//! |---|---|
//! | [`name`] | references as docker parses them (`debian` is `docker.io/library/debian:latest`) and the name an image gets in the store |
//! | [`config`] | which registries are plain HTTP or unverified TLS, mirrors, extra CA certificates (`<store>/registries.json`, `<store>/certs.d`) |
//! | [`auth`] | credentials in the docker config format (`$DOCKER_CONFIG/config.json`), credential helpers, login and logout |
//! | [`pull`](mod@pull) | pull into the store: platform choice, concurrent layer downloads verified as they stream, resume, progress |
//! | [`push`](mod@push) | push an image of the store: blob existence checks, mounts, uploads, the manifest as stored |

pub mod auth;
pub mod config;
mod error;
pub mod name;
pub mod pull;
pub mod push;

pub use error::{Error, Result};
pub use pull::{ensure_image, pull, Event, LayerState, PullOptions, PullPolicy};
pub use push::{login, push, PushOptions};

/// One tokio runtime per call (the CLI, C and Python faces are synchronous).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    // reqwest is built without a default TLS provider: ring, installed once per process
    // (rustls marks it deprecated for lacking post-quantum key exchange; aws-lc-rs would
    // need cmake and a far longer build).
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Msg(format!("starting the I/O runtime: {e}")))
}
