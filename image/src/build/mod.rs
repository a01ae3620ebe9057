//! `corral image build`: a Dockerfile subset built into layers, with a cache.
//!
//! Each RUN, COPY and ADD step runs on an overlay of the layers so far plus a new upper
//! dir (mounted under the store's temp dir); that upper dir becomes the step's layer.
//! RUN runs in a container with a network namespace of its own (loopback only); the host's
//! network only with `--network host` (as `docker build --network host`).
//! Every step is cached under a key chained from the base image, the instruction (after
//! substitution), the environment a RUN sees and the content a COPY or ADD brings, so an
//! unchanged rebuild makes no new layer and the same image.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
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
    /// The network of RUN steps: `none` (the default: a network namespace of their own,
    /// loopback only) or `host` (the host's network, as `docker build --network host`)
    #[arg(long = "network", default_value = "none", value_parser = ["none", "host"])]
    pub network: String,
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
    fn parse(text: &str) -> Ignore {
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
            if match_prefixes(pat, &comps) {
                out = !neg;
            }
        }
        out
    }
}

/// Does `pat` (components, `**` for any number of them) match `path[..n]` for some
/// n >= 1? Dynamic programming over (pattern, path) positions: time O(|pat| * |path|)
/// glob calls, no recursion, whatever the pattern.
fn match_prefixes(pat: &[String], path: &[String]) -> bool {
    let (p, n) = (pat.len(), path.len());
    // m[i][j]: pat[..i] matches path[..j].
    let mut m = vec![vec![false; n + 1]; p + 1];
    m[0][0] = true;
    for i in 1..=p {
        let star2 = pat[i - 1] == "**";
        for j in 0..=n {
            m[i][j] = if star2 {
                m[i - 1][j] || (j > 0 && m[i][j - 1])
            } else {
                j > 0 && m[i - 1][j - 1] && glob(pat[i - 1].as_bytes(), path[j - 1].as_bytes())
            };
        }
    }
    (1..=n).any(|j| m[p][j])
}

/// `*` (any run) and `?` (one byte) against one path component: the greedy matcher with a
/// single backtrack point (the last `*`), O(|p| * |s|) at worst and no recursion.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) && p[pi] != b'*' {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
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
    runtime::in_root::openat2(
        root,
        Path::new(rel),
        libc::O_RDONLY | libc::O_DIRECTORY,
        runtime::in_root::IN_ROOT,
    )
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

/// The parent of `dst` inside `root` (made as needed) and the entry's name, with what was
/// there removed (but a directory).
fn dest_slot(
    root: RawFd,
    dst: &str,
    owner: Option<(u32, u32)>,
) -> Result<(OwnedFd, CString), String> {
    let (parent, name) = match dst.trim_end_matches('/').rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", dst),
    };
    let pfd = mkdir_in_root(root, parent, owner).map_err(|e| format!("mkdir {dst}: {e}"))?;
    let cn = CString::new(name).map_err(|_| format!("bad name {name:?}"))?;
    // SAFETY: valid C string, dir fd we own.
    unsafe { libc::unlinkat(pfd.as_raw_fd(), cn.as_ptr(), 0) };
    Ok((pfd, cn))
}

