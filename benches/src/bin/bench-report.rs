//! Writes BENCHMARKS.md and its plot from one run of `scripts/bench.sh`: the peers' hyperfine
//! exports and files (`--peers DIR`, see scripts/bench/peers.sh), criterion's results
//! (`--criterion DIR`, normally `target/criterion`), the machine description (`--machine
//! FILE`), the commands run (`--commands FILE`) and hand-written notes (`--notes FILE`, kept
//! verbatim). The plot is an SVG of bars drawn here (no plotting library).
//!
//! Usage: bench-report --peers DIR --criterion DIR --machine FILE --commands FILE
//!        --notes FILE --out BENCHMARKS.md --svg docs/benchmarks.svg

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

type Res<T> = Result<T, String>;

fn read(p: &Path) -> Res<String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One hyperfine table: per command (in the order of the first round) the median of the
/// per-round medians (ms), the median of the per-round ratios to its reference (crun), and
/// the same to the floor (the C stand-in).
struct Table {
    rounds: usize,
    rows: Vec<Row>,
}

struct Row {
    name: String,
    ms: f64,
    ratio: Option<f64>,
    reference: String,
    floor: Option<f64>,
}

impl Table {
    fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

/// The stand-in row a command is compared with: the one with the same limits.
fn floor(name: &str) -> &'static str {
    if name.ends_with("-cg") {
        "standin-cg"
    } else {
        "standin"
    }
}

fn reference(name: &str) -> &'static str {
    if name.ends_with("-cg") {
        "crun-cg"
    } else {
        "crun"
    }
}

fn hyperfine_table(dir: &Path, prefix: &str) -> Res<Option<Table>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with(prefix) && n.ends_with(".json")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Ok(None);
    }
    let mut rounds: Vec<Vec<(String, f64)>> = Vec::new();
    for f in &files {
        let v: Value =
            serde_json::from_str(&read(f)?).map_err(|e| format!("{}: {e}", f.display()))?;
        let res = v["results"]
            .as_array()
            .ok_or(format!("{}: no results", f.display()))?;
        rounds.push(
            res.iter()
                .filter_map(|r| Some((r["command"].as_str()?.to_string(), r["median"].as_f64()?)))
                .collect(),
        );
    }
    let get = |round: &[(String, f64)], n: &str| round.iter().find(|(c, _)| c == n).map(|x| x.1);
    let mut rows = Vec::new();
    for (name, _) in &rounds[0] {
        let med = median(rounds.iter().filter_map(|r| get(r, name)).collect());
        let ratio_to = |rf: &str| {
            let ratios: Vec<f64> = rounds
                .iter()
                .filter_map(|r| Some(get(r, name)? / get(r, rf)?))
                .collect();
            (!ratios.is_empty()).then(|| median(ratios))
        };
        rows.push(Row {
            name: name.clone(),
            ms: med * 1000.0,
            ratio: ratio_to(reference(name)),
            reference: reference(name).to_string(),
            floor: ratio_to(floor(name)),
        });
    }
    Ok(Some(Table {
        rounds: rounds.len(),
        rows,
    }))
}

fn tsv(p: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
        .collect()
}

