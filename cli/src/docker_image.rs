//! Docker's image verbs at the top level (`build`, `images`, `rmi`, `tag`, `history`, `save`,
//! `load`, `commit`, `image prune`) and `system df|prune`: docker's flags, columns and words
//! over `corral_image`'s store. The flags are `args_image.rs`'s.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::Path;

use corral_image::{CommitOptions, Image, ImageStore, Reference};

use crate::args::Cli;
use crate::args_image::{
    CommitArgs, HistoryArgs, ImagePruneArgs, ImagesArgs, LoadArgs, RmiArgs, SaveArgs, SystemCmd,
    TagArgs,
};
use crate::error::{msg, R};
use crate::image::{open_store, store_dir};
use crate::output::printable;

/// Bytes as docker shows them (`units.HumanSizeWithPrecision(n, 3)`): base 1000, three
/// significant digits, `B`, `kB`, `MB`, `GB`...
pub fn size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut f = n as f64;
    let mut u = 0;
    while f >= 1000.0 && u + 1 < UNITS.len() {
        f /= 1000.0;
        u += 1;
    }
    let digits = if f >= 100.0 {
        0
    } else if f >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{f:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[u])
}

/// A duration as docker says it (`units.HumanDuration`): `Less than a second`, `3 seconds`,
/// `About a minute`, `5 minutes`, `About an hour`, `2 hours`, `3 days`, `2 weeks`...
pub fn human_duration(secs: u64) -> String {
    let minutes = secs / 60;
    let hours = (secs as f64 / 3600.0 + 0.5) as u64;
    match () {
        _ if secs < 1 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

/// Seconds since the epoch of an RFC 3339 time (`None` if it does not parse).
fn epoch(rfc3339: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z').split('.').next()?)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `2 hours ago` for an RFC 3339 time; `N/A` for none.
pub fn ago(created: Option<&str>) -> String {
    match created.and_then(epoch) {
        Some(t) => format!("{} ago", human_duration(now().saturating_sub(t))),
        None => "N/A".into(),
    }
}

/// Rows as docker's tabwriter aligns them (minimum width 10, padding 3); the last column
/// is not padded ([`crate::docker::template::align`], with no trailing blanks).
pub fn table(rows: &[Vec<String>]) -> String {
    let lines: Vec<String> = rows.iter().map(|r| r.join("\t")).collect();
    crate::docker::template::align(&lines)
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

/// Is `format` docker's whole-object JSON (`json`, `{{json .}}`)?
pub fn wants_json(format: &str) -> bool {
    let f: String = format.chars().filter(|c| !c.is_whitespace()).collect();
    f == "json" || f == "{{json.}}"
}

/// `v` printed as `--format f` asks: the whole object as JSON (`json`, `{{json .}}`), else
/// the template applied to it.
pub fn print_format(f: &str, v: &serde_json::Value) -> R<()> {
    if wants_json(f) {
        println!("{v}");
    } else {
        println!("{}", template(f, v)?);
    }
    Ok(())
}

/// docker's `--format` over a JSON object ([`crate::docker::template::Template`]); a field
/// the object lacks is an error, as Go's templates over docker's structs say.
pub fn template(format: &str, v: &serde_json::Value) -> R<String> {
    let t = crate::docker::template::Template::parse(format)?;
    if let Some(k) = t.missing(v) {
        return Err(msg(format!(
            "--format {format:?}: template: can't evaluate field {k}"
        )));
    }
    Ok(t.render(v))
}

fn reference(s: &str) -> R<Reference> {
    Ok(Reference::parse(s)?)
}

/// Asks `question [y/N]` when stdin is a terminal; otherwise yes (scripts pass `-f`, and
/// corral's own `image prune` never asked).
fn confirm(warning: &str) -> R<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| msg(format!("reading the answer: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

// ---- build ----

/// `corral build`: see `build.rs` (shared with `image build`).
pub fn build(cli: &Cli, a: &crate::args::BuildArgs) -> R {
    crate::build::build(cli, &open_store(cli)?, a)
}

// ---- images ----

/// One row of `images`: the image, its repository and tag (`<none>` for an untagged one).
struct Row {
    repo: String,
    tag: String,
    img: Image,
    size: u64,
}

fn rows(store: &ImageStore, filter: Option<&str>) -> R<Vec<Row>> {
    let want = filter.map(|f| match f.rfind(':') {
        Some(i) if !f[i..].contains('/') => (f[..i].to_string(), Some(f[i + 1..].to_string())),
        _ => (f.to_string(), None),
    });
    let mut out = Vec::new();
    for (img, refs) in store.images()? {
        let size: u64 = img.diff_ids()?.iter().map(|d| store.layer_size(d)).sum();
        let names: Vec<(String, String)> = if refs.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            refs.iter()
                .map(|r| (r.name.clone(), r.tag.clone()))
                .collect()
        };
        for (repo, tag) in names {
            if let Some((n, t)) = &want {
                if repo != *n || t.as_ref().is_some_and(|t| *t != tag) {
                    continue;
                }
            }
            out.push(Row {
                repo,
                tag,
                img: img.clone(),
                size,
            });
        }
    }
    // Newest first, as docker lists them.
    out.sort_by(|a, b| {
        let t = |r: &Row| r.img.config.created().clone().unwrap_or_default();
        t(b).cmp(&t(a))
            .then_with(|| a.repo.cmp(&b.repo))
            .then_with(|| a.tag.cmp(&b.tag))
    });
    Ok(out)
}

/// `*` matches any run of characters but `/` (docker's `reference=` filter).
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .take_while(|&i| i == 0 || !tail[..i].contains('/'))
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Does `images --filter F` keep this row?
fn keep(row: &Row, filter: &str) -> R<bool> {
    let (k, v) = filter
        .split_once('=')
        .ok_or_else(|| msg(format!("--filter {filter:?}: want KEY=VALUE")))?;
    match k {
        "dangling" => {
            let want = match v {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(msg(format!(
                        "--filter {filter:?}: want dangling=true|false"
                    )))
                }
            };
            Ok((row.repo == "<none>") == want)
        }
        "reference" => {
            let (name, tag) = match v.rfind(':') {
                Some(i) if !v[i..].contains('/') => (&v[..i], Some(&v[i + 1..])),
                _ => (v, None),
            };
            Ok(glob(name, &row.repo) && tag.is_none_or(|t| glob(t, &row.tag)))
        }
        _ => Err(msg(format!(
            "--filter {filter:?}: corral filters by dangling and reference"
        ))),
    }
}

pub fn images(cli: &Cli, a: &ImagesArgs) -> R {
    let store = open_store(cli)?;
    let mut rows = rows(&store, a.reference.as_deref())?;
    for f in &a.filter {
        let mut kept = Vec::new();
        for r in rows {
            if keep(&r, f)? {
                kept.push(r);
            }
        }
        rows = kept;
    }
    let id = |img: &Image| {
        if a.no_trunc {
            img.id.to_string()
        } else {
            img.short_id().to_string()
        }
    };
    if a.quiet {
        let mut seen = BTreeSet::new();
        for r in &rows {
            if seen.insert(r.img.id.clone()) {
                println!("{}", id(&r.img));
            }
        }
        return Ok(0);
    }
    if let Some(f) = &a.format {
        for r in &rows {
            let created = r.img.config.created().clone().unwrap_or_default();
            let v = serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": created,
                "CreatedSince": ago(Some(&created)),
                "Digest": "<none>",
                "ID": id(&r.img),
                "Repository": r.repo,
                "SharedSize": "N/A",
                "Size": size(r.size),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": size(r.size),
            });
            print_format(f, &v)?;
        }
        return Ok(0);
    }
    let mut t = vec![vec![
        "REPOSITORY".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
    ]];
    for r in &rows {
        t.push(vec![
            printable(&r.repo).into_owned(),
            printable(&r.tag).into_owned(),
            id(&r.img),
            ago(r.img.config.created().as_deref()),
            size(r.size),
        ]);
    }
    print!("{}", table(&t));
    Ok(0)
}

// ---- rmi, tag ----

pub fn rmi(cli: &Cli, a: &RmiArgs) -> R {
    let store = open_store(cli)?;
    let _l = store.lock_exclusive()?;
    let mut failed = None;
    for i in &a.images {
        match store.remove_image_with(i, a.force) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                // As docker: every image is tried, each failure reported, the status 1.
                let e = match e {
                    corral_image::ImageError::NotFound(_) => {
                        format!("No such image: {i}")
                    }
                    e => e.to_string(),
                };
                eprintln!("corral: error: {e}");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(_) => Ok(1),
        None => Ok(0),
    }
}

pub fn tag(cli: &Cli, a: &TagArgs) -> R {
    let t = reference(&a.target)?;
    let store = open_store(cli)?;
    let _l = store.lock_shared()?;
    let img = store.resolve(&a.source)?;
    let before = store.tags()?;
    store.tag(&img, &t)?;
    orphans(&store, &before, &img.manifest_digest)?;
    Ok(0)
}

/// The images that had a name in `before` and have none now (a tag moved to `now`):
/// kept untagged, as docker lists them (`<none>:<none>`), until `rmi` or `image prune`.
pub fn orphans(
    store: &ImageStore,
    before: &[(Reference, unionfs::Digest)],
    now: &unionfs::Digest,
) -> R<()> {
    let after: BTreeSet<unionfs::Digest> = store.tags()?.into_iter().map(|(_, m)| m).collect();
    let mut seen = BTreeSet::new();
    for (_, m) in before {
        if m != now && !after.contains(m) && seen.insert(m.clone()) {
            if let Ok(img) = store.image_by_manifest(m) {
                store.keep_untagged(&img)?;
            }
        }
    }
    Ok(())
}

// ---- history ----

pub fn history(cli: &Cli, a: &HistoryArgs) -> R {
    let store = open_store(cli)?;
    let img = store.resolve(&a.image)?;
    let rows = store.history(&img)?;
    let hist = img.config.history().clone().unwrap_or_default();
    let mut t = vec![vec![
        "IMAGE".to_string(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMMENT".into(),
    ]];
    // Newest first; the newest row is the image itself, older ones have no image of their
    // own in the store (docker's `<missing>`).
    for (n, (h, raw)) in rows.iter().zip(hist.iter()).rev().enumerate() {
        let id = if n == 0 {
            if a.no_trunc {
                img.id.to_string()
            } else {
                img.short_id().to_string()
            }
        } else {
            "<missing>".to_string()
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let mut by = printable(&h.created_by).into_owned();
        if let Some(rest) = by.strip_prefix("/bin/sh -c #(nop) ") {
            by = rest.trim_start().to_string();
        }
        if !a.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        let created = if a.human {
            ago(Some(&h.created))
        } else {
            h.created.clone()
        };
        let sz = if a.human {
            size(h.size)
        } else {
            h.size.to_string()
        };
        let comment = printable(raw.comment().as_deref().unwrap_or("")).into_owned();
        t.push(vec![id, created, by, sz, comment]);
    }
    if !a.quiet {
        print!("{}", table(&t));
    }
    Ok(0)
}

// ---- save, load ----

/// The images `names` name, each once, with the names to give it in the archive: a tag
/// names itself; an ID names the image without a name (as docker).
fn to_save(store: &ImageStore, names: &[String]) -> R<Vec<(Image, Vec<Reference>)>> {
    let mut out: Vec<(Image, Vec<Reference>)> = Vec::new();
    for n in names {
        let img = store.resolve(n)?;
        let tags = store.tags_of(&img.manifest_digest)?;
        let named: Vec<Reference> = match Reference::parse(n) {
            Ok(r) if tags.contains(&r) => vec![r],
            _ => Vec::new(),
        };
        match out
            .iter_mut()
            .find(|(i, _)| i.manifest_digest == img.manifest_digest)
        {
            Some((_, refs)) => {
                for r in named {
                    if !refs.contains(&r) {
                        refs.push(r);
                    }
                }
            }
            None => out.push((img, named)),
        }
    }
    Ok(out)
}

pub fn save(cli: &Cli, a: &SaveArgs) -> R {
    let store = open_store(cli)?;
    let _l = store.lock_shared()?;
    let items = to_save(&store, &a.images)?;
    match &a.output {
        Some(path) => {
            let res = (|| -> std::io::Result<()> {
                let tmp = runtime::atomic_file::temp_beside(path, 0o644)?;
                let mut w = std::io::BufWriter::new(tmp);
                store
                    .save(&items, &mut w)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let f = w.into_inner().map_err(|e| e.into_error())?;
                runtime::atomic_file::persist(f, path, true)
            })();
            res.map_err(|e| msg(format!("save {}: {e}", path.display())))?;
        }
        None => {
            let out = std::io::stdout();
            if out.is_terminal() {
                return Err(msg(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                ));
            }
            let mut w = std::io::BufWriter::new(out.lock());
            store.save(&items, &mut w)?;
            w.flush().map_err(|e| msg(format!("save: {e}")))?;
        }
    }
    Ok(0)
}

pub fn load(cli: &Cli, a: &LoadArgs) -> R {
    let store = open_store(cli)?;
    let _l = store.lock_shared()?;
    let loaded = match &a.input {
        Some(p) => store.load(p)?,
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(msg(
                    "requested load from stdin, but stdin is empty (use -i FILE or redirect)",
                ));
            }
            // The archive is read twice (what it is, then its content): kept under the
            // store's temp dir meanwhile.
            let dir = store.temp_dir("load")?;
            let path = dir.join("archive.tar");
            let res = (|| -> R<Vec<(Image, Vec<Reference>)>> {
                let mut f = std::fs::File::create(&path)
                    .map_err(|e| msg(format!("{}: {e}", path.display())))?;
                let n = std::io::copy(&mut stdin.lock(), &mut f)
                    .map_err(|e| msg(format!("reading stdin: {e}")))?;
                if n == 0 {
                    return Err(msg("requested load from stdin, but stdin is empty"));
                }
                drop(f);
                Ok(store.load(&path)?)
            })();
            let _ = std::fs::remove_dir_all(&dir);
            res?
        }
    };
    for (img, refs) in loaded {
        if refs.is_empty() {
            println!("Loaded image ID: {}", img.id);
        }
        for r in refs {
            println!("Loaded image: {r}");
        }
    }
    Ok(0)
}

// ---- commit ----

pub fn commit(cli: &Cli, a: &CommitArgs) -> R {
    let target = a.reference.as_deref().map(reference).transpose()?;
    let opts = CommitOptions {
        message: a.message.clone(),
        author: a.author.clone(),
        changes: a.change.clone(),
    };
    let img = open_store(cli)?.commit_with(&a.id, target.as_ref(), &opts)?;
    println!("{}", img.id);
    Ok(0)
}

// ---- image prune ----

pub fn image_prune(cli: &Cli, a: &ImagePruneArgs) -> R {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning)? {
        return Ok(0);
    }
    let store = open_store(cli)?;
    let _l = store.lock_exclusive()?;
    let (lines, r, bytes) = store.prune_images(a.all)?;
    if !lines.is_empty() {
        println!("Deleted Images:");
        lines.iter().for_each(|l| println!("{l}"));
        println!();
    }
    if r.layers + r.blobs + r.containers + r.cache + r.temp > 0 {
        // What nothing used any more (corral's sweep, beyond docker's list).
        println!(
            "Removed {} layers, {} blobs, {} stale containers, {} cache entries, {} temp leftovers",
            r.layers, r.blobs, r.containers, r.cache, r.temp
        );
    }
    println!("Total reclaimed space: {}", size(bytes));
    Ok(0)
}

// ---- system ----

pub fn system(cli: &Cli, root: &Path, cmd: &SystemCmd) -> R {
    match cmd {
        SystemCmd::Df { verbose, format } => df(cli, root, *verbose, format.as_deref()),
        SystemCmd::Prune {
            all,
            force,
            volumes,
        } => system_prune(cli, root, *all, *force, *volumes),
        SystemCmd::Info(a) => crate::info::info(cli, root, a),
    }
}

/// A container of this store under `root`: the engine's, or one `run --image` made whose
/// runtime state is there; whether it runs (or is paused), is the engine's, and its
/// writable layer's bytes.
struct Ctr {
    id: String,
    running: bool,
    engine: bool,
    bytes: u64,
}

/// The containers of the store under `root` (read only).
fn containers(store: &ImageStore, root: &Path) -> Vec<Ctr> {
    let mut out = Vec::new();
    let upper = |id: &str| {
        store
            .container(id)
            .ok()
            .flatten()
            .map_or(0, |r| crate::info::du(&r.upper_dir()))
    };
    for c in crate::info::engine(store.root(), root)
        .list(true)
        .unwrap_or_default()
    {
        out.push(Ctr {
            running: matches!(
                c.status,
                corral_engine::Status::Running | corral_engine::Status::Restarting
            ),
            engine: true,
            bytes: upper(&c.id),
            id: c.id,
        });
    }
    for c in store.containers().unwrap_or_default() {
        if c.keep
            || c.state_root != root
            || !root.join(&c.id).is_dir()
            || out.iter().any(|o| o.id == c.id)
        {
            continue;
        }
        let running = crate::info::runtime_status(root, &c.id)
            .is_some_and(|s| matches!(s, runtime::Status::Running | runtime::Status::Paused));
        out.push(Ctr {
            bytes: crate::info::du(&c.upper_dir()),
            id: c.id,
            running,
            engine: false,
        });
    }
    out
}

fn percent(part: u64, whole: u64) -> String {
    format!("{}%", (part * 100).checked_div(whole).unwrap_or(0))
}

fn df(cli: &Cli, root: &Path, verbose: bool, format: Option<&str>) -> R {
    let dir = store_dir(cli);
    let store = ImageStore::open_read(&dir)?;
    let (du, ctrs) = match &store {
        Some(s) => (s.disk_usage()?, containers(s, root)),
        None => (corral_image::DiskUsage::default(), Vec::new()),
    };
    let vols = crate::info::volumes(&dir);
    let c_bytes: u64 = ctrs.iter().map(|c| c.bytes).sum();
    let c_reclaim: u64 = ctrs.iter().filter(|c| !c.running).map(|c| c.bytes).sum();
    let v_bytes: u64 = vols.iter().map(|v| v.1).sum();
    let v_reclaim: u64 = vols.iter().filter(|v| !v.2).map(|v| v.1).sum();
    let rows = [
        (
            "Images",
            du.images,
            du.active_images,
            du.images_bytes,
            du.images_reclaimable,
        ),
        (
            "Containers",
            ctrs.len(),
            ctrs.iter().filter(|c| c.running).count(),
            c_bytes,
            c_reclaim,
        ),
        (
            "Local Volumes",
            vols.len(),
            vols.iter().filter(|v| v.2).count(),
            v_bytes,
            v_reclaim,
        ),
        (
            "Build Cache",
            du.cache_entries,
            0,
            du.cache_bytes,
            du.cache_bytes,
        ),
    ];
    if let Some(f) = format {
        for (ty, total, active, bytes, reclaim) in rows {
            let v = serde_json::json!({
                "Type": ty,
                "TotalCount": total.to_string(),
                "Active": active.to_string(),
                "Size": size(bytes),
                "Reclaimable": format!("{} ({})", size(reclaim), percent(reclaim, bytes)),
            });
            print_format(f, &v)?;
        }
        return Ok(0);
    }
    let mut t = vec![vec![
        "TYPE".to_string(),
        "TOTAL".into(),
        "ACTIVE".into(),
        "SIZE".into(),
        "RECLAIMABLE".into(),
    ]];
    for (ty, total, active, bytes, reclaim) in rows {
        let r = if ty == "Build Cache" || ty == "Containers" && bytes == 0 {
            size(reclaim)
        } else {
            format!("{} ({})", size(reclaim), percent(reclaim, bytes))
        };
        t.push(vec![
            ty.to_string(),
            total.to_string(),
            active.to_string(),
            size(bytes),
            r,
        ]);
    }
    print!("{}", table(&t));
    if verbose {
        if let Some(s) = &store {
            println!("\nImages space usage:\n");
            let mut t = vec![vec![
                "REPOSITORY".to_string(),
                "TAG".into(),
                "IMAGE ID".into(),
                "CREATED".into(),
                "SIZE".into(),
            ]];
            for r in rows_of(s)? {
                t.push(r);
            }
            print!("{}", table(&t));
        }
        println!("\nContainers space usage:\n");
        let mut t = vec![vec![
            "CONTAINER ID".to_string(),
            "STATUS".into(),
            "SIZE".into(),
        ]];
        for c in &ctrs {
            t.push(vec![
                c.id.clone(),
                if c.running { "running" } else { "stopped" }.into(),
                size(c.bytes),
            ]);
        }
        print!("{}", table(&t));
        println!("\nLocal Volumes space usage:\n");
        let mut t = vec![vec!["VOLUME NAME".to_string(), "SIZE".into()]];
        for (name, bytes, _) in &vols {
            t.push(vec![printable(name).into_owned(), size(*bytes)]);
        }
        print!("{}", table(&t));
    }
    Ok(0)
}

fn rows_of(store: &ImageStore) -> R<Vec<Vec<String>>> {
    Ok(rows(store, None)?
        .into_iter()
        .map(|r| {
            vec![
                printable(&r.repo).into_owned(),
                printable(&r.tag).into_owned(),
                r.img.short_id().to_string(),
                ago(r.img.config.created().as_deref()),
                size(r.size),
            ]
        })
        .collect())
}

fn system_prune(cli: &Cli, root: &Path, all: bool, force: bool, volumes: bool) -> R {
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by \
         at least one container\n",
    );
    if volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if all {
        "  - all images without at least one container associated to them\n"
    } else {
        "  - all dangling images\n"
    });
    warning.push_str("  - unused build cache\n");
    if !force && !confirm(&warning)? {
        return Ok(0);
    }
    let store = open_store(cli)?;
    let before = store.disk_bytes();
    // Stopped containers: the engine's that are created or exited, and those `run --image`
    // made and left stopped, their state under `root`.
    let mut deleted_ctrs = Vec::new();
    let engine = crate::info::engine(store.root(), root);
    for c in containers(&store, root) {
        if c.running {
            continue;
        }
        let removed = if c.engine {
            let st = engine.status(&c.id).map(|s| s.status);
            matches!(
                st,
                Ok(corral_engine::Status::Created | corral_engine::Status::Exited)
            ) && engine.remove(&c.id, false, false).is_ok()
        } else {
            crate::info::runtime_status(root, &c.id) == Some(runtime::Status::Stopped)
                && corral_image::remove(store.root(), root, &c.id, false).is_ok()
        };
        if removed {
            deleted_ctrs.push(c.id);
        }
    }
    // Anonymous volumes no container uses (docker's `--volumes`).
    let (deleted_vols, vol_bytes) = if volumes {
        corral_image::volume::prune(store.root(), false)?
    } else {
        (Vec::new(), 0)
    };
    // Networks no container is attached to (never the default one).
    let net = crate::network::net_root(cli);
    let mut deleted_nets = Vec::new();
    if store.root().join("networks").is_dir() {
        for n in net.list()? {
            if n.name != runtime::net::DEFAULT_NETWORK && n.containers.is_empty() {
                net.remove(&n.name)?;
                deleted_nets.push(n.name);
            }
        }
    }
    let _l = store.lock_exclusive()?;
    let (images, _, _) = store.prune_images(all)?;
    // The build cache: every entry (its layers go when no image uses them).
    let cdir = store.root().join("cache");
    let mut cache = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&cdir) {
        for e in rd.flatten() {
            if std::fs::remove_file(e.path()).is_ok() {
                cache.push(
                    e.file_name()
                        .to_string_lossy()
                        .trim_end_matches(".json")
                        .to_string(),
                );
            }
        }
    }
    store.prune()?;
    let reclaimed = before.saturating_sub(store.disk_bytes()) + vol_bytes;
    if !deleted_ctrs.is_empty() {
        println!("Deleted Containers:");
        deleted_ctrs.iter().for_each(|c| println!("{c}"));
        println!();
    }
    if !deleted_vols.is_empty() {
        println!("Deleted Volumes:");
        deleted_vols
            .iter()
            .for_each(|v| println!("{}", printable(v)));
        println!();
    }
    if !deleted_nets.is_empty() {
        println!("Deleted Networks:");
        deleted_nets
            .iter()
            .for_each(|n| println!("{}", printable(n)));
        println!();
    }
    if !images.is_empty() {
        println!("Deleted Images:");
        images.iter().for_each(|l| println!("{l}"));
        println!();
    }
    if !cache.is_empty() {
        println!("Deleted build cache objects:");
        cache.iter().for_each(|c| println!("{c}"));
        println!();
    }
    println!("Total reclaimed space: {}", size(reclaimed));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(1000), "1kB");
        assert_eq!(size(4_261_500), "4.26MB");
        assert_eq!(size(77_830_000), "77.8MB");
        assert_eq!(size(1_240_000_000), "1.24GB");
    }

    #[test]
    fn durations_as_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(30), "30 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
    }

    #[test]
    fn reference_globs() {
        assert!(glob("app", "app"));
        assert!(glob("ap*", "app"));
        assert!(glob("*", "app"));
        assert!(!glob("*", "team/app"));
        assert!(glob("*/app", "team/app"));
        assert!(!glob("ap", "app"));
    }

    #[test]
    fn templates() {
        let v = serde_json::json!({"A": "x", "B": {"C": 3}, "L": ["a", "b"]});
        assert_eq!(template("{{.A}}:{{.B.C}}", &v).ok().as_deref(), Some("x:3"));
        assert_eq!(template("{{json .A}}", &v).ok().as_deref(), Some("\"x\""));
        assert_eq!(template("{{.L}}", &v).ok().as_deref(), Some("[a b]"));
        assert!(template("{{.Nope}}", &v).is_err());
        assert!(wants_json("{{json .}}") && wants_json("json") && !wants_json("{{.A}}"));
    }
}
