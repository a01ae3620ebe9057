//! `corral image build`: a Dockerfile subset built into layers, with a cache.
//!
//! Each RUN, COPY and ADD step runs on an overlay of the layers so far plus a new upper
//! dir (mounted under the store's temp dir); that upper dir becomes the step's layer.
//! RUN runs in a container with the host's network (as `docker build --network host`).
//! Every step is cached under a key chained from the base image, the instruction (after
//! substitution), the environment a RUN sees and the content a COPY or ADD brings, so an
//! unchanged rebuild makes no new layer and the same image.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use oci_spec::image::{History, ImageConfiguration};
use runtime::image::{CacheEntry, ImageStore, Layer, Reference};
use runtime::image_spec::{spec_for_image, RunConfig};
use sha2::{Digest as _, Sha256};

use crate::commands::{msg, R};
use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// NAME[:TAG] of the image
    #[arg(short = 't', long = "tag")]
    pub tag: String,
    /// The Dockerfile (default CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// A build argument (KEY=VALUE)
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Run every step again (the results still go to the cache)
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// The build context directory
    pub context: PathBuf,
}

/// One instruction and the line it starts on.
#[derive(Debug, Clone)]
pub struct Instruction {
    pub line: usize,
    pub keyword: String,
    pub args: String,
    /// The text as written (continuations joined), for messages and history.
    pub text: String,
}

/// Split a Dockerfile into instructions: comments and blank lines dropped, `\` line
/// continuations joined.
pub fn parse(text: &str) -> Result<Vec<Instruction>, String> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let t = raw.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_none()) {
            continue;
        }
        let (start, mut acc) = cur.take().unwrap_or((n, String::new()));
        let (body, cont) = match t.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (t, false),
        };
        if !acc.is_empty() && !body.is_empty() {
            acc.push(' ');
        }
        acc.push_str(body.trim());
        if cont {
            cur = Some((start, acc));
            continue;
        }
        if acc.trim().is_empty() {
            continue;
        }
        let (kw, args) = match acc.split_once(char::is_whitespace) {
            Some((k, a)) => (k.to_string(), a.trim().to_string()),
            None => (acc.clone(), String::new()),
        };
        out.push(Instruction {
            line: start,
            keyword: kw.to_ascii_uppercase(),
            args,
            text: acc,
        });
    }
    if let Some((start, _)) = cur {
        return Err(format!(
            "line {start}: the file ends inside a continued line"
        ));
    }
    Ok(out)
}

/// `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`; `\$` is a literal `$`.
pub fn substitute(s: &str, vars: &HashMap<String, String>) -> Result<String, String> {
    let b: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\\' && i + 1 < b.len() && b[i + 1] == '$' {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' || i + 1 >= b.len() {
            out.push(c);
            i += 1;
            continue;
        }
        if b[i + 1] == '{' {
            let end = b[i + 2..]
                .iter()
                .position(|&x| x == '}')
                .ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
            let inner: String = b[i + 2..i + 2 + end].iter().collect();
            let (name, op) = match inner.find(':') {
                Some(p) => (&inner[..p], Some(&inner[p..])),
                None => (&inner[..], None),
            };
            let val = vars.get(name).filter(|v| !v.is_empty());
            match op {
                None => out.push_str(vars.get(name).map(String::as_str).unwrap_or("")),
                Some(o) if o.starts_with(":-") => {
                    out.push_str(val.map(String::as_str).unwrap_or(&o[2..]))
                }
                Some(o) if o.starts_with(":+") => {
                    if val.is_some() {
                        out.push_str(&o[2..])
                    }
                }
                Some(o) => return Err(format!("unsupported substitution ${{{name}{o}}}")),
            }
            i += 3 + end;
        } else {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_') {
                j += 1;
            }
            if j == start {
                out.push('$');
                i += 1;
                continue;
            }
            let name: String = b[start..j].iter().collect();
            out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
            i = j;
        }
    }
    Ok(out)
}

/// A JSON array of strings (exec form), or None for the shell form.
fn json_form(args: &str) -> Option<Vec<String>> {
    if !args.trim_start().starts_with('[') {
        return None;
    }
    serde_json::from_str(args).ok()
}

/// `k=v k2="v 2"` pairs (ENV, LABEL), or the legacy `ENV k v`.
fn pairs(args: &str, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let words = shell_words(args)?;
    if legacy && !words.is_empty() && !words[0].contains('=') {
        let (k, v) = args
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{args:?}: want KEY VALUE or KEY=VALUE"))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("{w:?}: want KEY=VALUE"))
        })
        .collect()
}

