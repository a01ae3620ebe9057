//! docker's `stats`: CPU %, memory usage and limit, network and block I/O, pids of running
//! containers, from their cgroups (the runtime's stats, the blkio/io files of their leaves)
//! and their network namespace (`/proc/PID/net/dev`).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::template::{align, Template};
use crate::args::Cli;
use crate::error::{msg, R};

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn header(f: &str) -> String {
    match f {
        "ID" | "Container" => "CONTAINER ID".into(),
        "CPUPerc" => "CPU %".into(),
        "MemUsage" => "MEM USAGE / LIMIT".into(),
        "MemPerc" => "MEM %".into(),
        "NetIO" => "NET I/O".into(),
        "BlockIO" => "BLOCK I/O".into(),
        "PIDs" => "PIDS".into(),
        other => other.to_uppercase(),
    }
}

/// docker's `units.BytesSize` (binary: KiB, MiB, GiB).
fn bytes_binary(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut f = n as f64;
    let mut i = 0;
    while f >= 1024.0 && i + 1 < units.len() {
        f /= 1024.0;
        i += 1;
    }
    format!("{:.4}", f)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .chars()
        .take(5)
        .collect::<String>()
        .trim_end_matches('.')
        .to_string()
        + units[i]
}

/// docker's `units.HumanSize` (decimal: kB, MB, GB).
fn bytes_decimal(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut f = n as f64;
    let mut i = 0;
    while f >= 1000.0 && i + 1 < units.len() {
        f /= 1000.0;
        i += 1;
    }
    let s = format!("{f:.3}");
    let s: String = s.chars().take(if f >= 100.0 { 3 } else { 4 }).collect();
    s.trim_end_matches('0').trim_end_matches('.').to_string() + units[i]
}

/// One sample of a container.
struct Sample {
    at: Instant,
    cpu_ns: u64,
    mem: u64,
    mem_limit: u64,
    pids: u64,
    net: (u64, u64),
    blk: (u64, u64),
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Bytes received and sent on every interface but `lo` of `pid`'s network namespace.
fn net_io(pid: i32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    let mut rx = 0;
    let mut tx = 0;
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        rx += f.first().copied().unwrap_or(0);
        tx += f.get(8).copied().unwrap_or(0);
    }
    (rx, tx)
}

/// Bytes read and written by the cgroup (v1 `blkio.throttle.io_service_bytes`, v2
/// `io.stat`), from the container's leaf cgroup dirs.
fn block_io(leaves: &[std::path::PathBuf]) -> (u64, u64) {
    for d in leaves {
        if let Ok(t) = std::fs::read_to_string(d.join("io.stat")) {
            let (mut r, mut w) = (0, 0);
            for tok in t.split_whitespace() {
                if let Some(v) = tok.strip_prefix("rbytes=") {
                    r += v.parse::<u64>().unwrap_or(0);
                } else if let Some(v) = tok.strip_prefix("wbytes=") {
                    w += v.parse::<u64>().unwrap_or(0);
                }
            }
            return (r, w);
        }
        for f in [
            "blkio.throttle.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes",
        ] {
            if let Ok(t) = std::fs::read_to_string(d.join(f)) {
                let (mut r, mut w) = (0, 0);
                for l in t.lines() {
                    let p: Vec<&str> = l.split_whitespace().collect();
                    if p.len() == 3 {
                        let n = p[2].parse::<u64>().unwrap_or(0);
                        match p[1] {
                            "Read" => r += n,
                            "Write" => w += n,
                            _ => {}
                        }
                    }
                }
                return (r, w);
            }
        }
    }
    (0, 0)
}

fn sample(root: &Path, id: &str, host_mem: u64) -> R<Sample> {
    let c = runtime::Container::load(root, id)?;
    let s = c.stats()?;
    let limit = s
        .memory_limit
        .filter(|l| *l > 0 && *l < host_mem)
        .unwrap_or(host_mem);
    Ok(Sample {
        at: Instant::now(),
        cpu_ns: s.cpu_usage_ns.unwrap_or(0),
        mem: s.memory_usage.unwrap_or(0),
        mem_limit: limit,
        pids: s.pids_current.unwrap_or(0),
        net: net_io(c.pid()),
        blk: block_io(&c.state().cgroup_leaves),
    })
}

fn row(id: &str, name: &str, a: &Sample, b: &Sample, no_trunc: bool) -> Value {
    let wall = b.at.duration_since(a.at).as_nanos().max(1) as f64;
    let cpu = (b.cpu_ns.saturating_sub(a.cpu_ns)) as f64 / wall * 100.0;
    let mem_perc = if b.mem_limit > 0 {
        b.mem as f64 / b.mem_limit as f64 * 100.0
    } else {
        0.0
    };
    json!({
        "ID": if no_trunc { id.to_string() } else { id.chars().take(12).collect() },
        "Container": id,
        "Name": name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_binary(b.mem), bytes_binary(b.mem_limit)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": format!("{} / {}", bytes_decimal(b.net.0), bytes_decimal(b.net.1)),
        "BlockIO": format!("{} / {}", bytes_decimal(b.blk.0), bytes_decimal(b.blk.1)),
        "PIDs": b.pids.to_string(),
    })
}

pub fn stats(
    cli: &Cli,
    root: &Path,
    ids: &[String],
    all: bool,
    no_stream: bool,
    no_trunc: bool,
    format: Option<&str>,
) -> R {
    // (runtime id, name) of each container to show.
    let targets: Vec<(String, String)> = if ids.is_empty() {
        super::ps::summaries(cli, root)?
            .into_iter()
            .filter(|s| all || s.status == corral_engine::Status::Running)
            .map(|s| (s.id, s.name))
            .collect()
    } else {
        ids.iter()
            .map(|s| match super::resolve(cli, root, s)? {
                super::Target::Engine(id) | super::Target::Runtime(id) => Ok((id, s.clone())),
            })
            .collect::<R<_>>()?
    };
    let format = format.unwrap_or(DEFAULT);
    let t = if format == "json" {
        None
    } else {
        Some(Template::parse(format)?)
    };
    let host_mem = host_memory();
    let mut prev: Vec<Option<Sample>> = targets
        .iter()
        .map(|(id, _)| sample(root, id, host_mem).ok())
        .collect();
    if prev.iter().all(Option::is_none) && !ids.is_empty() {
        return Err(msg(format!("{}: not running", ids[0])));
    }
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let mut lines = Vec::new();
        if let Some(t) = &t {
            if t.table {
                lines.push(t.header(header));
            }
        }
        for (i, (id, name)) in targets.iter().enumerate() {
            let now = sample(root, id, host_mem).ok();
            if let (Some(a), Some(b)) = (&prev[i], &now) {
                let v = row(id, name, a, b, no_trunc);
                lines.push(match &t {
                    Some(t) => t.render(&v),
                    None => v.to_string(),
                });
            }
            prev[i] = now;
        }
        let text = match &t {
            Some(t) if t.table => align(&lines),
            _ => lines.iter().map(|l| format!("{l}\n")).collect(),
        };
        if no_stream {
            print!("{text}");
            return Ok(0);
        }
        // docker's live view: the screen cleared, the table drawn again.
        print!("\x1b[2J\x1b[H{text}");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(super::bytes_binary(1536 * 1024), "1.5MiB");
        assert_eq!(super::bytes_binary(512), "512B");
        assert_eq!(super::bytes_decimal(648), "648B");
        assert_eq!(super::bytes_decimal(1200), "1.2kB");
    }
}