fn tsv_rows(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// criterion's results: "group/bench" -> (median ns, lower, upper).
fn criterion(dir: &Path) -> BTreeMap<String, (f64, f64, f64)> {
    let mut out = BTreeMap::new();
    let Ok(groups) = std::fs::read_dir(dir) else {
        return out;
    };
    for g in groups.flatten() {
        let Ok(benches) = std::fs::read_dir(g.path()) else {
            continue;
        };
        for b in benches.flatten() {
            let est = b.path().join("new/estimates.json");
            let bench = b.path().join("new/benchmark.json");
            let (Ok(e), Ok(id)) = (
                std::fs::read_to_string(&est),
                std::fs::read_to_string(&bench),
            ) else {
                continue;
            };
            let (Ok(e), Ok(id)) = (
                serde_json::from_str::<Value>(&e),
                serde_json::from_str::<Value>(&id),
            ) else {
                continue;
            };
            let Some(full) = id["full_id"].as_str() else {
                continue;
            };
            let m = &e["median"];
            if let (Some(p), Some(lo), Some(hi)) = (
                m["point_estimate"].as_f64(),
                m["confidence_interval"]["lower_bound"].as_f64(),
                m["confidence_interval"]["upper_bound"].as_f64(),
            ) {
                out.insert(full.to_string(), (p, lo, hi));
            }
        }
    }
    out
}

fn ms(ns: f64) -> String {
    format!("{:.3}", ns / 1e6)
}

fn svg(bars: &[(String, f64, &str)], title: &str) -> String {
    let (w, left, bar_h, gap, top) = (760.0, 190.0, 18.0, 6.0, 40.0);
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9);
    let h = top + bars.len() as f64 * (bar_h + gap) + 30.0;
    let scale = (w - left - 80.0) / max;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="14" font-weight="bold">{title}</text>"#
    );
    for (i, (name, v, color)) in bars.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let bw = (v * scale).max(1.0);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{name}</text><rect x="{left}" y="{y}" width="{bw:.1}" height="{bar_h}" fill="{color}"/><text x="{:.1}" y="{}">{v:.2} ms</text>"#,
            left - 8.0,
            y + 13.0,
            left + bw + 6.0,
            y + 13.0
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

struct Args {
    peers: PathBuf,
    criterion: PathBuf,
    machine: PathBuf,
    commands: PathBuf,
    notes: PathBuf,
    rounds: Option<PathBuf>,
    experiments: Option<PathBuf>,
    out: PathBuf,
    svg: PathBuf,
}

fn args() -> Res<Args> {
    let mut m = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        m.insert(k.trim_start_matches("--").to_string(), PathBuf::from(v));
    }
    let get =
        |m: &mut BTreeMap<String, PathBuf>, k: &str| m.remove(k).ok_or(format!("missing --{k}"));
    Ok(Args {
        peers: get(&mut m, "peers")?,
        criterion: get(&mut m, "criterion")?,
        machine: get(&mut m, "machine")?,
        commands: get(&mut m, "commands")?,
        notes: get(&mut m, "notes")?,
        rounds: m.remove("rounds"),
        experiments: m.remove("experiments"),
        out: get(&mut m, "out")?,
        svg: get(&mut m, "svg")?,
    })
}

fn peer_table(md: &mut String, t: &Table, title: &str) {
    let _ = writeln!(md, "{title} ({} rounds)\n", t.rounds);
    let _ = writeln!(
        md,
        "| command | median ms | ratio | vs | ratio to the floor |\n|---|---:|---:|---|---:|"
    );
    for row in &t.rows {
        let f = |r: Option<f64>| r.map(|r| format!("{r:.3}")).unwrap_or("n/a".into());
        let (n, med, rf) = (&row.name, row.ms, &row.reference);
        let (r, fl) = (f(row.ratio), f(row.floor));
        let bold = if n.starts_with("corral") { "**" } else { "" };
        let _ = writeln!(
            md,
            "| {bold}{n}{bold} | {med:.3} | {bold}{r}{bold} | {rf} | {bold}{fl}{bold} |"
        );
    }
    md.push('\n');
}

fn run() -> Res<()> {
    let a = args()?;
    let warm = hyperfine_table(&a.peers, "warm-")?;
    let cold = hyperfine_table(&a.peers, "cold-")?;
    let crit = criterion(&a.criterion);
    let mut md = String::new();
    intro(&mut md, &a)?;
    targets_section(&mut md, &a, warm.as_ref(), cold.as_ref(), &crit);
    experiments_section(&mut md, &a);
    peers_section(&mut md, &a, warm.as_ref(), cold.as_ref());
    rounds_section(&mut md, &a);
    criterion_section(&mut md, &crit);
    std::fs::write(&a.out, md).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let bars = bars(warm.as_ref(), cold.as_ref(), &crit);
    if let Some(dir) = a.svg.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(
        &a.svg,
        svg(&bars, "spawn-to-exit of /bin/true, medians (ms)"),
    )
    .map_err(|e| format!("{}: {e}", a.svg.display()))?;
    Ok(())
}

