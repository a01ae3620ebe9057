//! Image commands: `corral image ...` and `corral run --image` (docker's top-level image
//! verbs are `docker_image.rs`'s).
//! The store itself is `corral_image`; this file maps arguments and prints.

use std::path::{Path, PathBuf};

use corral_image::{ImageStore, Reference};
use runtime::describe::{Description, Root, UserSpec};

use crate::args::{Cli, CreateArgs, ImageCmd, RunImageArgs};
use crate::error::{msg, R};
use crate::output::printable;

/// The store: `--store`, `$CORRAL_STORE`, or /var/lib/corral.
pub fn store_dir(cli: &Cli) -> PathBuf {
    cli.store
        .clone()
        .unwrap_or_else(corral_image::default_store)
}

pub fn open_store(cli: &Cli) -> R<ImageStore> {
    Ok(ImageStore::open(&store_dir(cli))?)
}

fn reference(s: &str) -> R<Reference> {
    Ok(Reference::parse(s)?)
}

pub fn image(cli: &Cli, cmd: &ImageCmd) -> R {
    let store = open_store(cli)?;
    match cmd {
        ImageCmd::Import { src, reference: r } => {
            let r = r.as_deref().map(reference).transpose()?;
            let _l = store.lock_shared()?;
            for (img, refs) in store.import(src, r.as_ref())? {
                let names: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
                println!("Loaded image: {} ({})", names.join(", "), img.id);
            }
        }
        ImageCmd::Export { image, dest } => {
            let _l = store.lock_shared()?;
            let img = store.resolve(image)?;
            let r = store.export_name(image, &img)?;
            store.export(&img, &r, dest)?;
        }
        ImageCmd::Ls { quiet } => ls(&store, *quiet)?,
        ImageCmd::Inspect { image } => {
            let img = store.resolve(image)?;
            let tags: Vec<String> = store
                .tags_of(&img.manifest_digest)?
                .iter()
                .map(|r| r.to_string())
                .collect();
            let dirs = store.layer_dirs(&img.diff_ids()?)?;
            let v = serde_json::json!({
                "Id": img.id.to_string(),
                "RepoTags": tags,
                "ManifestDigest": img.manifest_digest.to_string(),
                "Manifest": img.manifest,
                "Config": img.config,
                "LayerDirs": dirs,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| msg(e.to_string()))?
            );
        }
        ImageCmd::Rm { images } => {
            if images.is_empty() {
                return Err(msg("image rm needs at least one image"));
            }
            let _l = store.lock_exclusive()?;
            for i in images {
                for line in store.remove_image(i)? {
                    println!("{line}");
                }
            }
        }
        ImageCmd::Prune(a) => return crate::docker_image::image_prune(cli, a),
        ImageCmd::Save(a) => return crate::docker_image::save(cli, a),
        ImageCmd::Load(a) => return crate::docker_image::load(cli, a),
        ImageCmd::Tag { source, target } => {
            let t = reference(target)?;
            let _l = store.lock_shared()?;
            let img = store.resolve(source)?;
            store.tag(&img, &t)?;
        }
        ImageCmd::History { image } => history(&store, image)?,
        ImageCmd::Build(a) => return crate::build::build(cli, &store, a),
    }
    Ok(0)
}

/// Bytes as docker prints them (kB, MB, GB, base 1000).
pub fn human(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2}GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1}MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1}kB", f / 1e3)
    } else {
        format!("{n}B")
    }
}

fn created_ago(created: Option<&String>) -> String {
    created.map_or_else(|| "-".into(), |c| printable(c).into_owned())
}

fn ls(store: &ImageStore, quiet: bool) -> R<()> {
    let mut rows = Vec::new();
    for (r, m) in store.tags()? {
        let img = store.image_by_manifest(&m)?;
        let size: u64 = img.diff_ids()?.iter().map(|d| store.layer_size(d)).sum();
        rows.push((r, img, size));
    }
    if quiet {
        let mut seen = std::collections::BTreeSet::new();
        for (_, img, _) in &rows {
            if seen.insert(img.id.clone()) {
                println!("{}", img.short_id());
            }
        }
        return Ok(());
    }
    println!(
        "{:<30} {:<12} {:<14} {:<22} SIZE",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
    );
    for (r, img, size) in rows {
        println!(
            "{:<30} {:<12} {:<14} {:<22} {}",
            printable(&r.name),
            printable(&r.tag),
            img.short_id(),
            created_ago(img.config.created().as_ref()),
            human(size)
        );
    }
    Ok(())
}

