//! docker's `ps`: the engine's containers (and the runtime's others, made by the runc verbs
//! or `--image`), docker's columns, filters and `--format`.

use std::path::Path;

use corral_engine::time::{human_duration, since};
use corral_engine::{Status, Summary, Time};
use serde_json::{json, Value};

use super::template::{align, Template};
use crate::args::Cli;
use crate::error::{msg, R};
use crate::output::printable;

pub struct PsOpts {
    pub all: bool,
    pub quiet: bool,
    pub no_trunc: bool,
    pub last: Option<usize>,
    pub filters: Vec<String>,
    pub format: Option<String>,
}

const DEFAULT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// docker's header of a `ps` field.
fn header(f: &str) -> String {
    match f {
        "ID" => "CONTAINER ID".into(),
        "RunningFor" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        "Names" => "NAMES".into(),
        other => other.to_uppercase(),
    }
}

/// Every container: the engine's, then the runtime's that are not the engine's.
pub fn summaries(cli: &Cli, root: &Path) -> R<Vec<Summary>> {
    let mut out = super::engine(cli, root).list(true).unwrap_or_default();
    let images = corral_image::ImageStore::open(&crate::image::store_dir(cli)).ok();
    for s in runtime::Container::list(root).unwrap_or_default() {
        if out.iter().any(|e| e.id == s.id) {
            continue;
        }
        let image = images
            .as_ref()
            .and_then(|st| st.container(&s.id).ok().flatten())
            .map(|r| r.image)
            .unwrap_or_else(|| "-".into());
        let command = runtime::Container::load(root, &s.id)
            .ok()
            .and_then(|c| {
                c.config()
                    .ok()
                    .and_then(|sp| sp.process().as_ref().and_then(|p| p.args().clone()))
            })
            .map(|a| a.join(" "))
            .unwrap_or_default();
        let created = Time {
            secs: s.created,
            nanos: 0,
        };
        let (status, text) = match s.status {
            runtime::Status::Running | runtime::Status::Paused => (
                Status::Running,
                format!("Up {}", human_duration(since(created))),
            ),
            runtime::Status::Created | runtime::Status::Creating => {
                (Status::Created, "Created".to_string())
            }
            runtime::Status::Stopped => (Status::Exited, "Exited (unknown)".to_string()),
        };
        let paused = s.status == runtime::Status::Paused;
        out.push(Summary {
            id: s.id.clone(),
            name: s.id.clone(),
            image,
            command,
            created,
            status,
            paused,
            unsupervised: false,
            status_text: if paused {
                format!("{text} (Paused)")
            } else {
                text
            },
            exit_code: None,
            ports: String::new(),
            labels: Default::default(),
        });
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.created));
    Ok(out)
}

/// docker's state word: `paused` for a frozen running one.
fn state(s: &Summary) -> &'static str {
    if s.paused && s.status == Status::Running {
        "paused"
    } else {
        s.status.as_str()
    }
}

fn matches(s: &Summary, filters: &[(String, String)]) -> R<bool> {
    // Filters of one key are alternatives; different keys must all hold (docker's).
    let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.dedup();
    for k in keys {
        let vals = filters.iter().filter(|(fk, _)| fk == k).map(|(_, v)| v);
        let mut any = false;
        for v in vals {
            any |= match k {
                "status" => state(s) == v,
                "name" => s.name.contains(v.as_str()),
                "id" => s.id.starts_with(v.as_str()),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => s.labels.get(lk).is_some_and(|x| x == lv),
                    None => s.labels.contains_key(v.as_str()),
                },
                "ancestor" => {
                    s.image == *v
                        || s.image == format!("{v}:latest")
                        || v.strip_suffix(":latest").is_some_and(|b| s.image == b)
                }
                "exited" => s.status == Status::Exited && s.exit_code.map(|c| c.to_string()).as_deref() == Some(v),
                other => {
                    return Err(msg(format!(
                        "invalid filter '{other}': corral knows status, name, id, label, ancestor, exited"
                    )))
                }
            };
        }
        if !any {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A container as docker's `ps --format` sees it.
fn row(s: &Summary, no_trunc: bool) -> Value {
    let id = if no_trunc {
        s.id.clone()
    } else {
        s.id.chars().take(12).collect()
    };
    let mut cmd = s.command.clone();
    if !no_trunc && cmd.chars().count() > 20 {
        cmd = cmd.chars().take(19).collect::<String>() + "…";
    }
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "ID": id,
        "Image": printable(&s.image),
        "Command": format!("\"{}\"", printable(&cmd)),
        "CreatedAt": crate::docker::inspect::docker_date(s.created),
        "RunningFor": format!("{} ago", human_duration(since(s.created))),
        "Status": s.status_text,
        "State": state(s),
        "Ports": s.ports,
        "Names": printable(&s.name),
        "Labels": labels.join(","),
        "ExitCode": s.exit_code,
        "Mounts": "",
        "Networks": "",
        "Size": "",
        "LocalVolumes": "0",
    })
}

pub fn ps(cli: &Cli, root: &Path, o: &PsOpts) -> R {
    let filters: Vec<(String, String)> = o
        .filters
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| msg(format!("bad format of filter (expected name=value): {f}")))
        })
        .collect::<R<_>>()?;
    let all =
        o.all || o.last.is_some() || filters.iter().any(|(k, _)| k == "status" || k == "exited");
    let mut list: Vec<Summary> = summaries(cli, root)?
        .into_iter()
        .filter(|s| all || s.status == Status::Running || s.status == Status::Restarting)
        .collect();
    let mut kept = Vec::new();
    for s in list.drain(..) {
        if matches(&s, &filters)? {
            kept.push(s);
        }
    }
    if let Some(n) = o.last {
        kept.truncate(n);
    }
    if o.quiet {
        for s in &kept {
            println!("{}", row(s, o.no_trunc)["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let format = o.format.as_deref().unwrap_or(DEFAULT);
    if format == "json" {
        for s in &kept {
            println!("{}", row(s, o.no_trunc));
        }
        return Ok(0);
    }
    let t = Template::parse(format)?;
    let mut lines = Vec::new();
    if t.table {
        lines.push(t.header(header));
    }
    for s in &kept {
        lines.push(t.render(&row(s, o.no_trunc)));
    }
    if t.table {
        print!("{}", align(&lines));
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    Ok(0)
}
