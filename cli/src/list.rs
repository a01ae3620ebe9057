//! `corral list` and `corral ps`.

use std::path::Path;

use runtime::{Container, State};
use serde_json::json;

use crate::error::{msg, R};
use crate::output::print_json;

pub fn list(root: &Path, format: &str, quiet: bool) -> R {
    let states = Container::list(root)?;
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match format {
        "json" => print_json(&json!(states
            .iter()
            .map(State::to_json)
            .collect::<Vec<_>>()))?,
        "table" => {
            let mut out = String::new();
            out.push_str(&format!(
                "{:<24} {:<8} {:<10} {:<40} {:<21} {}\n",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"
            ));
            for s in &states {
                out.push_str(&format!(
                    "{:<24} {:<8} {:<10} {:<40} {:<21} {}\n",
                    s.id,
                    s.pid,
                    s.status.as_str(),
                    s.bundle.display(),
                    runtime::state::rfc3339(s.created),
                    "root"
                ));
            }
            print!("{out}");
        }
        other => return Err(msg(format!("--format {other:?}: want table or json"))),
    }
    Ok(0)
}

pub fn ps(root: &Path, id: &str, format: &str, ps_args: &[String]) -> R {
    let c = Container::load(root, id)?;
    let pids = c.pids()?;
    match format {
        "json" => {
            print_json(&json!(pids))?;
            return Ok(0);
        }
        "table" => {}
        other => return Err(msg(format!("--format {other:?}: want table or json"))),
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| msg(format!("running ps: {e}")))?;
    if !out.status.success() {
        return Err(msg(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| msg("ps output has no PID column"))?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(0)
}