/// The title, the machine, the commands and the notes.
fn intro(md: &mut String, a: &Args) -> Res<()> {
    let versions = read(&a.peers.join("versions.txt")).unwrap_or_default();
    let machine = read(&a.machine)?;
    let commands = read(&a.commands)?;
    let notes = read(&a.notes)?;
    md.push_str("# corral benchmarks\n\n");
    md.push_str(
        "Generated by `scripts/bench.sh` (do not edit by hand: the notes come from \
         `benches/NOTES.md`). Spawn-to-exit latency of `corral run` against crun, runc, youki \
         and the floor (a C program doing the same container's kernel work and nothing else) \
         on one busybox bundle (`runc spec`, terminal off, args `/bin/true`; `-cg` rows add \
         memory 64 MiB, pids 64, cpu 50000/100000), all timed in the same hyperfine runs, \
         interleaved; then corral's library spawn and each phase, from criterion. These VMs are \
         noisy: read the ratios, which compare runs made side by side. Earlier runs: \
         [docs/benchmarks-history.md](docs/benchmarks-history.md).\n\n",
    );
    md.push_str("## Machine and versions\n\n```\n");
    md.push_str(machine.trim_end());
    md.push('\n');
    md.push_str(versions.trim_end());
    md.push_str("\n```\n\n## Commands\n\n```sh\n");
    md.push_str(commands.trim_end());
    md.push_str("\n```\n\n");
    md.push_str(&notes);
    md.push_str("\n## corral against its peers (hyperfine, `corral run`)\n\n");
    md.push_str("![medians](docs/benchmarks.svg)\n\n");
    Ok(())
}

/// corral against its peers: the warm and cold tables, peak RSS and syscalls.
fn peers_section(md: &mut String, a: &Args, warm: Option<&Table>, cold: Option<&Table>) {
    let rss = tsv(&a.peers.join("rss.tsv"));
    let sys = tsv(&a.peers.join("syscalls.tsv"));
    if let Some(t) = warm {
        peer_table(md, t, "WARM (back to back), median over rounds of the round's median; ratio = median over rounds of median(cmd)/median(ref)");
    }
    if let Some(t) = cold {
        peer_table(md, t, "COLD (0.1 s idle before each run)");
    }
    if !rss.is_empty() {
        md.push_str("Peak RSS (GNU time `%M`, the largest process waited for), median of 5 runs, and syscalls of one run (`strace -f -c`, every process), median of 3:\n\n| command | peak RSS KiB | syscalls |\n|---|---:|---:|\n");
        for (n, k) in &rss {
            let s = sys
                .iter()
                .find(|(m, _)| m == n)
                .map(|x| x.1.as_str())
                .unwrap_or("");
            let _ = writeln!(md, "| {n} | {k} | {s} |");
        }
        md.push('\n');
    }
    let by_name = tsv_rows(&a.peers.join("syscalls-by-name.tsv"));
    if !by_name.is_empty() {
        md.push_str(
            "Syscalls of one run by name (`strace -f -c`, the first of the three runs), most \
             made by corral first:\n\n| syscall | crun | corral | stand-in |\n|---|---:|---:|---:|\n",
        );
        for r in &by_name {
            if let [n, c, k, s] = r.as_slice() {
                let _ = writeln!(md, "| {n} | {c} | {k} | {s} |");
            }
        }
        md.push('\n');
    }
}

