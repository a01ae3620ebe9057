//! `corral image build`: the arguments mapped to [`corral_image::build::BuildOptions`], the
//! build's progress printed. The build itself is `corral_image::build`.

use std::path::PathBuf;

use corral_image::build::{BuildOptions, Dockerfile};
use corral_image::{ImageStore, Reference};

use crate::commands::{msg, R};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// NAME[:TAG] of the image
    #[arg(short = 't', long = "tag")]
    pub tag: String,
    /// The Dockerfile (default CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// A build argument (KEY=VALUE)
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Run every step again (the results still go to the cache)
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// The network of RUN steps: `none` (the default: a network namespace of their own,
    /// loopback only) or `host` (the host's network, as `docker build --network host`)
    #[arg(long = "network", default_value = "none", value_parser = ["none", "host"])]
    pub network: String,
    /// The build context directory
    pub context: PathBuf,
}

pub fn build(cli: &Cli, store: &ImageStore, a: &BuildArgs) -> R {
    let tag = Reference::parse(&a.tag)?;
    let mut build_args = Vec::new();
    for kv in &a.build_arg {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| msg(format!("--build-arg {kv:?}: want KEY=VALUE")))?;
        build_args.push((k.to_string(), v.to_string()));
    }
    let opts = BuildOptions {
        context: a.context.clone(),
        dockerfile: a.file.clone().map_or(Dockerfile::Context, Dockerfile::Path),
        tags: vec![tag],
        build_args,
        target: None,
        no_cache: a.no_cache,
        host_network: a.network == "host",
        state_root: cli
            .root
            .clone()
            .unwrap_or_else(runtime::state::default_root),
    };
    corral_image::build::build(store, &opts, &mut |ev| println!("{ev}"))?;
    Ok(0)
}
