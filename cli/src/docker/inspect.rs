//! docker's `inspect`: containers (the engine's shape; a runtime container's in the same
//! shape from its state) and images (docker's shape from the store), as a JSON array or
//! through `--format`.

use std::path::Path;

use corral_engine::Time;
use serde_json::{json, Value};

use super::template::Template;
use super::Target;
use crate::args::Cli;
use crate::error::{msg, CliError, R};

/// docker's `CreatedAt` in `ps`: `2026-12-07 22:00:00 +0000 UTC`.
pub fn docker_date(t: Time) -> String {
    let r = t.rfc3339();
    let base = r.split('.').next().unwrap_or(&r).trim_end_matches('Z');
    format!("{} +0000 UTC", base.replacen('T', " ", 1))
}

pub fn inspect(
    cli: &Cli,
    root: &Path,
    names: &[String],
    kind: Option<&str>,
    format: Option<&str>,
) -> R {
    let template = format.map(Template::parse).transpose()?;
    if let Some(k) = kind {
        if k != "container" && k != "image" {
            return Err(msg(format!("--type {k:?}: want container or image")));
        }
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        let c = if kind != Some("image") {
            container(cli, root, n).ok()
        } else {
            None
        };
        let v = match c {
            Some(v) => Some(v),
            None if kind != Some("container") => image(cli, n).ok(),
            None => None,
        };
        match v {
            Some(v) => found.push(v),
            None => missing.push(n.clone()),
        }
    }
    match &template {
        Some(t) => {
            for v in &found {
                println!("{}", t.render(v));
            }
        }
        None => crate::output::print_json(&Value::Array(found))?,
    }
    if let Some(first) = missing.first() {
        let what = match kind {
            Some("image") => "image",
            Some("container") => "container",
            _ => "object",
        };
        return Err(CliError::Docker(Box::new(msg(format!(
            "No such {what}: {first}"
        )))));
    }
    Ok(0)
}

fn container(cli: &Cli, root: &Path, s: &str) -> R<Value> {
    match super::resolve(cli, root, s)? {
        Target::Engine(id) => Ok(super::engine(cli, root).inspect(&id)?),
        Target::Runtime(id) => runtime_container(cli, root, &id),
    }
}

/// A runtime container (not the engine's) in docker's shape, from its state and config.
fn runtime_container(cli: &Cli, root: &Path, id: &str) -> R<Value> {
    let c = runtime::Container::load(root, id)?;
    let st = c.oci_state();
    let args: Vec<String> = c
        .config()
        .ok()
        .and_then(|sp| sp.process().as_ref().and_then(|p| p.args().clone()))
        .unwrap_or_default();
    let status = match c.status() {
        runtime::Status::Running => "running",
        runtime::Status::Paused => "paused",
        runtime::Status::Stopped => "exited",
        _ => "created",
    };
    let image = corral_image::ImageStore::open(&crate::image::store_dir(cli))
        .ok()
        .and_then(|st| st.container(id).ok().flatten());
    let running = matches!(
        c.status(),
        runtime::Status::Running | runtime::Status::Paused
    );
    Ok(json!({
        "Id": id,
        "Created": Time { secs: c.state().created, nanos: 0 }.rfc3339(),
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": status,
            "Running": running,
            "Paused": status == "paused",
            "Restarting": false,
            "OOMKilled": false,
            "Dead": false,
            "Pid": if running { st.pid } else { 0 },
            "ExitCode": if status == "exited" { json!(-1) } else { json!(0) },
            "Error": "",
        },
        "Image": image.as_ref().map(|r| r.manifest.clone()).unwrap_or_default(),
        "Name": format!("/{id}"),
        "Driver": "overlay",
        "Config": {
            "Image": image.as_ref().map(|r| r.image.clone()).unwrap_or_default(),
            "Cmd": args,
        },
        "Bundle": st.bundle,
        "Annotations": st.annotations,
    }))
}

/// An image in docker's shape.
fn image(cli: &Cli, s: &str) -> R<Value> {
    let store = crate::image::open_store(cli)?;
    let img = store.resolve(s)?;
    let tags: Vec<String> = store
        .tags_of(&img.manifest_digest)?
        .iter()
        .map(|r| r.to_string())
        .collect();
    let diff_ids = img.diff_ids()?;
    let size: u64 = diff_ids.iter().map(|d| store.layer_size(d)).sum();
    let cfg = serde_json::to_value(&img.config).map_err(|e| msg(e.to_string()))?;
    Ok(json!({
        "Id": img.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": [],
        "Parent": "",
        "Comment": "",
        "Created": cfg.get("created").cloned().unwrap_or(Value::Null),
        "Author": cfg.get("author").cloned().unwrap_or(json!("")),
        "Config": cfg.get("config").cloned().unwrap_or(json!({})),
        "Architecture": cfg.get("architecture").cloned().unwrap_or(json!("")),
        "Os": cfg.get("os").cloned().unwrap_or(json!("")),
        "Size": size,
        "GraphDriver": {
            "Name": "overlay",
            "Data": { "LowerDir": store.layer_dirs(&diff_ids)? },
        },
        "RootFS": {
            "Type": "layers",
            "Layers": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
        "ManifestDigest": img.manifest_digest.to_string(),
    }))
}