/// The experiments (`scripts/bench/experiments.sh`): corral built without one cost each.
fn experiments_section(md: &mut String, a: &Args) {
    let Some(rows) = a.experiments.as_ref().map(|p| tsv_rows(p)) else {
        return;
    };
    if rows.is_empty() {
        return;
    }
    md.push_str(
        "## Experiments: what each remaining cost is worth\n\n\
         corral built without one cost each, without all of them at once (`all-removed`), and \
         as the whole command line in one binary (`full`) (`scripts/bench/experiments.sh`: \
         patches in `benches/experiments/` applied to a copy of this commit, never merged), timed with \
         corral as built and the floor in the same hyperfine rounds (warm; medians over rounds \
         of the round's median and of the per-round ratios), with the syscalls of one run \
         (`strace -f -c`, median of 3) and its peak RSS (GNU time `%M`, median of 5).\n\n\
         | build | median ms | ratio to corral | ratio to the floor | syscalls | peak RSS KiB | what it removes (and gives up) |\n\
         |---|---:|---:|---:|---:|---:|---|\n",
    );
    for r in &rows {
        if let [n, m, rc, rf, sc, what, rest @ ..] = r.as_slice() {
            let rss = rest.first().map(String::as_str).unwrap_or("");
            let _ = writeln!(md, "| {n} | {m} | {rc} | {rf} | {sc} | {rss} | {what} |");
        }
    }
    md.push('\n');
    let par = a
        .experiments
        .as_ref()
        .and_then(|p| p.parent())
        .map(|d| tsv_rows(&d.join("parallel.tsv")))
        .unwrap_or_default();
    if !par.is_empty() {
        md.push_str(
            "How spawning scales to the machine's two CPUs: runs per second one after the \
             other, and as two streams at once (`experiments.sh`, 150 runs each way, the \
             median of 3 tries). The floor's ratio is what the kernel's own work (cgroup \
             mkdir and rmdir, namespaces made and torn down, mounts) allows.\n\n\
             | command | one stream, runs/s | two streams, runs/s | ratio |\n|---|---:|---:|---:|\n",
        );
        for r in &par {
            if let [n, one, two] = r.as_slice() {
                let ratio = match (one.parse::<f64>(), two.parse::<f64>()) {
                    (Ok(o), Ok(t)) if o > 0.0 => format!("{:.2}", t / o),
                    _ => "n/a".into(),
                };
                let _ = writeln!(md, "| {n} | {one} | {two} | {ratio} |");
            }
        }
        md.push('\n');
    }
}

