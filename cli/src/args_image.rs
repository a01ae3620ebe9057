//! The flags of docker's image and system verbs (`build`, `images`, `rmi`, `tag`, `history`,
//! `save`, `load`, `commit`, `image prune`, `info`, `version`, `system df|prune`), as docker
//! spells them. `docker_image.rs` and `info.rs` map them to the store.

use std::path::PathBuf;

/// `corral build` (and `corral image build`): docker's flags.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// NAME[:TAG] of the image (repeatable; none: the image is kept untagged and its ID
    /// printed)
    #[arg(short = 't', long = "tag")]
    pub tag: Vec<String>,
    /// The Dockerfile (default CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// A build argument (KEY=VALUE)
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Build up to the end of this stage (FROM IMAGE AS STAGE)
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step again (the results still go to the cache)
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// The network of RUN steps: `default` or `bridge` (the default network), a network's
    /// NAME, `none` (a network namespace of their own, loopback only) or `host` (the host's
    /// network, as `docker build --network host`)
    #[arg(long = "network", default_value = "default")]
    pub network: String,
    /// Print only the image ID (the steps and RUN output are not shown)
    #[arg(short, long)]
    pub quiet: bool,
    /// The build context directory (`.`)
    pub context: PathBuf,
}

/// `corral images [REPO[:TAG]]`.
#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    /// Show every image (corral keeps no intermediate images: the same as without)
    #[arg(short, long)]
    pub all: bool,
    /// Only print image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the image IDs
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Print each image as JSON (`json`, `{{json .}}`) or with a template of fields
    /// (`{{.Repository}}:{{.Tag}}`: Repository, Tag, ID, CreatedAt, CreatedSince, Size)
    #[arg(long)]
    pub format: Option<String>,
    /// Filter: `dangling=true|false` (untagged or not), `reference=REPO[:TAG]` (`*` matches
    /// any run of characters but `/`); repeatable, all must hold
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Only the images of this repository (and tag)
    pub reference: Option<String>,
}

/// `corral rmi [-f] IMAGE...`.
#[derive(clap::Args, Debug)]
pub struct RmiArgs {
    /// Remove the image even when it has several names, or (untagging it) when a stopped
    /// container uses it
    #[arg(short, long)]
    pub force: bool,
    /// NAME[:TAG] or image ID
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `corral tag SOURCE TARGET`.
#[derive(clap::Args, Debug)]
pub struct TagArgs {
    /// NAME[:TAG] or image ID
    pub source: String,
    /// The new NAME[:TAG]
    pub target: String,
}

/// `corral history IMAGE`.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only print the layer IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Sizes and dates in human-readable form (the default; `--human=false` for raw)
    #[arg(short = 'H', long, default_value = "true", action = clap::ArgAction::Set)]
    pub human: bool,
    /// NAME[:TAG] or image ID
    pub image: String,
}

/// `corral save [-o FILE] IMAGE...`.
#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// Write to this file instead of stdout
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// NAME[:TAG] or image ID
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `corral load [-i FILE] [-q]`.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Read from this file instead of stdin
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print nothing but the loaded images
    #[arg(short, long)]
    pub quiet: bool,
}

/// `corral commit [-m MSG] [-a AUTHOR] [-c CHANGE] CONTAINER [REPO[:TAG]]`.
#[derive(clap::Args, Debug)]
pub struct CommitArgs {
    /// A comment kept in the image's history
    #[arg(short, long)]
    pub message: Option<String>,
    /// The image's author
    #[arg(short, long)]
    pub author: Option<String>,
    /// A Dockerfile instruction applied to the image's config (CMD, ENTRYPOINT, ENV,
    /// LABEL, EXPOSE, USER, WORKDIR; repeatable)
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Freeze the container while its layer is read (always done: accepted for docker)
    #[arg(short, long, default_value = "true", action = clap::ArgAction::Set)]
    pub pause: bool,
    /// The container id
    pub id: String,
    /// NAME[:TAG] of the new image (none: kept untagged)
    pub reference: Option<String>,
}

/// `corral image prune [-a] [-f]`.
#[derive(clap::Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove every image no container uses, not only the untagged ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask (corral asks only when stdin is a terminal)
    #[arg(short, long)]
    pub force: bool,
}

/// `corral info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// `json` or `{{json .}}` for one JSON object with docker's keys; `{{.Key}}` for one
    /// of them
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `corral version`.
#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// `json` or `{{json .}}` for one JSON object; `{{.Client.Version}}` for one field
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `corral system ...`.
#[derive(clap::Subcommand, Debug)]
pub enum SystemCmd {
    /// Show the disk the images, containers, volumes and build cache use
    Df {
        /// Also list each image and container
        #[arg(short, long)]
        verbose: bool,
        /// `json` or `{{json .}}`: one JSON object per line and type
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove stopped containers, unused networks, untagged images and the build cache
    Prune {
        /// Remove every image no container uses, not only the untagged ones
        #[arg(short, long)]
        all: bool,
        /// Do not ask (corral asks only when stdin is a terminal)
        #[arg(short, long)]
        force: bool,
        /// Also remove the volumes no container uses
        #[arg(long)]
        volumes: bool,
    },
    /// Show the same as `corral info`
    Info(InfoArgs),
}