/// Split on whitespace, honouring double and single quotes and backslashes.
fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut q: Option<char> = None;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match (q, c) {
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, '"') | (None, '\'') => {
                q = Some(c);
                any = true;
            }
            (Some(x), c) if c == x => q = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = it.next() {
                    cur.push(n);
                }
                any = true;
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if q.is_some() {
        return Err(format!("unterminated quote in {s:?}"));
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// .dockerignore patterns: `*`, `?`, `**`, leading `!` to re-include.
struct Ignore(Vec<(bool, Vec<String>)>);

impl Ignore {
    fn load(ctx: &Path) -> Ignore {
        let text = fs::read_to_string(ctx.join(".dockerignore")).unwrap_or_default();
        let mut v = Vec::new();
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (neg, p) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let comps: Vec<String> = p
                .trim_start_matches("./")
                .trim_matches('/')
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(String::from)
                .collect();
            if !comps.is_empty() {
                v.push((neg, comps));
            }
        }
        Ignore(v)
    }

    fn ignored(&self, rel: &Path) -> bool {
        let comps: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let mut out = false;
        for (neg, pat) in &self.0 {
            // A pattern matches the path or any of its parent dirs.
            if (1..=comps.len()).any(|n| match_comps(pat, &comps[..n])) {
                out = !neg;
            }
        }
        out
    }
}