/// Issue 22's targets, each against the figure of this run.
fn targets_section(
    md: &mut String,
    a: &Args,
    warm: Option<&Table>,
    cold: Option<&Table>,
    crit: &BTreeMap<String, (f64, f64, f64)>,
) {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let verdict = |ok: bool| if ok { "met" } else { "**not met**" }.to_string();
    for (t, what) in [(warm, "warm"), (cold, "cold")] {
        for n in ["corral", "corral-cg"] {
            if let Some(f) = t.and_then(|t| t.row(n)).and_then(|r| r.floor) {
                rows.push((
                    format!("`{n}` {what} <= 1.3x `{}`", floor(n)),
                    format!("{f:.2}x"),
                    verdict(f <= 1.3),
                ));
            }
        }
    }
    let sys = tsv(&a.peers.join("syscalls.tsv"));
    let num = |v: &[(String, String)], n: &str| {
        v.iter()
            .find(|(m, _)| m == n)
            .and_then(|x| x.1.parse::<f64>().ok())
    };
    if let Some(k) = num(&sys, "corral") {
        rows.push((
            "syscalls per `corral run` <= 400".into(),
            format!("{k:.0}"),
            verdict(k <= 400.0),
        ));
    }
    let rss = tsv(&a.peers.join("rss.tsv"));
    if let (Some(c), Some(r)) = (num(&rss, "corral"), num(&rss, "crun")) {
        rows.push((
            "peak RSS of `corral run` <= crun's".into(),
            format!("{c:.0} KiB (crun {r:.0} KiB)"),
            verdict(c <= r),
        ));
    }
    let standin = warm.and_then(|t| t.row("standin")).map(|r| r.ms);
    if let (Some(s), Some(l)) = (standin, crit.get("spawn/default")) {
        let l = l.0 / 1e6;
        rows.push((
            "library spawn (`spawn/default`) <= the stand-in (warm) + 0.5 ms".into(),
            format!("{l:.3} ms (stand-in {s:.3} ms + 0.5 = {:.3})", s + 0.5),
            verdict(l <= s + 0.5),
        ));
    }
    if let (Some(one), Some(two)) = (
        crit.get("spawn/cgroup-limits"),
        crit.get("spawn-2-threads/cgroup-limits"),
    ) {
        let x = one.0 / two.0;
        rows.push((
            "two threads >= 1.8x one thread's spawns per second (cgroup limits)".into(),
            format!(
                "{x:.2}x ({:.0} against {:.0} per second)",
                1e9 / two.0,
                1e9 / one.0
            ),
            verdict(x >= 1.8),
        ));
    }
    if let (Some(p), Some(e)) = (
        crit.get("pool/start-to-exec"),
        crit.get("exec/busybox-true"),
    ) {
        let (p, e) = (p.0 / 1e6, e.0 / 1e6);
        rows.push((
            "warm pool start-to-exec <= the program's exec alone (`exec/busybox-true`) + 0.2 ms"
                .into(),
            format!("{p:.3} ms (exec alone {e:.3} ms + 0.2 = {:.3})", e + 0.2),
            verdict(p <= e + 0.2),
        ));
    }
    if rows.is_empty() {
        return;
    }
    md.push_str(
        "## The targets of this run

Each target of the spawn-at-the-floor work against the \
         figure of the tables below (the floor: `benches/standin/standin.c`, a C program doing \
         the same container's kernel work and nothing else, timed in the same rounds). What \
         bounds a target that is not met, and the experiments that measured it, are in the \
         notes above.\n\n| target | this run | |\n|---|---|---|\n",
    );
    for (t, v, ok) in rows {
        let _ = writeln!(md, "| {t} | {v} | {ok} |");
    }
    md.push('\n');
}

/// The library spawn, configurations interleaved (`spawn-rounds`).
fn rounds_section(md: &mut String, a: &Args) {
    if let Some(rows) = a.rounds.as_ref().map(|p| tsv_rows(p)) {
        if !rows.is_empty() {
            md.push_str("## The library spawn, configurations interleaved\n\n");
            md.push_str(
                "create + start + wait + delete of `/bin/true` through `runtime::Container`, every \
                 configuration spawned in turn in each round (`spawn-rounds`), so that load on \
                 this shared machine falls on all alike; ratio = median over rounds of \
                 median(configuration)/median(default) in that round.\n\n\
                 | configuration | median ms | p90 ms | ratio to default |\n|---|---:|---:|---:|\n",
            );
            for r in &rows {
                if let [n, m, p, ratio] = r.as_slice() {
                    let _ = writeln!(md, "| {n} | {m} | {p} | {ratio} |");
                }
            }
            md.push('\n');
        }
    }
}

/// The criterion benches, in the order of `order`.
fn criterion_section(md: &mut String, crit: &BTreeMap<String, (f64, f64, f64)>) {
    md.push_str("## The library spawn and its phases (criterion)\n\n");
    md.push_str(
        "Medians with criterion's 95% interval of the median, in ms. `spawn/*`: create + start + \
         wait for exit + delete of `/bin/true` through `runtime::Container` (benches/benches/spawn.rs). \
         Phases (benches/benches/phases.rs) go through the leaf crates directly and time only \
         the phase.\n\n| benchmark | median ms | 95% interval | what |\n|---|---:|---|---|\n",
    );
    let order = [
        "spawn/",
        "spawn-2-threads/",
        "spawn-steps/",
        "pool/",
        "ns/",
        "exec/",
        "cgroup/",
        "cgroup-cold/",
        "overlay/",
        "rootfs/",
    ];
    for pre in order {
        for (k, (m, lo, hi)) in crit.iter().filter(|(k, _)| {
            k.starts_with(pre)
                && !order
                    .iter()
                    .any(|o| o.len() > pre.len() && k.starts_with(o))
        }) {
            let _ = writeln!(
                md,
                "| {k} | {} | {} .. {} | {} |",
                ms(*m),
                ms(*lo),
                ms(*hi),
                what(k)
            );
        }
    }
    if let Some(r) = crit.get("spawn-2-threads/cgroup-limits") {
        let _ = writeln!(
            md,
            "\nSpawns per second through the library on 2 threads, with cgroup limits: **{:.0}**.",
            1e9 / r.0
        );
    }
}

/// What a criterion benchmark measures, for its row.
fn what(k: &str) -> &'static str {
    match k {
        "spawn/default" => "`corral spec` config: pid, net, ipc, uts, mount, cgroup namespaces, default mounts, read-only root",
        "spawn/no-netns" => "default without a network namespace",
        "spawn/seccomp" => "default + an allow-list filter like Docker's (all syscalls but 50)",
        "spawn/userns" => "default + a user namespace (0 -> 100000, 65536 ids)",
        "spawn/overlay" => "default, root an overlay of the busybox root (`Options::layers`)",
        "spawn/cgroup-limits" => "default + memory, pids, cpu limits",
        "spawn-2-threads/cgroup-limits" => "two threads spawning at once: wall time per spawn (1/x = spawns per second)",
        "spawn-steps/create" | "spawn-steps/start" | "spawn-steps/wait" | "spawn-steps/delete" => "one step of spawn/default",
        "pool/start-to-exec" => "warm pool (cgroup limits): a take, from the call until execve succeeded (the `start` phase)",
        "pool/start-to-exec-tmpfs-root" => "the same, the pool's state root on a tmpfs (an experiment: the state write at start without ext4)",
        "pool/take-to-exit" => "warm pool (cgroup limits): take + wait for exit + delete of `/bin/true`",
        "cgroup/create" => "mkdir in every hierarchy",
        "cgroup/limits" => "memory, pids, cpu limits written",
        "cgroup/attach" => "parent writes a pid to cgroup.procs of every hierarchy, back to back",
        "cgroup/remove" => "rmdir in every hierarchy",
        "cgroup-cold/attach" => "the same after 0.1 s idle (the RCU grace period of cgroup v1)",
        "overlay/mount-1" | "overlay/mount-10" => "overlay mount of N read-only layers + upper",
        "rootfs/mounts" => "proc, /dev tmpfs, devpts, shm, mqueue, sysfs in a new mount namespace",
        "rootfs/pivot_root" => "pivot_root(\".\", \".\") + detach of the old root",
        "exec/host-true" => "fork + exec + exit of the host's /bin/true (dynamic)",
        "exec/busybox-true" => "fork + exec + exit of static busybox `true`",
        k if k.starts_with("ns/") => "ns::spawn with these new namespaces, exec /bin/true, reaped",
        _ => "",
    }
}

