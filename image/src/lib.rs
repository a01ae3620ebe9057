//! corral's images: OCI manifests and configs over `unionfs`'s layer store, Dockerfile
//! builds, and containers made from images. Every face (the CLI, C, Python) gets import,
//! build, tag, list, remove and prune from here, and makes and removes a container of an
//! image with one call each ([`create`], [`remove`]).
//!
//! A store directory (default `/var/lib/corral`, or `$CORRAL_STORE`) holds:
//!
//! | path | what |
//! |---|---|
//! | `layers/sha256/<diff id>/` | each layer unpacked once, in overlay form (`unionfs::LayerStore`) |
//! | `blobs/sha256/<digest>` | layer tars as imported or made (compressed), image configs and manifests (OCI JSON) |
//! | `images.json` | tags: `name:tag` -> manifest digest |
//! | `networks/`, `cni/` | CNI networks, the results cache, address leases and containers' hosts files (`corral_net`) |
//! | `containers/<id>/` | a container made from an image: its bundle (`config.json`) and `image.json` (which image, which layers, where its state lives; `keep` for an engine's container, whose dir also holds its writable layer and the engine's files, see `corral_engine`) |
//! | `names/<name>`, `waits/` | the engine's container names (symlinks to ids), and its `wait`s' tickets |
//! | `cache/<key>.json` | the build cache: a step's key -> its layer and time |
//! | `gc.lock`, `index.lock` | `flock`s: every command holds `gc.lock` shared while it adds or uses content; `image rm` and `prune` hold it exclusive; `index.lock` serialises changes of `images.json` |
//!
//! Every file appears by `rename` (a command killed halfway leaves at most a temp file under
//! `layers/tmp` or `blobs/tmp`, which `prune` removes). References are counted, not stored:
//! a layer or blob is in use while a tagged image or a live container (its state dir exists,
//! or the command creating it is alive) refers to it.
//!
//! | module | what |
//! |---|---|
//! | [`reference`](mod@reference) | `NAME[:TAG]` |
//! | [`store`] | the store: open, blobs, layers, images, tags, resolve, the build cache |
//! | `import`, `export` | `docker save` archives, OCI layouts and root filesystems in; OCI layouts out |
//! | `prune` | reference counts, `image rm`, `prune`, usage |
//! | [`record`] | containers made from images: their records and bundles, [`create`], [`remove`] |
//! | [`build`] | Dockerfile builds: the parser, `.dockerignore`, the in-root copier, the step cache |
//! | [`describe`] | an image's config merged into a container's [`runtime::describe::Description`] |
//! | `network` | a container's CNI networks: hosts files bound in, attach after create, detach at remove |
//! | [`error`] | [`ImageError`] and [`Error`] (an image error or the runtime's) |

pub mod build;
pub mod describe;
pub mod error;
mod export;
mod import;
mod network;
mod prune;
pub mod record;
pub mod reference;
pub mod store;

pub use describe::{describe_image, find_in_layers, resolve_user};
pub use error::{Error, ImageError, Result};
pub use prune::{PruneReport, STEP_CONTAINER};
pub use record::{
    create, delete, forget_container, prepare_container, remove, resolve_pinned, ContainerRecord,
};
pub use reference::Reference;
pub use store::{
    default_store, host_arch, now_rfc3339, rfc3339, rootfs_config, CacheEntry, HistoryEntry, Image,
    ImageStore, Layer, ANNOTATION_NAME, ANNOTATION_REF, DEFAULT_STORE, MAX_LAYER_ENV,
    MAX_METADATA_BYTES,
};