/// Write the symlink `dst` -> `target` inside `root`.
fn write_symlink(root: RawFd, dst: &str, target: &[u8], owner: (u32, u32)) -> Result<(), String> {
    let (pfd, cn) = dest_slot(root, dst, None)?;
    let ct = CString::new(target).map_err(|_| format!("{dst}: bad link"))?;
    // SAFETY: valid C strings, dir fd we own.
    if unsafe { libc::symlinkat(ct.as_ptr(), pfd.as_raw_fd(), cn.as_ptr()) } != 0 {
        return Err(format!(
            "symlink {dst}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: as above.
    unsafe {
        libc::fchownat(
            pfd.as_raw_fd(),
            cn.as_ptr(),
            owner.0,
            owner.1,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    Ok(())
}

/// Write the regular file `dst` inside `root` from `src`; with `h`, every byte written is
/// hashed as it is written (the source is read once).
fn write_file(
    root: RawFd,
    dst: &str,
    src: &mut impl Read,
    mode: u32,
    owner: (u32, u32),
    mut h: Option<&mut Sha256>,
) -> Result<(), String> {
    let (pfd, cn) = dest_slot(root, dst, None)?;
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
        return Err(format!("create {dst}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh fd.
    let mut out = unsafe { fs::File::from_raw_fd(fd) };
    let mut buf = vec![0u8; 65536];
    loop {
        let k = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read for {dst}: {e}")),
        };
        if let Some(h) = h.as_deref_mut() {
            h.update(&buf[..k]);
        }
        out.write_all(&buf[..k])
            .map_err(|e| format!("write {dst}: {e}"))?;
    }
    // SAFETY: plain syscalls on an owned fd.
    unsafe {
        libc::fchown(out.as_raw_fd(), owner.0, owner.1);
        libc::fchmod(out.as_raw_fd(), mode & 0o7777);
    }
    Ok(())
}

/// Copy `src` (a path of our own: an unpacked ADD archive) to `dst` inside `root`.
fn copy_in(root: RawFd, src: &Path, dst: &str, owner: Option<(u32, u32)>) -> Result<(), String> {
    let md = fs::symlink_metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let own = owner.unwrap_or((md.uid(), md.gid()));
    if md.is_dir() {
        mkdir_in_root(root, dst, owner).map_err(|e| format!("mkdir {dst}: {e}"))?;
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
    if md.file_type().is_symlink() {
        let t = fs::read_link(src).map_err(|e| format!("{}: {e}", src.display()))?;
        return write_symlink(root, dst, t.as_os_str().as_bytes(), own);
    }
    if !md.is_file() {
        return Err(format!(
            "{}: not a regular file, dir or symlink",
            src.display()
        ));
    }
    let mut inp = fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    write_file(root, dst, &mut inp, md.mode(), own, None)
}

/// Copies from the build context into a step's root, every source opened beneath the
/// context (never through a symlink leading out), `.dockerignore`d entries left out, and
/// hashes exactly what it writes: each entry's path, kind and mode, and the bytes of each
/// file as they are copied (one read), so the cache key is the key of the content copied.
struct Copier<'a> {
    root: RawFd,
    owner: Option<(u32, u32)>,
    ign: &'a Ignore,
    h: Sha256,
}

impl Copier<'_> {
    fn note(&mut self, rel: &Path, what: String) {
        self.h.update(rel.as_os_str().as_bytes());
        self.h.update(b"\0");
        self.h.update(what.as_bytes());
        self.h.update(b"\0");
    }

    fn own(&self, md: &fs::Metadata) -> (u32, u32) {
        self.owner.unwrap_or((md.uid(), md.gid()))
    }

    /// The entry `name` of the context directory `dir` (context path `rel`) to `dst`.
    fn entry(
        &mut self,
        dir: &fs::File,
        name: &std::ffi::OsStr,
        rel: &Path,
        dst: &str,
    ) -> Result<(), String> {
        if self.ign.ignored(rel) {
            return Ok(());
        }
        let cn = CString::new(name.as_bytes()).map_err(|_| format!("bad name {name:?}"))?;
        let err = |e: std::io::Error| format!("{}: {e}", rel.display());
        // SAFETY: all-zero is a valid stat; valid C string and a dir fd we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                cn.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        } != 0
        {
            return Err(err(std::io::Error::last_os_error()));
        }
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => {
                let t = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name)
                    .map_err(|e| err(e.into()))?;
                self.note(rel, format!("symlink {}", t.to_string_lossy()));
                let own = self.owner.unwrap_or((st.st_uid, st.st_gid));
                write_symlink(self.root, dst, t.as_bytes(), own)
            }
            libc::S_IFDIR | libc::S_IFREG => {
                let dir_flag = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    libc::O_DIRECTORY
                } else {
                    0
                };
                // SAFETY: valid C string, a dir fd we own.
                let fd = unsafe {
                    libc::openat(
                        dir.as_raw_fd(),
                        cn.as_ptr(),
                        libc::O_RDONLY
                            | libc::O_NOFOLLOW
                            | libc::O_NONBLOCK
                            | libc::O_NOCTTY
                            | libc::O_CLOEXEC
                            | dir_flag,
                    )
                };
                if fd < 0 {
                    return Err(err(std::io::Error::last_os_error()));
                }
                // SAFETY: a fresh fd.
                let f = unsafe { fs::File::from_raw_fd(fd) };
                self.node(f, rel, dst)
            }
            _ => Err(format!(
                "{}: not a regular file, directory or symlink",
                rel.display()
            )),
        }
    }

    /// An opened context file or directory (a directory: its content) to `dst`.
    fn node(&mut self, mut f: fs::File, rel: &Path, dst: &str) -> Result<(), String> {
        let md = f
            .metadata()
            .map_err(|e| format!("{}: {e}", rel.display()))?;
        if md.is_dir() {
            self.note(rel, format!("dir {:o}", md.mode() & 0o7777));
            mkdir_in_root(self.root, dst, self.owner).map_err(|e| format!("mkdir {dst}: {e}"))?;
            let mut names: Vec<_> = fs::read_dir(format!("/proc/self/fd/{}", f.as_raw_fd()))
                .map_err(|e| format!("{}: {e}", rel.display()))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            for n in names {
                let d = format!("{}/{}", dst.trim_end_matches('/'), n.to_string_lossy());
                self.entry(&f, &n, &rel.join(&n), &d)?;
            }
            return Ok(());
        }
        if !md.is_file() {
            return Err(format!(
                "{}: not a regular file, directory or symlink",
                rel.display()
            ));
        }
        self.note(rel, format!("file {:o}", md.mode() & 0o7777));
        let own = self.own(&md);
        write_file(self.root, dst, &mut f, md.mode(), own, Some(&mut self.h))
    }
}

/// Open the source `rel` of COPY/ADD in the context, as `docker build` resolves it: every
/// symlink on the way (the last one too) is followed with the context as `/`, so none
/// leads to the host. Refused when what it resolves to is excluded by `.dockerignore` (the
/// context docker sends does not hold it). Returns the opened file or directory and its
/// path in the context.
fn open_source(ctx: &Context, src: &str, rel: &Path) -> Result<(fs::File, PathBuf), String> {
    let fd = runtime::in_root::openat2(
        ctx.fd.as_raw_fd(),
        rel,
        libc::O_PATH,
        runtime::in_root::IN_ROOT,
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
            format!("{src}: no such file or directory in the build context")
        }
        _ => format!("{src}: {e}"),
    })?;
    let real = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| format!("{src}: {e}"))?;
    let real_rel = real
        .strip_prefix(&ctx.dir)
        .map(Path::to_path_buf)
        .map_err(|_| format!("{src}: resolves outside the build context"))?;
    if (!real_rel.as_os_str().is_empty() && ctx.ign.ignored(&real_rel))
        || (!rel.as_os_str().is_empty() && ctx.ign.ignored(rel))
    {
        return Err(format!(
            "{src}: excluded by .dockerignore (not in the build context)"
        ));
    }
    let md = fs::File::from(fd);
    let kind = md.metadata().map_err(|e| format!("{src}: {e}"))?;
    if !kind.is_dir() && !kind.is_file() {
        return Err(format!("{src}: not a regular file or directory"));
    }
    // Reopened for reading through the fd itself: the same file, whatever the path is now.
    let f = fs::File::open(format!("/proc/self/fd/{}", md.as_raw_fd()))
        .map_err(|e| format!("{src}: {e}"))?;
    Ok((f, real_rel))
}

