//! `corral build` and `corral image build`: the arguments mapped to
//! [`corral_image::build::BuildOptions`], the build's progress printed (docker's classic
//! output; with `-q` only the image ID). The build itself is `corral_image::build`.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};

use corral_image::build::{BuildOptions, Dockerfile};
use corral_image::{ImageStore, Reference};

use crate::args::{BuildArgs, Cli};
use crate::error::{msg, R};

pub fn build(cli: &Cli, store: &ImageStore, a: &BuildArgs) -> R {
    let tags = a
        .tag
        .iter()
        .map(|t| Reference::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
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
        tags,
        build_args,
        target: a.target.clone(),
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
    // Held until the image is kept (untagged): no prune runs in between.
    let _l = store.lock_shared()?;
    let before = store.tags()?;
    if !a.quiet {
        let img = corral_image::build::build(store, &opts, &mut |ev| println!("{ev}"))?;
        keep(store, a, &img, &before)?;
        return Ok(0);
    }
    // -q: the steps and what RUN steps print (they write to this process's stdout) go
    // nowhere; the image ID goes to the real stdout.
    let out = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| msg(format!("dup stdout: {e}")))?;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| msg(format!("/dev/null: {e}")))?;
    // SAFETY: dup2 onto fd 1, which stays open (it is restored below).
    unsafe { libc::dup2(null.as_raw_fd(), 1) };
    let res = corral_image::build::build(store, &opts, &mut |_| {});
    // SAFETY: as above.
    unsafe { libc::dup2(out.as_raw_fd(), 1) };
    let img = res?;
    keep(store, a, &img, &before)?;
    let mut o = std::io::stdout();
    let _ = writeln!(o, "{}", img.id);
    Ok(0)
}

/// An image built without `-t` is kept untagged (docker's `<none>:<none>`), so that its
/// printed ID names it (the library leaves an untagged build to the next prune); so is an
/// image a `-t` took its last name from (`before`: the tags before the build), as docker
/// lists it. The caller holds the store's shared lock.
fn keep(
    store: &ImageStore,
    a: &BuildArgs,
    img: &corral_image::Image,
    before: &[(Reference, unionfs::Digest)],
) -> R<()> {
    if a.tag.is_empty() {
        store.keep_untagged(img)?;
    }
    crate::docker_image::orphans(store, before, &img.manifest_digest)
}
