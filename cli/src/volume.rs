//! `corral volume create|ls|inspect|rm|prune` (docker's flags and output), over
//! `corral_image::volume`.

use std::collections::BTreeMap;
use std::io::BufRead;

use clap::Subcommand;
use corral_image::volume;
use serde_json::json;

use crate::args::Cli;
use crate::error::{msg, R};
use crate::image::store_dir;

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume
    Create {
        /// Set metadata for a volume (KEY=VALUE)
        #[arg(long = "label")]
        label: Vec<String>,
        /// Specify volume driver name (only `local`)
        #[arg(short = 'd', long = "driver", default_value = "local")]
        driver: String,
        /// The volume's name (default: a random one)
        name: Option<String>,
    },
    /// List volumes
    #[command(visible_alias = "list")]
    Ls {
        /// Only display volume names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more volumes
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (with --all: every unused volume)
    Prune {
        /// Remove all unused volumes, not just anonymous ones
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

pub fn volume(cli: &Cli, cmd: &VolumeCmd) -> R {
    let store = store_dir(cli);
    match cmd {
        VolumeCmd::Create {
            label,
            driver,
            name,
        } => {
            if driver != "local" {
                return Err(msg(format!(
                    "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
                )));
            }
            let mut labels = BTreeMap::new();
            for l in label {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                labels.insert(k.to_string(), v.to_string());
            }
            let v = volume::create(&store, name.as_deref(), &labels, false)?;
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCmd::Ls { quiet } => {
            let vols = volume::list(&store)?;
            if *quiet {
                for v in vols {
                    println!("{}", v.name);
                }
            } else {
                println!("{:<15} VOLUME NAME", "DRIVER");
                for v in vols {
                    println!("{:<15} {}", v.driver, v.name);
                }
            }
            Ok(0)
        }
        VolumeCmd::Inspect { names } => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in names {
                match volume::get(&store, n)? {
                    Some(v) => out.push(json!({
                        "CreatedAt": v.created,
                        "Driver": v.driver,
                        "Labels": v.labels,
                        "Mountpoint": volume::data_dir(&store, &v.name),
                        "Name": v.name,
                        "Options": null,
                        "Scope": "local",
                        "Anonymous": v.anonymous,
                        "UsedBy": volume::users(&store, &v.name),
                    })),
                    None => {
                        eprintln!("Error: No such volume: {n}");
                        failed = true;
                    }
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| msg(e.to_string()))?
            );
            Ok(if failed { 1 } else { 0 })
        }
        VolumeCmd::Rm { force, names } => {
            let mut failed = false;
            for n in names {
                match volume::remove(&store, n, *force) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        VolumeCmd::Prune { all, force } => {
            if !force {
                eprint!(
                    "WARNING! This will remove {} volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ",
                    if *all { "all local" } else { "anonymous local" }
                );
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
                if !matches!(line.trim(), "y" | "Y" | "yes") {
                    return Ok(0);
                }
            }
            let (names, bytes) = volume::prune(&store, *all)?;
            if !names.is_empty() {
                println!("Deleted Volumes:");
                for n in &names {
                    println!("{n}");
                }
                println!();
            }
            println!("Total reclaimed space: {}", crate::image::human(bytes));
            Ok(0)
        }
    }
}