/// The build context: its directory (canonical), an fd every source is opened under, and
/// its `.dockerignore`.
struct Context {
    dir: PathBuf,
    fd: fs::File,
    ign: Ignore,
}

impl Context {
    fn open(dir: &Path) -> Result<Context, String> {
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("build context {}: {e}", dir.display()))?;
        let fd =
            fs::File::open(&dir).map_err(|e| format!("build context {}: {e}", dir.display()))?;
        let mut c = Context {
            dir,
            fd,
            ign: Ignore(Vec::new()),
        };
        c.ign = match c.read(".dockerignore") {
            Ok(t) => Ignore::parse(&t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", c.dir.join(".dockerignore").display())),
        };
        Ok(c)
    }

    /// Read the regular file `rel` of the context (symlinks resolved inside it), at most
    /// 16 MiB.
    fn read(&self, rel: &str) -> std::io::Result<String> {
        let f =
            runtime::in_root::open_regular(&self.fd, Path::new(rel), runtime::in_root::IN_ROOT)?;
        let b = runtime::in_root::read_capped(f, 16 << 20, &self.dir.join(rel))?;
        String::from_utf8(b).map_err(|_| std::io::Error::other("not UTF-8 text"))
    }
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
    let ctx = Context::open(&a.context).map_err(msg)?;
    // The default Dockerfile is the context's own (a symlink in it resolves inside it, as
    // every source does); one given with -f is the user's file, read where it is.
    let (fname, text) = match &a.file {
        Some(f) => (
            f.display().to_string(),
            fs::read_to_string(f).map_err(|e| msg(format!("{}: {e}", f.display())))?,
        ),
        None => {
            let f = ctx.dir.join("Dockerfile");
            let t = ctx
                .read("Dockerfile")
                .map_err(|e| msg(format!("{}: {e}", f.display())))?;
            (f.display().to_string(), t)
        }
    };
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
        // A COPY or ADD done (to hash what it copies) before its key is looked up.
        let mut prepared: Option<StepRoot> = None;
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
                let (sr, hash) = copy_step(store, &ctx, kw, &rest, chown.as_deref(), st, &cfg)
                    .map_err(at)?;
                prepared = Some(sr);
                content = hash;
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
                        run_step(
                            store,
                            cli,
                            st,
                            &cfg,
                            argv,
                            run_env.clone(),
                            a.network == "host",
                        )
                    } else {
                        match prepared.take() {
                            Some(mut sr) => sr.unmount().and_then(|()| {
                                store
                                    .add_layer_from_upper(&sr.upper())
                                    .map_err(|e| e.to_string())
                            }),
                            None => Err("internal: no prepared step".to_string()),
                        }
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

/// The parent directory of `rel` below `root`, opened without following any symlink (a
/// parent that is one, left by a RUN step, gives `ELOOP`), and the entry's name.
fn parent_beneath(root: &fs::File, rel: &str) -> std::io::Result<(OwnedFd, CString)> {
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let pfd = runtime::in_root::openat2(
        root.as_raw_fd(),
        Path::new(parent),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )?;
    let cn = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok((pfd, cn))
}

/// `lstat` of `rel` below `root`, none of its parents followed if a symlink: `None` when it
/// is not there.
fn lstat_beneath(root: &fs::File, rel: &str) -> std::io::Result<Option<libc::stat>> {
    Ok(stat_beneath(root, rel)?.map(|(st, _, _)| st))
}

/// `rel`'s stat (a symlink's own), with its parent dir and name, resolving every component
/// inside `root` and following no symlink; `None` if it does not exist.
fn stat_beneath(
    root: &fs::File,
    rel: &str,
) -> std::io::Result<Option<(libc::stat, OwnedFd, std::ffi::CString)>> {
    let (pfd, cn) = match parent_beneath(root, rel) {
        Ok(v) => v,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    // SAFETY: all-zero is a valid stat; a valid C string and a dir fd we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe {
        libc::fstatat(
            pfd.as_raw_fd(),
            cn.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } != 0
    {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some((st, pfd, cn)))
}

/// Remove the mount placeholder `rel` (an empty dir or empty file) from a step's upper dir,
/// resolving every component inside the layer: a parent that the step replaced by a symlink
/// (to a host path, seen from here) is left alone.
fn remove_placeholder(upper: &fs::File, rel: &str) {
    let Ok(Some((st, pfd, cn))) = stat_beneath(upper, rel) else {
        return;
    };
    match st.st_mode & libc::S_IFMT {
        // Only when empty (rmdir fails otherwise).
        // SAFETY: a valid C string and a dir fd we own.
        libc::S_IFDIR => unsafe {
            libc::unlinkat(pfd.as_raw_fd(), cn.as_ptr(), libc::AT_REMOVEDIR);
        },
        // SAFETY: as above.
        libc::S_IFREG if st.st_size == 0 => unsafe {
            libc::unlinkat(pfd.as_raw_fd(), cn.as_ptr(), 0);
        },
        _ => {}
    }
}

/// A process that takes a RUN step's container down (and unmounts its root) if the build
/// dies before it is done with it (`kill -9`, a Ctrl-C to the build alone): forked before the
/// container is made, it waits for the end of a pipe only the build holds. When the build
/// is done it says so ([`Drop`]) and the guard leaves. The guard keeps the build's shared
/// hold on the store until it is done, so a `prune` waits for it.
struct Guard {
    done: Option<OwnedFd>,
    pid: libc::pid_t,
}

impl Guard {
    fn spawn(root: &Path, id: &str, merged: &Path) -> Result<Guard, String> {
        // The child runs Rust code after fork: only sound while this process has one thread
        // (no lock held by another thread is copied into the child).
        let threads = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_string()))
            })
            .unwrap_or_default();
        if threads != "1" {
            return Err(format!(
                "internal: the RUN guard needs a single-threaded build (threads: {threads:?})"
            ));
        }
        let mut fds = [0; 2];
        // SAFETY: a plain syscall filling an array of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("pipe: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: fresh fds owned here.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the build is single-threaded here (no lock another thread could hold in
        // the child); the child only reads, calls the runtime and exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            drop(w);
            // Out of the terminal's process group: a Ctrl-C that kills the build does not
            // kill its guard.
            // SAFETY: plain syscalls.
            unsafe {
                libc::setsid();
                libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
            }
            let mut b = [0u8; 1];
            let n = loop {
                // SAFETY: read into a local buffer from an fd we own.
                let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
                if n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                break n;
            };
            if n != 1 {
                // The build died: its container goes, then the root it was using.
                let _ = runtime::Container::force_delete(root, id);
                let _ = nix::mount::umount2(merged, nix::mount::MntFlags::MNT_DETACH);
            }
            // SAFETY: leave without running the build's destructors or atexit handlers.
            unsafe { libc::_exit(0) };
        }
        drop(r);
        Ok(Guard { done: Some(w), pid })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(w) = self.done.take() {
            // SAFETY: a one-byte write to an fd we own.
            unsafe { libc::write(w.as_raw_fd(), b"d".as_ptr().cast(), 1) };
        }
        let mut st = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(self.pid, &mut st, 0) };
    }
}

