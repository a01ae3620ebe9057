//! docker's `run [OPTIONS] IMAGE [COMMAND] [ARG...]` and `create`: an engine container
//! (kept until `rm`) made from the flags, then started detached (`-d`: a monitor supervises
//! it) or in the foreground (this process supervises it and exits with its status).

use std::collections::BTreeMap;
use std::path::Path;

use corral_engine::{CreateOptions, LogConfig, RestartPolicy};

use super::args::DockerRun;
use crate::args::Cli;
use crate::error::{msg, CliError, R};

/// `run` (`run == true`) or `create` of docker's form.
pub fn make(cli: &Cli, root: &Path, d: &DockerRun, run: bool) -> R {
    let image = image_of(cli, d)?;
    let mut img = d.img.clone();
    img.image = Some(image.clone());
    img.command = d.command.clone();
    let mut desc = crate::image::describe(&image, &img, root)?;
    if let Some(e) = &d.d.entrypoint {
        desc.entrypoint = Some(if e.is_empty() {
            vec![]
        } else {
            vec![e.clone()]
        });
    }
    let mut log = LogConfig::default();
    for o in &d.d.log_opt {
        log.set(o)?;
    }
    let mut labels = BTreeMap::new();
    for l in &d.d.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let opts = CreateOptions {
        name: d.img.name.clone(),
        restart: RestartPolicy::parse(&d.d.restart)?,
        auto_remove: d.img.rm,
        stop_signal: d
            .d
            .stop_signal
            .as_deref()
            .map(crate::signals::parse_signal)
            .transpose()?,
        stop_timeout: d
            .d
            .stop_timeout
            .map(|t| {
                u32::try_from(t).map_err(|_| msg(format!("--stop-timeout {t}: want seconds >= 0")))
            })
            .transpose()?,
        log,
        tty: d.img.tty,
        interactive: d.img.interactive,
        labels,
        volumes: Vec::new(),
    };
    if d.img.rm && opts.restart != RestartPolicy::No {
        return Err(msg(
            "Conflicting options: --restart and --rm (a container that removes itself is not restarted)",
        ));
    }
    let e = super::engine(cli, root);
    let id = e.create(&desc, &opts)?;
    if !run {
        println!("{id}");
        return Ok(0);
    }
    if d.detach {
        if let Err(err) = e.start(&id) {
            // docker keeps a container whose start failed (`Created`), unless --rm.
            if d.img.rm {
                let _ = e.remove(&id, true, true);
            }
            return Err(err.into());
        }
        println!("{id}");
        return Ok(0);
    }
    match e.run_attached(&id, d.img.interactive) {
        Ok(code) => Ok(code),
        Err(err) => {
            if d.img.rm {
                let _ = e.remove(&id, true, true);
            }
            Err(err.into())
        }
    }
}

/// The image to make the container of: `d.image` as the store has it, pulled from its
/// registry first when `--pull` says so (`missing`: only when the store lacks it). A name
/// the store cannot resolve after the pull is used through the pulled manifest's digest.
fn image_of(cli: &Cli, d: &DockerRun) -> R<String> {
    let store = crate::image::store_dir(cli);
    let found = corral_image::ImageStore::open(&store)?
        .resolve(&d.image)
        .is_ok();
    let policy = d.d.pull.as_str();
    let pull = policy == "always" || (!found && policy == "missing");
    if found && !pull {
        return Ok(d.image.clone());
    }
    let mut m = format!("Unable to find image '{}' locally", d.image);
    if pull {
        if !found {
            eprintln!("{m}");
        }
        match crate::pull::ensure_for_container(cli, &d.image, policy) {
            Ok(digest) => {
                let again = corral_image::ImageStore::open(&store)?.resolve(&d.image);
                return Ok(if again.is_ok() {
                    d.image.clone()
                } else {
                    digest
                });
            }
            Err(e) => m = format!("{m}; pulling it: {e}"),
        }
    }
    if Path::new("config.json").exists() {
        m.push_str(" (for the OCI bundle in this directory: corral run --bundle . ID)");
    }
    Err(CliError::Docker(Box::new(msg(m))))
}