fn match_comps(pat: &[String], path: &[String]) -> bool {
    match (pat.first(), path.first()) {
        (None, None) => true,
        (Some(p), _) if p == "**" => (0..=path.len()).any(|k| match_comps(&pat[1..], &path[k..])),
        (Some(p), Some(c)) => {
            glob(p.as_bytes(), c.as_bytes()) && match_comps(&pat[1..], &path[1..])
        }
        _ => false,
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Files of the context under `src` (relative to the context), not ignored, sorted.
fn context_files(ctx: &Path, src: &Path, ign: &Ignore) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    fn walk(ctx: &Path, rel: &Path, ign: &Ignore, out: &mut Vec<PathBuf>) -> Result<(), String> {
        if !rel.as_os_str().is_empty() && ign.ignored(rel) {
            return Ok(());
        }
        let full = ctx.join(rel);
        let md = fs::symlink_metadata(&full).map_err(|e| format!("{}: {e}", full.display()))?;
        out.push(rel.to_path_buf());
        if md.is_dir() {
            let mut names: Vec<_> = fs::read_dir(&full)
                .map_err(|e| format!("{}: {e}", full.display()))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            for n in names {
                walk(ctx, &rel.join(n), ign, out)?;
            }
        }
        Ok(())
    }
    walk(ctx, src, ign, &mut out)?;
    Ok(out)
}

/// A source path of COPY/ADD, relative to the context and never leaving it.
fn context_path(src: &str) -> Result<PathBuf, String> {
    let mut p = PathBuf::new();
    for c in Path::new(src).components() {
        match c {
            std::path::Component::Normal(n) => p.push(n),
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            _ => return Err(format!("{src:?} leaves the build context")),
        }
    }
    Ok(p)
}

// ---- writing inside a mounted root, symlinks resolved inside it ----

fn openat2_in_root(root: RawFd, rel: &str) -> std::io::Result<OwnedFd> {
    let c = CString::new(if rel.is_empty() { "." } else { rel })
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all-zero is a valid open_how.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid C string and open_how of its size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Open (making missing dirs, owned `owner`, 0755) the directory `rel` inside `root`.
fn mkdir_in_root(root: RawFd, rel: &str, owner: Option<(u32, u32)>) -> std::io::Result<OwnedFd> {
    let comps: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut cur = openat2_in_root(root, "")?;
    for i in 0..comps.len() {
        let prefix = comps[..=i].join("/");
        cur = match openat2_in_root(root, &prefix) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let name = CString::new(comps[i])
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
                // SAFETY: valid C string, dir fd we own.
                if unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let fd = openat2_in_root(root, &prefix)?;
                if let Some((u, g)) = owner {
                    // SAFETY: plain syscall on an owned fd.
                    unsafe { libc::fchown(fd.as_raw_fd(), u, g) };
                }
                fd
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Copy `src` (file, symlink or dir: its content) to `dst` inside `root`.
fn copy_in(root: RawFd, src: &Path, dst: &str, owner: Option<(u32, u32)>) -> Result<(), String> {
    let md = fs::symlink_metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let err = |what: &str, e: std::io::Error| format!("{what} {dst}: {e}");
    let (uid, gid) = owner.unwrap_or((md.uid(), md.gid()));
    if md.is_dir() {
        let fd = mkdir_in_root(root, dst, owner).map_err(|e| err("mkdir", e))?;
        let _ = fd;
        let mut names: Vec<_> = fs::read_dir(src)
            .map_err(|e| format!("{}: {e}", src.display()))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let d = format!("{}/{}", dst.trim_end_matches('/'), n.to_string_lossy());
            copy_in(root, &src.join(&n), &d, owner)?;
        }
        return Ok(());
    }
    let (parent, name) = match dst.trim_end_matches('/').rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", dst),
    };
    let pfd = mkdir_in_root(root, parent, owner).map_err(|e| err("mkdir", e))?;
    let cn = CString::new(name).map_err(|_| format!("bad name {name:?}"))?;
    // Replace what is there (but a directory).
    // SAFETY: valid C string, dir fd we own.
    unsafe { libc::unlinkat(pfd.as_raw_fd(), cn.as_ptr(), 0) };
    if md.file_type().is_symlink() {
        let t = fs::read_link(src).map_err(|e| format!("{}: {e}", src.display()))?;
        let ct = CString::new(t.as_os_str().as_bytes()).map_err(|_| "bad link".to_string())?;
        // SAFETY: valid C strings, dir fd we own.
        if unsafe { libc::symlinkat(ct.as_ptr(), pfd.as_raw_fd(), cn.as_ptr()) } != 0 {
            return Err(err("symlink", std::io::Error::last_os_error()));
        }
        // SAFETY: as above.
        unsafe {
            libc::fchownat(
                pfd.as_raw_fd(),
                cn.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        return Ok(());
    }
    if !md.is_file() {
        return Err(format!(
            "{}: not a regular file, dir or symlink",
            src.display()
        ));
    }
    // SAFETY: valid C string, dir fd we own; O_NOFOLLOW|O_EXCL: never through a link.
    let fd = unsafe {
        libc::openat(
            pfd.as_raw_fd(),
            cn.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(err("create", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh fd.
    let mut out = unsafe { fs::File::from_raw_fd(fd) };
    let mut inp = fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    std::io::copy(&mut inp, &mut out).map_err(|e| err("write", e))?;
    // SAFETY: plain syscalls on an owned fd.
    unsafe {
        libc::fchown(out.as_raw_fd(), uid, gid);
        libc::fchmod(out.as_raw_fd(), md.mode() & 0o7777);
    }
    Ok(())
}

/// The build's state: the image so far.
struct Stage {
    config: ImageConfiguration,
    layers: Vec<Layer>,
    key: String,
}

fn empty_config() -> ImageConfiguration {
    let mut c = runtime::image::rootfs_config("");
    c.set_history(Some(Vec::new()));
    c.set_created(None);
    c
}

/// A mounted overlay of the stage's layers plus a fresh upper dir, under the store's temp.
struct StepRoot {
    tmp: PathBuf,
    mount: Option<unionfs::OverlayMount>,
}

impl StepRoot {
    fn new(store: &ImageStore, layers: &[Layer]) -> Result<StepRoot, String> {
        let tmp = store.temp_dir("build").map_err(|e| e.to_string())?;
        let mut lowers = store
            .layer_dirs(&layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>())
            .map_err(|e| e.to_string())?;
        if lowers.is_empty() {
            let e = tmp.join("empty");
            fs::create_dir(&e).map_err(|e| e.to_string())?;
            lowers.push(e);
        }
        let merged = tmp.join("merged");
        fs::create_dir(&merged).map_err(|e| e.to_string())?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let m = unionfs::Overlay::new(lowers, tmp.join("upper"), tmp.join("work"))
            .mount(&merged)
            .map_err(|e| e.to_string());
        let mut sr = StepRoot { tmp, mount: None };
        sr.mount = Some(m?);
        Ok(sr)
    }
    fn merged(&self) -> PathBuf {
        self.tmp.join("merged")
    }
    fn upper(&self) -> PathBuf {
        self.tmp.join("upper")
    }
    fn unmount(&mut self) -> Result<(), String> {
        match self.mount.take() {
            Some(m) => m.unmount().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

impl Drop for StepRoot {
    fn drop(&mut self) {
        let _ = self.unmount();
        let _ = fs::remove_dir_all(&self.tmp);
    }
}

fn step_key(prev: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    for p in parts {
        h.update(b"\n");
        h.update(p.as_bytes());
    }
    format!("sha256:{}", hex(&h.finalize()))
}

fn to_digest(s: &str) -> R<unionfs::Digest> {
    unionfs::Digest::parse(s).map_err(|e| msg(e.to_string()))
}

pub fn build(cli: &Cli, store: &ImageStore, a: &BuildArgs) -> R {
    let target = Reference::parse(&a.tag)?;
    let ctx = a
        .context
        .canonicalize()
        .map_err(|e| msg(format!("build context {}: {e}", a.context.display())))?;
    let file = a.file.clone().unwrap_or_else(|| ctx.join("Dockerfile"));
    let fname = file.display().to_string();
    let text = fs::read_to_string(&file).map_err(|e| msg(format!("{fname}: {e}")))?;
    let instrs = parse(&text).map_err(|e| msg(format!("{fname}: {e}")))?;
    if instrs.is_empty() {
        return Err(msg(format!("{fname}: no instructions")));
    }
    let mut build_args: HashMap<String, String> = HashMap::new();
    for kv in &a.build_arg {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| msg(format!("--build-arg {kv:?}: want KEY=VALUE")))?;
        build_args.insert(k.to_string(), v.to_string());
    }
    let _lock = store.lock_shared()?;
    let ign = Ignore::load(&ctx);
    let total = instrs.len();
    let mut stage: Option<Stage> = None;
    // ARGs declared: before FROM (global), then per stage.
    let mut args: HashMap<String, String> = HashMap::new();
    let mut last_created = String::new();
    for (n, ins) in instrs.iter().enumerate() {
        let at = |e: String| msg(format!("{fname}:{}: {}: {e}", ins.line, ins.keyword));
        println!("Step {}/{} : {}", n + 1, total, ins.text);
        let started = Instant::now();
        // Variables for substitution: the stage's ENV over the ARGs.
        let mut vars = args.clone();
        if let Some(st) = &stage {
            for e in st
                .config
                .config()
                .as_ref()
                .and_then(|c| c.env().clone())
                .unwrap_or_default()
            {
                if let Some((k, v)) = e.split_once('=') {
                    vars.insert(k.to_string(), v.to_string());
                }
            }
        }
        let kw = ins.keyword.as_str();
        if kw == "ARG" {
            let (k, v) = match ins.args.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
                None => (ins.args.trim().to_string(), None),
            };
            if k.is_empty() {
                return Err(at("want NAME[=DEFAULT]".into()));
            }
            let val = build_args
                .get(&k)
                .cloned()
                .or(v.map(|v| substitute(&v, &vars)).transpose().map_err(at)?)
                .unwrap_or_default();
            args.insert(k.clone(), val.clone());
            if let Some(st) = &mut stage {
                st.key = step_key(&st.key, &["ARG", &k, &val]);
            }
            continue;
        }
        if kw == "FROM" {
            let s = substitute(&ins.args, &vars).map_err(at)?;
            let words: Vec<&str> = s.split_whitespace().collect();
            let base = match words.as_slice() {
                [b] | [b, _, _] => *b,
                _ => return Err(at("want FROM IMAGE [AS NAME]".into())),
            };
            stage = Some(if base == "scratch" {
                Stage {
                    config: empty_config(),
                    layers: Vec::new(),
                    key: step_key("", &["FROM scratch"]),
                }
            } else {
                let img = store.resolve(base).map_err(|e| at(e.to_string()))?;
                println!(" ---> {}", img.short_id());
                Stage {
                    layers: img.layers()?,
                    key: step_key("", &["FROM", img.id.as_str()]),
                    config: img.config,
                }
            });
            continue;
        }
        let st = stage
            .as_mut()
            .ok_or_else(|| at("the first instruction must be FROM (or ARG)".into()))?;
        let mut cfg = st.config.config().clone().unwrap_or_default();
        let mut layer_step = false;
        let mut content = String::new();
        let mut run_env: Vec<String> = Vec::new();
        let shell_cmd = labels_shell(&cfg).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let canonical: String;
        match kw {
            "RUN" => {
                layer_step = true;
                let argv = match json_form(&ins.args) {
                    Some(v) => v,
                    None => {
                        let mut v = shell_cmd.clone();
                        v.push(ins.args.clone());
                        v
                    }
                };
                if argv.is_empty() {
                    return Err(at("empty command".into()));
                }
                // Build args are in RUN's environment (not kept in the image).
                let mut env = cfg.env().clone().unwrap_or_default();
                let mut sorted: Vec<(&String, &String)> = args.iter().collect();
                sorted.sort();
                for (k, v) in sorted {
                    if !env.iter().any(|e| e.split('=').next() == Some(k)) {
                        env.push(format!("{k}={v}"));
                    }
                }
                run_env = env;
                canonical = format!(
                    "RUN {}\nenv={:?}\nuser={:?}\nworkdir={:?}",
                    serde_json::to_string(&argv).unwrap_or_default(),
                    run_env,
                    cfg.user(),
                    cfg.working_dir()
                );
                content = serde_json::to_string(&argv).unwrap_or_default();
            }
            "COPY" | "ADD" => {
                layer_step = true;
                let s = substitute(&ins.args, &vars).map_err(at)?;
                let words = match json_form(&s) {
                    Some(v) => v,
                    None => shell_words(&s).map_err(at)?,
                };
                let mut chown = None;
                let mut rest = Vec::new();
                for w in words {
                    if let Some(c) = w.strip_prefix("--chown=") {
                        chown = Some(c.to_string());
                    } else if w.starts_with("--from=") {
                        return Err(at("--from (multi-stage copies) is not supported".into()));
                    } else if w.starts_with("--") {
                        return Err(at(format!("unknown flag {w}")));
                    } else {
                        rest.push(w);
                    }
                }
                if rest.len() < 2 {
                    return Err(at("want SRC... DEST".into()));
                }
                let mut h = Sha256::new();
                for src in &rest[..rest.len() - 1] {
                    if kw == "ADD" && (src.starts_with("http://") || src.starts_with("https://")) {
                        return Err(at(format!("{src}: ADD from a URL is not supported")));
                    }
                    let rel = context_path(src).map_err(at)?;
                    if !ctx.join(&rel).exists() && !rel.as_os_str().is_empty() {
                        return Err(at(format!("{src}: no such file or directory in the build context")));
                    }
                    for f in context_files(&ctx, &rel, &ign).map_err(at)? {
                        let full = ctx.join(&f);
                        let md = fs::symlink_metadata(&full).map_err(|e| at(e.to_string()))?;
                        h.update(f.as_os_str().as_bytes());
                        h.update(format!(" {:o} {} ", md.mode(), md.len()).as_bytes());
                        if md.is_file() {
                            let mut fh = fs::File::open(&full).map_err(|e| at(e.to_string()))?;
                            let mut buf = vec![0u8; 65536];
                            loop {
                                let k = fh.read(&mut buf).map_err(|e| at(e.to_string()))?;
                                if k == 0 {
                                    break;
                                }
                                h.update(&buf[..k]);
                            }
                        } else if md.file_type().is_symlink() {
                            h.update(fs::read_link(&full).unwrap_or_default().as_os_str().as_bytes());
                        }
                    }
                }
                content = hex(&h.finalize());
                canonical = format!(
                    "{kw} {}\nchown={chown:?}\nworkdir={:?}\ncontent={content}",
                    serde_json::to_string(&rest).unwrap_or_default(),
                    cfg.working_dir()
                );
            }
            "ENV" => {
                let s = substitute(&ins.args, &vars).map_err(at)?;
                let mut env = cfg.env().clone().unwrap_or_default();
                for (k, v) in pairs(&s, true).map_err(at)? {
                    env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                cfg.set_env(Some(env));
                canonical = format!("ENV {s}");
            }
            "LABEL" => {
                let s = substitute(&ins.args, &vars).map_err(at)?;
                let mut l = cfg.labels().clone().unwrap_or_default();
                for (k, v) in pairs(&s, false).map_err(at)? {
                    l.insert(k, v);
                }
                cfg.set_labels(Some(l));
                canonical = format!("LABEL {s}");
            }
            "WORKDIR" => {
                let s = substitute(&ins.args, &vars).map_err(at)?;
                let w = if s.starts_with('/') {
                    s.clone()
                } else {
                    format!(
                        "{}/{}",
                        cfg.working_dir().clone().unwrap_or_else(|| "/".into()).trim_end_matches('/'),
                        s
                    )
                };
                if w.split('/').any(|c| c == "..") {
                    return Err(at(format!("{w:?}: \"..\" is not allowed")));
                }
                cfg.set_working_dir(Some(w.clone()));
                canonical = format!("WORKDIR {w}");
            }
            "USER" => {
                let s = substitute(&ins.args, &vars).map_err(at)?;
                cfg.set_user(Some(s.trim().to_string()));
                canonical = format!("USER {s}");
            }
            "CMD" | "ENTRYPOINT" => {
                let v = match json_form(&ins.args) {
                    Some(v) => v,
                    None => {
                        let mut v = shell_cmd.clone();
                        v.push(ins.args.clone());
                        v
                    }
                };
                if kw == "CMD" {
                    cfg.set_cmd(Some(v));
                } else {
                    cfg.set_entrypoint(Some(v));
                    cfg.set_cmd(None);
                }
                canonical = ins.text.clone();
            }
            "EXPOSE" => {
                let s = substitute(&ins.args, &vars).map_err(at)?;
                let mut p = cfg.exposed_ports().clone().unwrap_or_default();
                for w in s.split_whitespace() {
                    let w = if w.contains('/') { w.to_string() } else { format!("{w}/tcp") };
                    if !p.contains(&w) {
                        p.push(w);
                    }
                }
                p.sort();
                cfg.set_exposed_ports(Some(p));
                canonical = format!("EXPOSE {s}");
            }
            "SHELL" => {
                let v = json_form(&ins.args)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| at("want a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]".into()))?;
                let mut l = cfg.labels().clone().unwrap_or_default();
                // Kept in a label: the OCI config has no Shell field.
                l.insert(SHELL_LABEL.into(), serde_json::to_string(&v).unwrap_or_default());
                cfg.set_labels(Some(l));
                canonical = format!("SHELL {}", serde_json::to_string(&v).unwrap_or_default());
            }
            other => {
                return Err(at(format!(
                    "unknown or unsupported instruction {other:?} (known: FROM RUN COPY ADD ENV WORKDIR USER CMD ENTRYPOINT LABEL ARG EXPOSE SHELL)"
                )))
            }
        }
        let key = step_key(&st.key, &[&canonical]);
        let kd = to_digest(&key)?;
        let cached = if a.no_cache {
            None
        } else {
            store.cache_get(&kd)
        };
        let entry = match cached {
            Some(e) => {
                println!(" ---> Using cache");
                e
            }
            None => {
                let layer = if layer_step {
                    let made = if kw == "RUN" {
                        let argv: Vec<String> = serde_json::from_str(&content).unwrap_or_default();
                        run_step(store, cli, st, &cfg, argv, run_env.clone())
                    } else {
                        copy_step(store, &ctx, &ign, kw, &ins.args, &vars, st, &cfg)
                    }
                    .map_err(at)?;
                    Some((
                        made.diff_id.to_string(),
                        made.descriptor.digest().to_string(),
                        made.descriptor.size(),
                        made.descriptor.media_type().to_string(),
                    ))
                } else {
                    None
                };
                let e = CacheEntry {
                    layer,
                    created: runtime::image::now_rfc3339(),
                };
                store.cache_put(&kd, &e)?;
                e
            }
        };
        if let Some((diff, digest, size, media)) = &entry.layer {
            let d = oci_spec::image::Digest::try_from(digest.as_str())
                .map_err(|e| msg(e.to_string()))?;
            st.layers.push(Layer {
                diff_id: to_digest(diff)?,
                descriptor: oci_spec::image::Descriptor::new(
                    oci_spec::image::MediaType::from(media.as_str()),
                    *size,
                    d,
                ),
            });
            println!(
                " ---> {} ({:.2}s)",
                &diff["sha256:".len()..][..12],
                started.elapsed().as_secs_f64()
            );
        } else {
            println!(" ---> done ({:.2}s)", started.elapsed().as_secs_f64());
        }
        let mut hist = st.config.history().clone().unwrap_or_default();
        let mut h = History::default();
        h.set_created(Some(entry.created.clone()));
        h.set_created_by(Some(ins.text.clone()));
        if entry.layer.is_none() {
            h.set_empty_layer(Some(true));
        }
        hist.push(h);
        st.config.set_history(Some(hist));
        st.config.set_config(Some(cfg));
        st.key = key;
        last_created = entry.created;
    }
    let st = stage.ok_or_else(|| msg(format!("{fname}: no FROM")))?;
    let mut config = st.config;
    if !last_created.is_empty() {
        config.set_created(Some(last_created));
    }
    let img = store.write_image(config, &st.layers)?;
    store.tag(&img, &target)?;
    println!("Successfully built {}", img.short_id());
    println!("Successfully tagged {target}");
    Ok(0)
}

const SHELL_LABEL: &str = "org.corral.build.shell";

fn labels_shell(cfg: &oci_spec::image::Config) -> Option<Vec<String>> {
    let l = cfg.labels().as_ref()?.get(SHELL_LABEL)?;
    serde_json::from_str(l).ok()
}

/// Mount destinations a RUN container may create in its root when the image lacks them;
/// such placeholders are not part of the step's layer.
const PLACEHOLDERS: &[&str] = &["proc", "dev", "sys", "etc/resolv.conf", "etc/hosts"];

fn run_step(
    store: &ImageStore,
    cli: &Cli,
    st: &Stage,
    cfg: &oci_spec::image::Config,
    argv: Vec<String>,
    env: Vec<String>,
) -> Result<Layer, String> {
    let mut sr = StepRoot::new(store, &st.layers)?;
    let merged = sr.merged();
    let missing: Vec<&str> = PLACEHOLDERS
        .iter()
        .copied()
        .filter(|p| fs::symlink_metadata(merged.join(p)).is_err())
        .collect();
    let workdir = cfg.working_dir().clone().unwrap_or_else(|| "/".into());
    {
        let root = fs::File::open(&merged).map_err(|e| e.to_string())?;
        mkdir_in_root(root.as_raw_fd(), &workdir, None)
            .map_err(|e| format!("WORKDIR {workdir}: {e}"))?;
    }
    let layer_dirs = store
        .layer_dirs(
            &st.layers
                .iter()
                .map(|l| l.diff_id.clone())
                .collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())?;
    let id = format!(
        "corral-build-{}",
        &hex(&Sha256::digest(
            format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes()
        ))[..12]
    );
    let mut image_cfg = st.config.clone();
    let mut c2 = cfg.clone();
    c2.set_env(Some(env));
    image_cfg.set_config(Some(c2));
    let rc = RunConfig {
        command: argv.clone(),
        entrypoint: Some(Vec::new()),
        host_network: true,
        hostname: Some("corral-build".into()),
        ..RunConfig::default()
    };
    let mut spec = spec_for_image(&id, &image_cfg, &layer_dirs, &rc).map_err(|e| e.to_string())?;
    spec["root"]["path"] = serde_json::json!(merged);
    let bundle = sr.tmp.join("bundle");
    fs::create_dir(&bundle).map_err(|e| e.to_string())?;
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let root = cli
        .root
        .clone()
        .unwrap_or_else(runtime::state::default_root);
    println!(" ---> Running in {id}");
    let opts = runtime::Options {
        root,
        ..runtime::Options::default()
    };
    let status = {
        let mut ct =
            runtime::Container::create_and_start(&id, &bundle, &opts).map_err(|e| e.to_string())?;
        let s = ct.wait().map_err(|e| e.to_string());
        ct.delete().map_err(|e| e.to_string())?;
        s?
    };
    sr.unmount()?;
    if status.code() != 0 {
        return Err(format!(
            "the command {} returned a non-zero code: {}",
            serde_json::to_string(&argv).unwrap_or_default(),
            status.code()
        ));
    }
    let upper = sr.upper();
    for p in missing {
        let u = upper.join(p);
        if let Ok(md) = fs::symlink_metadata(&u) {
            if md.is_dir() {
                let _ = fs::remove_dir(&u); // only when empty
            } else if md.is_file() && md.len() == 0 {
                let _ = fs::remove_file(&u);
            }
        }
    }
    store
        .add_layer_from_upper(&upper)
        .map_err(|e| e.to_string())
}

#[allow(clippy::too_many_arguments)]
fn copy_step(
    store: &ImageStore,
    ctx: &Path,
    ign: &Ignore,
    kw: &str,
    args: &str,
    vars: &HashMap<String, String>,
    st: &Stage,
    cfg: &oci_spec::image::Config,
) -> Result<Layer, String> {
    let s = substitute(args, vars)?;
    let words = match json_form(&s) {
        Some(v) => v,
        None => shell_words(&s)?,
    };
    let mut chown = None;
    let mut rest = Vec::new();
    for w in words {
        match w.strip_prefix("--chown=") {
            Some(c) => chown = Some(c.to_string()),
            None => rest.push(w),
        }
    }
    let dest_raw = rest.pop().ok_or("want SRC... DEST")?;
    let workdir = cfg.working_dir().clone().unwrap_or_else(|| "/".into());
    let dest = if dest_raw.starts_with('/') {
        dest_raw.clone()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), dest_raw)
    };
    let dest_is_dir = dest_raw.ends_with('/') || dest_raw == "." || rest.len() > 1;
    let layer_dirs = store
        .layer_dirs(
            &st.layers
                .iter()
                .map(|l| l.diff_id.clone())
                .collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())?;
    let owner = match &chown {
        Some(c) => {
            Some(runtime::image_spec::resolve_user(&layer_dirs, c).map_err(|e| e.to_string())?)
        }
        None => Some((0, 0)),
    };
    let mut sr = StepRoot::new(store, &st.layers)?;
    let rootf = fs::File::open(sr.merged()).map_err(|e| e.to_string())?;
    let rfd = rootf.as_raw_fd();
    for src in &rest {
        let rel = context_path(src)?;
        let full = ctx.join(&rel);
        let md = fs::symlink_metadata(&full).map_err(|e| format!("{src}: {e}"))?;
        if kw == "ADD" && md.is_file() && is_archive(&full) {
            // A local tar (plain, gzip or zstd) is unpacked into DEST.
            let tmp = store.temp_dir("add").map_err(|e| e.to_string())?;
            let res = (|| {
                let f = fs::File::open(&full).map_err(|e| e.to_string())?;
                unionfs::unpack_layer_with(
                    std::io::BufReader::new(f),
                    &tmp,
                    unionfs::UnpackOptions {
                        devices: false,
                        ..Default::default()
                    },
                )
                .map_err(|e| format!("{src}: {e}"))?;
                copy_in(rfd, &tmp, &dest, chown.as_ref().and(owner))
            })();
            let _ = fs::remove_dir_all(&tmp);
            res?;
            continue;
        }
        if md.is_dir() {
            // The directory's content (filtered by .dockerignore) goes into DEST.
            mkdir_in_root(rfd, &dest, owner).map_err(|e| format!("mkdir {dest}: {e}"))?;
            for f in context_files(ctx, &rel, ign)? {
                if f == rel {
                    continue;
                }
                let sub = f.strip_prefix(&rel).map_err(|e| e.to_string())?;
                let d = format!("{}/{}", dest.trim_end_matches('/'), sub.display());
                let fmd = fs::symlink_metadata(ctx.join(&f)).map_err(|e| e.to_string())?;
                if fmd.is_dir() {
                    mkdir_in_root(rfd, &d, owner).map_err(|e| format!("mkdir {d}: {e}"))?;
                } else {
                    copy_in(rfd, &ctx.join(&f), &d, owner)?;
                }
            }
        } else {
            let d = if dest_is_dir {
                format!(
                    "{}/{}",
                    dest.trim_end_matches('/'),
                    rel.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                )
            } else {
                dest.clone()
            };
            copy_in(rfd, &full, &d, owner)?;
        }
    }
    drop(rootf);
    sr.unmount()?;
    store
        .add_layer_from_upper(&sr.upper())
        .map_err(|e| e.to_string())
}

fn is_archive(p: &Path) -> bool {
    let Ok(f) = fs::File::open(p) else {
        return false;
    };
    let Ok((_, r)) = unionfs::decompress(std::io::BufReader::new(f)) else {
        return false;
    };
    let mut ar = tar::Archive::new(r);
    ar.entries()
        .ok()
        .and_then(|mut e| e.next())
        .map(|e| e.is_ok())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let d = "# c\nFROM busybox\n\nRUN echo a \\\n  && echo b\nENV A=1 B=\"x y\"\n";
        let p = parse(d).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].line, 4);
        assert_eq!(p[1].args, "echo a && echo b");
        assert_eq!(
            pairs(&p[2].args, true).unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "x y".into())]
        );
        assert!(parse("RUN a \\").is_err());
    }

    #[test]
    fn substitution() {
        let mut v = HashMap::new();
        v.insert("A".to_string(), "x".to_string());
        assert_eq!(
            substitute("$A-${A}-${B:-d}-${A:+y}-\\$A", &v).unwrap(),
            "x-x-d-y-$A"
        );
    }

    #[test]
    fn dockerignore() {
        let ig = Ignore(vec![
            (false, vec!["*.log".into()]),
            (false, vec!["**".into(), "tmp".into()]),
            (true, vec!["keep.log".into()]),
        ]);
        assert!(ig.ignored(Path::new("a.log")));
        assert!(!ig.ignored(Path::new("keep.log")));
        assert!(ig.ignored(Path::new("x/y/tmp/z")));
        assert!(!ig.ignored(Path::new("src/main.rs")));
    }
}
