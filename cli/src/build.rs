//! `corral image build`: the arguments mapped to [`corral_image::build::BuildOptions`], the
//! build's progress printed. The build itself is `corral_image::build`.

use corral_image::build::{BuildOptions, Dockerfile};
use corral_image::{ImageStore, Reference};

use crate::args::{BuildArgs, Cli};
use crate::error::{msg, R};

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
        networks: match a.network.as_str() {
            "host" | "none" => Vec::new(),
            "default" => vec![runtime::net::DEFAULT_NETWORK.to_string()],
            n => vec![n.to_string()],
        },
        state_root: cli
            .root
            .clone()
            .unwrap_or_else(runtime::state::default_root),
    };
    crate::pull::install_base_fetcher(corral_registry::PullPolicy::Missing);
    corral_image::build::build(store, &opts, &mut |ev| println!("{ev}"))?;
    Ok(0)
}