fn history(store: &ImageStore, name: &str) -> R<()> {
    let img = store.resolve(name)?;
    let rows = store.history(&img)?;
    println!(
        "{:<14} {:<22} {:<60} SIZE",
        "LAYER", "CREATED", "CREATED BY"
    );
    for h in rows.iter().rev() {
        // The image's text, escaped: it must not drive the terminal.
        let mut by = printable(&h.created_by).into_owned();
        if by.chars().count() > 60 {
            by = by.chars().take(57).collect::<String>() + "...";
        }
        println!(
            "{:<14} {:<22} {:<60} {}",
            h.layer,
            printable(&h.created),
            by,
            human(h.size)
        );
    }
    Ok(())
}

fn random_id() -> String {
    let mut b = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("corral-{hex}")
}

/// The container id of `run`/`create --image`: `--name` or ID (once), else a random one.
fn container_id(id: Option<&str>, a: &RunImageArgs) -> R<String> {
    Ok(match (&a.name, id) {
        (Some(n), None) => n.clone(),
        (None, Some(i)) => i.to_string(),
        (Some(n), Some(i)) if n == i => n.clone(),
        (Some(_), Some(_)) => return Err(msg("give the container id once (--name or ID)")),
        (None, None) => random_id(),
    })
}

/// `corral run --image`: the spec from the image's config, the root an overlay of its
/// layers and a new writable layer, the networks attached; then the ordinary `run`
/// (foreground or `-d`).
pub fn run(
    cli: &Cli,
    root: &Path,
    id: Option<&str>,
    c: &CreateArgs,
    a: &RunImageArgs,
    detach: bool,
) -> R {
    let name = a.image.as_deref().unwrap_or_default();
    let id = container_id(id, a)?;
    if a.rm && detach {
        return Err(msg(
            "--rm and -d do not go together: delete a detached container with `corral delete`",
        ));
    }
    if detach && a.tty && c.console_socket.is_none() {
        return Err(msg(
            "process.terminal is true: a detached container needs --console-socket",
        ));
    }
    let d = describe(name, a, root)?;
    let store_dir = store_dir(cli);
    let opts = c.options(root);
    let res = crate::lifecycle::run_with(
        c,
        detach,
        !a.rm,
        || Ok(corral_image::create(&store_dir, root, &id, &d, &opts)?),
        |ct, force| Ok(corral_image::delete(&store_dir, ct, force)?),
    );
    match &res {
        Ok(_) if detach => println!("{id}"),
        Ok(_) if !a.rm => {}
        // Removed with the container (--rm), or never made: the record goes too, unless
        // another command made a container of that id meanwhile.
        _ => {
            corral_image::forget_container(&store_dir, root, &id);
            // Its anonymous volumes go with it (docker's `run --rm`), once no record
            // names them.
            corral_image::volume::remove_anonymous_of(&store_dir, &id);
        }
    }
    res
}

/// `corral create --image` (docker's `create`): the container made as `run --image` makes
/// it, its process waiting for `start`; its id printed.
pub fn create(cli: &Cli, root: &Path, id: Option<&str>, c: &CreateArgs, a: &RunImageArgs) -> R {
    let name = a.image.as_deref().unwrap_or_default();
    let id = container_id(id, a)?;
    if a.rm {
        return Err(msg(
            "--rm: not for create (delete the container with `corral delete`)",
        ));
    }
    if a.tty && c.console_socket.is_none() {
        return Err(msg(
            "process.terminal is true: a created container needs --console-socket",
        ));
    }
    let d = describe(name, a, root)?;
    let store_dir = store_dir(cli);
    let res = crate::lifecycle::create_with(c, || {
        Ok(corral_image::create(
            &store_dir,
            root,
            &id,
            &d,
            &c.options(root),
        )?)
    });
    match res {
        Ok(()) => {
            println!("{id}");
            Ok(0)
        }
        Err(e) => {
            corral_image::forget_container(&store_dir, root, &id);
            corral_image::volume::remove_anonymous_of(&store_dir, &id);
            Err(e)
        }
    }
}

/// The description of a container of image `name` from `run --image`'s flags.
pub fn describe(name: &str, a: &RunImageArgs, root: &Path) -> R<Description> {
    let mut d = Description::new(Root::Image(name.into()));
    d.args = a.command.clone();
    for kv in &a.env {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(msg(format!("--env {kv:?}: want KEY=VALUE")));
        };
        d.env.push((k.into(), v.into()));
    }
    d.cwd = a.workdir.clone();
    d.user = a.user.clone().map(UserSpec::Name);
    d.hostname = a.hostname.clone();
    d.terminal = a.tty;
    crate::limits::apply(&a.res, &mut d)?;
    d.network = crate::network::describe(a, root)?;
    d.security.privileged = a.privileged;
    for c in &a.cap_add {
        d.security.cap_add(c)?;
    }
    for c in &a.cap_drop {
        d.security.cap_drop(c)?;
    }
    for o in &a.security_opt {
        d.security.option(o)?;
    }
    for dev in &a.device {
        d.security.device(dev)?;
    }
    Ok(d)
}