fn run_step(
    store: &ImageStore,
    cli: &Cli,
    st: &Stage,
    cfg: &oci_spec::image::Config,
    argv: Vec<String>,
    env: Vec<String>,
    host_network: bool,
) -> Result<Layer, String> {
    let mut sr = StepRoot::new(store, &st.layers)?;
    let merged = sr.merged();
    let missing: Vec<&str> = {
        let root = fs::File::open(&merged).map_err(|e| e.to_string())?;
        PLACEHOLDERS
            .iter()
            .copied()
            .filter(|p| matches!(lstat_beneath(&root, p), Ok(None)))
            .collect()
    };
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
        host_network,
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
    // Which container uses this step root: `image prune` takes it down if this build and
    // its guard both died.
    fs::write(
        sr.tmp.join(runtime::image::STEP_CONTAINER),
        serde_json::to_vec(&serde_json::json!({"state_root": root, "id": id}))
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let guard = Guard::spawn(&root, &id, &merged)?;
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
    drop(guard);
    sr.unmount()?;
    if status.code() != 0 {
        return Err(format!(
            "the command {} returned a non-zero code: {}",
            serde_json::to_string(&argv).unwrap_or_default(),
            status.code()
        ));
    }
    let upper = sr.upper();
    let uf = fs::File::open(&upper).map_err(|e| format!("{}: {e}", upper.display()))?;
    for p in missing {
        remove_placeholder(&uf, p);
    }
    store
        .add_layer_from_upper(&upper)
        .map_err(|e| e.to_string())
}

/// Do a COPY or ADD into a fresh step root: `rest` is SRC... DEST. Returns the mounted
/// root and the hash of what was copied (for the step's cache key).
fn copy_step(
    store: &ImageStore,
    ctx: &Context,
    kw: &str,
    rest: &[String],
    chown: Option<&str>,
    st: &Stage,
    cfg: &oci_spec::image::Config,
) -> Result<(StepRoot, String), String> {
    let (dest_raw, srcs) = rest.split_last().ok_or("want SRC... DEST")?;
    let workdir = cfg.working_dir().clone().unwrap_or_else(|| "/".into());
    let dest = if dest_raw.starts_with('/') {
        dest_raw.clone()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), dest_raw)
    };
    let dest_is_dir = dest_raw.ends_with('/') || dest_raw == "." || srcs.len() > 1;
    let layer_dirs = store
        .layer_dirs(
            &st.layers
                .iter()
                .map(|l| l.diff_id.clone())
                .collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())?;
    let owner = match chown {
        Some(c) => {
            Some(runtime::image_spec::resolve_user(&layer_dirs, c).map_err(|e| e.to_string())?)
        }
        None => Some((0, 0)),
    };
    let sr = StepRoot::new(store, &st.layers)?;
    let rootf = fs::File::open(sr.merged()).map_err(|e| e.to_string())?;
    let mut cp = Copier {
        root: rootf.as_raw_fd(),
        owner,
        ign: &ctx.ign,
        h: Sha256::new(),
    };
    for src in srcs {
        if kw == "ADD" && (src.starts_with("http://") || src.starts_with("https://")) {
            return Err(format!("{src}: ADD from a URL is not supported"));
        }
        cp.h.update(b"\0src\0");
        cp.h.update(src.as_bytes());
        let rel = context_path(src)?;
        let (mut f, real) = open_source(ctx, src, &rel)?;
        let md = f.metadata().map_err(|e| format!("{src}: {e}"))?;
        if md.is_dir() {
            // The directory's content (filtered by .dockerignore) goes into DEST.
            cp.node(f, &real, &dest)?;
            continue;
        }
        let d = if dest_is_dir {
            format!(
                "{}/{}",
                dest.trim_end_matches('/'),
                real.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        } else {
            dest.clone()
        };
        if kw != "ADD" {
            cp.node(f, &real, &d)?;
            continue;
        }
        // ADD: read the source once into a file of our own (hashed as it is read); a tar
        // (plain, gzip or zstd) is unpacked into DEST, anything else copied as COPY does.
        let tmp = store.temp_dir("add").map_err(|e| e.to_string())?;
        let res = (|| {
            let tf = fs::File::open(&tmp).map_err(|e| e.to_string())?;
            cp.note(&real, format!("add {:o}", md.mode() & 0o7777));
            write_file(
                tf.as_raw_fd(),
                "src",
                &mut f,
                0o600,
                (0, 0),
                Some(&mut cp.h),
            )?;
            let copy = tmp.join("src");
            if is_archive(&copy) {
                let out = tmp.join("out");
                fs::create_dir(&out).map_err(|e| e.to_string())?;
                let a = fs::File::open(&copy).map_err(|e| e.to_string())?;
                unionfs::unpack_layer_with(
                    std::io::BufReader::new(a),
                    &out,
                    unionfs::UnpackOptions {
                        devices: false,
                        ..store.unpack_options()
                    },
                )
                .map_err(|e| format!("{src}: {e}"))?;
                copy_in(cp.root, &out, &dest, chown.and(owner))
            } else {
                let mut a = fs::File::open(&copy).map_err(|e| e.to_string())?;
                let own = owner.unwrap_or((md.uid(), md.gid()));
                write_file(cp.root, &d, &mut a, md.mode(), own, None)
            }
        })();
        let _ = fs::remove_dir_all(&tmp);
        res?;
    }
    let content = hex(&cp.h.finalize());
    drop(rootf);
    Ok((sr, content))
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

    /// Patterns that used to overflow the stack (300,000 `*`) or take exponential time
    /// (`*a*a...*b` against 60 `a`s, and `**` runs): bounded now, the results unchanged.
    #[test]
    fn dockerignore_patterns_are_bounded() {
        let ig = Ignore::parse(&"*".repeat(300_000));
        assert!(ig.ignored(Path::new("anything")));
        let name = "a".repeat(60);
        let ig = Ignore::parse(&format!("{}b", "*a".repeat(30)));
        assert!(!ig.ignored(Path::new(&name)));
        assert!(ig.ignored(Path::new(&format!("{name}b"))));
        let deep: Vec<String> = (0..60).map(|_| "a".to_string()).collect();
        let ig = Ignore::parse(&format!("{}b", "**/".repeat(40)));
        assert!(!ig.ignored(&deep.iter().collect::<PathBuf>()));
        let mut hit = deep.clone();
        hit.push("b".into());
        assert!(ig.ignored(&hit.iter().collect::<PathBuf>()));
        for (p, s, want) in [
            ("a?c", "abc", true),
            ("a*", "a", true),
            ("*.log", "x.log", true),
            ("*.log", "x.lo", false),
            ("**", "x", true),
        ] {
            assert_eq!(Ignore::parse(p).ignored(Path::new(s)), want, "{p} {s}");
        }
    }
}