/// The bars of the SVG: the peers' medians and the library's.
fn bars<'a>(
    warm: Option<&Table>,
    cold: Option<&Table>,
    crit: &BTreeMap<String, (f64, f64, f64)>,
) -> Vec<(String, f64, &'a str)> {
    let mut bars: Vec<(String, f64, &str)> = Vec::new();
    if let Some(t) = warm {
        for Row { name: n, ms: m, .. } in &t.rows {
            if [
                "crun",
                "standin",
                "runc",
                "youki",
                "corral",
                "crun-cg",
                "corral-cg",
                "runc-cg",
                "youki-cg",
            ]
            .contains(&n.as_str())
            {
                let c = if n.starts_with("corral") {
                    "#2b7a3d"
                } else {
                    "#7a7a7a"
                };
                bars.push((format!("{n} (run, warm)"), *m, c));
            }
        }
    }
    if let Some(t) = cold {
        for Row { name: n, ms: m, .. } in &t.rows {
            if ["crun", "corral", "standin", "crun-cg", "corral-cg"].contains(&n.as_str()) {
                let c = if n.starts_with("corral") {
                    "#58b368"
                } else {
                    "#b0b0b0"
                };
                bars.push((format!("{n} (run, cold)"), *m, c));
            }
        }
    }
    for k in [
        "spawn/default",
        "spawn/cgroup-limits",
        "pool/take-to-exit",
        "pool/start-to-exec",
    ] {
        if let Some(v) = crit.get(k) {
            bars.push((format!("library {k}"), v.0 / 1e6, "#1f5fa8"));
        }
    }
    bars
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-report: {e}");
        std::process::exit(1);
    }
}
