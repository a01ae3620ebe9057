//! Dockerfile builds: a Dockerfile subset built into layers, with a cache.
//!
//! Each RUN, COPY and ADD step runs on an overlay of the layers so far plus a new upper
//! dir (mounted under the store's temp dir); that upper dir becomes the step's layer.
//! RUN runs in a container with a network namespace of its own, attached to
//! [`BuildOptions::networks`] (none: loopback only); the host's network only with
//! [`BuildOptions::host_network`] (as `docker build --network host`).
//! Every step is cached under a key chained from the base image, the instruction (after
//! substitution), the environment a RUN sees and the content a COPY or ADD brings, so an
//! unchanged rebuild makes no new layer and the same image.
//!
//! | module | what |
//! |---|---|
//! | [`dockerfile`] | the parser and `${VAR}` substitution |
//! | `ignore` | `.dockerignore` matching |
//! | `copy` | COPY and ADD: the context's sources, the in-root copier |
//! | `run` | RUN: the step's container and the guard that takes it down if the build dies |
//! | `cache` | step keys and cache entries |

mod cache;
mod copy;
pub mod dockerfile;
mod ignore;
mod run;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Instant;

use oci_spec::image::{History, ImageConfiguration};

pub use dockerfile::{parse, substitute, Instruction};

use crate::error::{invalid, ImageError, Result};
use crate::reference::Reference;
use crate::store::{now_rfc3339, rootfs_config, CacheEntry, Image, ImageStore, Layer};
use cache::{entry_of, layer_of, step_key, to_digest};
use copy::{copy_step, Context};
use dockerfile::{json_form, pairs, shell_words};
use run::{labels_shell, run_step, SHELL_LABEL};

/// Where the Dockerfile comes from.
#[derive(Debug, Clone, Default)]
pub enum Dockerfile {
    /// `Dockerfile` in the context (a symlink in it resolves inside it, as every source
    /// does).
    #[default]
    Context,
    /// A file of the caller's, read where it is (`docker build -f`).
    Path(PathBuf),
    /// The text itself; `name` names it in messages.
    Text { name: String, text: String },
}

/// What to build and how.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile.
    pub dockerfile: Dockerfile,
    /// The names the image gets (none: the image is made, untagged).
    pub tags: Vec<Reference>,
    /// Build arguments (`--build-arg KEY=VALUE`).
    pub build_args: Vec<(String, String)>,
    /// Build up to the end of the stage named so (`FROM IMAGE AS NAME`); none: to the end.
    pub target: Option<String>,
    /// Run every step again (the results still go to the cache).
    pub no_cache: bool,
    /// RUN steps on the host's network (default: a network namespace of their own,
    /// loopback only).
    pub host_network: bool,
    /// The CNI networks of RUN steps without [`BuildOptions::host_network`] (the CLI's
    /// default: the `bridge` network, so `apt-get` reaches the archive without the host's
    /// network); empty: loopback only.
    pub networks: Vec<String>,
    /// The state root of the RUN steps' containers.
    pub state_root: PathBuf,
}

/// What a build reports as it goes. Each shows (`Display`) as the line `docker build`'s
/// classic output has for it.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    /// Step `n` of `total` starts.
    Step {
        n: usize,
        total: usize,
        text: String,
    },
    /// FROM found its base image.
    Base { short_id: String },
    /// The step's result came from the cache.
    UsingCache,
    /// A RUN step's container is made.
    Running { id: String },
    /// The step is done: the first 12 hex digits of the layer it added, if any.
    StepDone { layer: Option<String>, seconds: f64 },
    /// The image is made.
    Built { short_id: String },
    /// The image got a name.
    Tagged { reference: Reference },
}

impl std::fmt::Display for BuildEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildEvent::Step { n, total, text } => write!(f, "Step {n}/{total} : {text}"),
            BuildEvent::Base { short_id } => write!(f, " ---> {short_id}"),
            BuildEvent::UsingCache => write!(f, " ---> Using cache"),
            BuildEvent::Running { id } => write!(f, " ---> Running in {id}"),
            BuildEvent::StepDone {
                layer: Some(l),
                seconds,
            } => write!(f, " ---> {l} ({seconds:.2}s)"),
            BuildEvent::StepDone {
                layer: None,
                seconds,
            } => write!(f, " ---> done ({seconds:.2}s)"),
            BuildEvent::Built { short_id } => write!(f, "Successfully built {short_id}"),
            BuildEvent::Tagged { reference } => write!(f, "Successfully tagged {reference}"),
        }
    }
}

/// The build's state: the image so far.
pub(crate) struct Stage {
    config: ImageConfiguration,
    layers: Vec<Layer>,
    key: String,
    /// `FROM IMAGE AS NAME`'s name.
    name: Option<String>,
}

/// How a step failed: at the instruction (the message gets its file and line), or in the
/// store.
enum Fail {
    At(String),
    Store(ImageError),
}

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::At(s)
    }
}

impl From<&str> for Fail {
    fn from(s: &str) -> Fail {
        Fail::At(s.to_string())
    }
}

impl From<ImageError> for Fail {
    fn from(e: ImageError) -> Fail {
        Fail::Store(e)
    }
}

type Step<T = ()> = std::result::Result<T, Fail>;

/// Builds the image `opts` describes into `store` and names it `opts.tags`, reporting
/// each step to `progress`. RUN steps' output goes to this process's stdout and stderr.
///
/// The calling process must be single-threaded while a RUN step runs (its guard is forked,
/// see `run`): a build is a command of its own, not a library call among threads.
pub fn build(
    store: &ImageStore,
    opts: &BuildOptions,
    progress: &mut dyn FnMut(BuildEvent),
) -> Result<Image> {
    let ctx = Context::open(&opts.context).map_err(invalid)?;
    let (fname, text) = read_dockerfile(&ctx, &opts.dockerfile)?;
    let instrs = parse(&text).map_err(|e| invalid(format!("{fname}: {e}")))?;
    if instrs.is_empty() {
        return Err(invalid(format!("{fname}: no instructions")));
    }
    let mut b = Build {
        store,
        opts,
        ctx,
        build_args: opts.build_args.iter().cloned().collect(),
        args: HashMap::new(),
        stage: None,
        last_created: String::new(),
    };
    let _lock = store.lock_shared()?;
    let total = instrs.len();
    for (n, ins) in instrs.iter().enumerate() {
        if ins.keyword == "FROM" && b.target_done() {
            break;
        }
        progress(BuildEvent::Step {
            n: n + 1,
            total,
            text: ins.text.clone(),
        });
        b.step(ins, progress).map_err(|e| match e {
            Fail::At(e) => invalid(format!("{fname}:{}: {}: {e}", ins.line, ins.keyword)),
            Fail::Store(e) => e,
        })?;
    }
    let st = b
        .stage
        .ok_or_else(|| invalid(format!("{fname}: no FROM")))?;
    if let Some(t) = &opts.target {
        if st.name.as_deref() != Some(t.as_str()) {
            return Err(invalid(format!(
                "{fname}: no stage named {t:?} (FROM IMAGE AS {t})"
            )));
        }
    }
    let mut config = st.config;
    if !b.last_created.is_empty() {
        config.set_created(Some(b.last_created));
    }
    let img = store.write_image(config, &st.layers)?;
    for t in &opts.tags {
        store.tag(&img, t)?;
    }

    progress(BuildEvent::Built {
        short_id: img.short_id().to_string(),
    });
    for t in &opts.tags {
        progress(BuildEvent::Tagged {
            reference: t.clone(),
        });
    }
    Ok(img)
}

/// The Dockerfile's name (for messages) and text.
fn read_dockerfile(ctx: &Context, d: &Dockerfile) -> Result<(String, String)> {
    Ok(match d {
        Dockerfile::Path(f) => (
            f.display().to_string(),
            fs::read_to_string(f).map_err(|e| invalid(format!("{}: {e}", f.display())))?,
        ),
        Dockerfile::Context => {
            let f = ctx.dir.join("Dockerfile");
            let t = ctx
                .read("Dockerfile")
                .map_err(|e| invalid(format!("{}: {e}", f.display())))?;
            (f.display().to_string(), t)
        }
        Dockerfile::Text { name, text } => (name.clone(), text.clone()),
    })
}

/// A build under way.
struct Build<'a> {
    store: &'a ImageStore,
    opts: &'a BuildOptions,
    ctx: Context,
    build_args: HashMap<String, String>,
    /// ARGs declared: before FROM (global), then per stage.
    args: HashMap<String, String>,
    stage: Option<Stage>,
    last_created: String,
}

/// What a step does once its key is not in the cache.
enum Work {
    /// Nothing: a config change only.
    None,
    /// RUN `argv` with `env`.
    Run { argv: Vec<String>, env: Vec<String> },
    /// COPY or ADD, already done (to hash what it copies) in this step root.
    Copied(StepRoot),
}

impl Build<'_> {
    /// Is the target stage complete (a FROM is starting the next one)?
    fn target_done(&self) -> bool {
        match (&self.opts.target, &self.stage) {
            (Some(t), Some(st)) => st.name.as_deref() == Some(t.as_str()),
            _ => false,
        }
    }

    /// Variables for substitution: the stage's ENV over the ARGs.
    fn vars(&self) -> HashMap<String, String> {
        let mut vars = self.args.clone();
        if let Some(st) = &self.stage {
            let env = st.config.config().as_ref().and_then(|c| c.env().clone());
            for e in env.unwrap_or_default() {
                if let Some((k, v)) = e.split_once('=') {
                    vars.insert(k.to_string(), v.to_string());
                }
            }
        }
        vars
    }

    fn step(&mut self, ins: &Instruction, progress: &mut dyn FnMut(BuildEvent)) -> Step {
        let started = Instant::now();
        let vars = self.vars();
        let kw = ins.keyword.as_str();
        if kw == "ARG" {
            return self.arg(ins, &vars);
        }
        if kw == "FROM" {
            self.stage = Some(from_step(self.store, ins, &vars, progress)?);
            return Ok(());
        }
        let st = self
            .stage
            .as_mut()
            .ok_or("the first instruction must be FROM (or ARG)")?;
        let mut cfg = st.config.config().clone().unwrap_or_default();
        let shell_cmd = labels_shell(&cfg).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let (canonical, work) = match kw {
            "RUN" => run_prep(ins, &shell_cmd, &cfg, &self.args)?,
            "COPY" | "ADD" => copy_prep(self.store, &self.ctx, ins, &vars, st, &cfg)?,
            _ => (config_step(ins, &vars, &mut cfg, &shell_cmd)?, Work::None),
        };
        let created = finish_step(
            self.store, self.opts, st, ins, cfg, &canonical, work, started, progress,
        )?;
        self.last_created = created;
        Ok(())
    }

    /// `ARG NAME[=DEFAULT]`: the build argument's value, else the default.
    fn arg(&mut self, ins: &Instruction, vars: &HashMap<String, String>) -> Step {
        let (k, v) = match ins.args.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
            None => (ins.args.trim().to_string(), None),
        };
        if k.is_empty() {
            return Err("want NAME[=DEFAULT]".into());
        }
        let val = match self.build_args.get(&k) {
            Some(v) => v.clone(),
            None => v
                .map(|v| substitute(&v, vars))
                .transpose()?
                .unwrap_or_default(),
        };
        self.args.insert(k.clone(), val.clone());
        if let Some(st) = &mut self.stage {
            st.key = step_key(&st.key, &["ARG", &k, &val]);
        }
        Ok(())
    }
}

/// What `FROM` calls for a base image the store lacks: it gets it into the store (a
/// registry pull) and returns the name to find it by, or says why not.
pub type BaseFetcher =
    dyn Fn(&ImageStore, &str) -> std::result::Result<String, String> + Send + Sync;

static BASE_FETCHER: std::sync::OnceLock<Box<BaseFetcher>> = std::sync::OnceLock::new();

/// Set, once per process, how `FROM` gets a base image the store lacks (the registry client
/// lives above this crate; without a fetcher a missing base is an error).
pub fn set_base_fetcher(f: Box<BaseFetcher>) {
    let _ = BASE_FETCHER.set(f);
}

/// `FROM IMAGE [AS NAME]`: a new stage on the image (or on nothing, `scratch`).
fn from_step(
    store: &ImageStore,
    ins: &Instruction,
    vars: &HashMap<String, String>,
    progress: &mut dyn FnMut(BuildEvent),
) -> Step<Stage> {
    let s = substitute(&ins.args, vars)?;
    let words: Vec<&str> = s.split_whitespace().collect();
    let (base, name) = match words.as_slice() {
        [b] => (*b, None),
        [b, _, n] => (*b, Some(n.to_string())),
        _ => return Err("want FROM IMAGE [AS NAME]".into()),
    };
    if base == "scratch" {
        return Ok(Stage {
            config: empty_config(),
            layers: Vec::new(),
            key: step_key("", &["FROM scratch"]),
            name,
        });
    }
    let img = match store.resolve(base) {
        Err(ImageError::NotFound(_)) if BASE_FETCHER.get().is_some() => {
            let fetch = BASE_FETCHER.get().ok_or("no base fetcher")?;
            let name = fetch(store, base).map_err(Fail::At)?;
            store.resolve(&name).map_err(|e| Fail::At(e.to_string()))?
        }
        r => r.map_err(|e| Fail::At(e.to_string()))?,
    };
    progress(BuildEvent::Base {
        short_id: img.short_id().to_string(),
    });
    Ok(Stage {
        layers: img.layers()?,
        key: step_key("", &["FROM", img.id.as_str()]),
        config: img.config,
        name,
    })
}

/// RUN: the command (exec form, or the shell form through the stage's SHELL), the
/// environment it sees (build args in it, not kept in the image), and the step's
/// canonical text.
fn run_prep(
    ins: &Instruction,
    shell_cmd: &[String],
    cfg: &oci_spec::image::Config,
    args: &HashMap<String, String>,
) -> Step<(String, Work)> {
    let argv = match json_form(&ins.args) {
        Some(v) => v,
        None => {
            let mut v = shell_cmd.to_vec();
            v.push(ins.args.clone());
            v
        }
    };
    if argv.is_empty() {
        return Err("empty command".into());
    }
    let mut env = cfg.env().clone().unwrap_or_default();
    let mut sorted: Vec<(&String, &String)> = args.iter().collect();
    sorted.sort();
    for (k, v) in sorted {
        if !env.iter().any(|e| e.split('=').next() == Some(k)) {
            env.push(format!("{k}={v}"));
        }
    }
    let canonical = format!(
        "RUN {}\nenv={:?}\nuser={:?}\nworkdir={:?}",
        serde_json::to_string(&argv).unwrap_or_default(),
        env,
        cfg.user(),
        cfg.working_dir()
    );
    Ok((canonical, Work::Run { argv, env }))
}

/// COPY or ADD: the flags and SRC... DEST, done into a fresh step root now (its content
/// hashed into the step's canonical text).
fn copy_prep(
    store: &ImageStore,
    ctx: &Context,
    ins: &Instruction,
    vars: &HashMap<String, String>,
    st: &Stage,
    cfg: &oci_spec::image::Config,
) -> Step<(String, Work)> {
    let kw = ins.keyword.as_str();
    let s = substitute(&ins.args, vars)?;
    let words = match json_form(&s) {
        Some(v) => v,
        None => shell_words(&s)?,
    };
    let mut chown = None;
    let mut rest = Vec::new();
    for w in words {
        if let Some(c) = w.strip_prefix("--chown=") {
            chown = Some(c.to_string());
        } else if w.starts_with("--from=") {
            return Err("--from (multi-stage copies) is not supported".into());
        } else if w.starts_with("--") {
            return Err(format!("unknown flag {w}").into());
        } else {
            rest.push(w);
        }
    }
    if rest.len() < 2 {
        return Err("want SRC... DEST".into());
    }
    let (sr, content) = copy_step(store, ctx, kw, &rest, chown.as_deref(), st, cfg)?;
    let canonical = format!(
        "{kw} {}\nchown={chown:?}\nworkdir={:?}\ncontent={content}",
        serde_json::to_string(&rest).unwrap_or_default(),
        cfg.working_dir()
    );
    Ok((canonical, Work::Copied(sr)))
}

/// The instructions that change the image's config only (no layer): the config changed,
/// and the step's canonical text.
fn config_step(
    ins: &Instruction,
    vars: &HashMap<String, String>,
    cfg: &mut oci_spec::image::Config,
    shell_cmd: &[String],
) -> Step<String> {
    let sub = || substitute(&ins.args, vars);
    Ok(match ins.keyword.as_str() {
        "ENV" => {
            let s = sub()?;
            let mut env = cfg.env().clone().unwrap_or_default();
            for (k, v) in pairs(&s, true)? {
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            cfg.set_env(Some(env));
            format!("ENV {s}")
        }
        "LABEL" => {
            let s = sub()?;
            let mut l = cfg.labels().clone().unwrap_or_default();
            for (k, v) in pairs(&s, false)? {
                l.insert(k, v);
            }
            cfg.set_labels(Some(l));
            format!("LABEL {s}")
        }
        "WORKDIR" => {
            let s = sub()?;
            let w = if s.starts_with('/') {
                s.clone()
            } else {
                let cur = cfg.working_dir().clone().unwrap_or_else(|| "/".into());
                format!("{}/{}", cur.trim_end_matches('/'), s)
            };
            if w.split('/').any(|c| c == "..") {
                return Err(format!("{w:?}: \"..\" is not allowed").into());
            }
            cfg.set_working_dir(Some(w.clone()));
            format!("WORKDIR {w}")
        }
        "USER" => {
            let s = sub()?;
            cfg.set_user(Some(s.trim().to_string()));
            format!("USER {s}")
        }
        "CMD" | "ENTRYPOINT" => {
            let v = match json_form(&ins.args) {
                Some(v) => v,
                None => {
                    let mut v = shell_cmd.to_vec();
                    v.push(ins.args.clone());
                    v
                }
            };
            if ins.keyword == "CMD" {
                cfg.set_cmd(Some(v));
            } else {
                cfg.set_entrypoint(Some(v));
                cfg.set_cmd(None);
            }
            ins.text.clone()
        }
        "EXPOSE" => {
            let s = sub()?;
            let mut p = cfg.exposed_ports().clone().unwrap_or_default();
            for w in s.split_whitespace() {
                let w = if w.contains('/') {
                    w.to_string()
                } else {
                    format!("{w}/tcp")
                };
                if !p.contains(&w) {
                    p.push(w);
                }
            }
            p.sort();
            cfg.set_exposed_ports(Some(p));
            format!("EXPOSE {s}")
        }
        "SHELL" => {
            let v = json_form(&ins.args)
                .filter(|v| !v.is_empty())
                .ok_or("want a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]")?;
            let mut l = cfg.labels().clone().unwrap_or_default();
            // Kept in a label: the OCI config has no Shell field.
            l.insert(SHELL_LABEL.into(), serde_json::to_string(&v).unwrap_or_default());
            cfg.set_labels(Some(l));
            format!("SHELL {}", serde_json::to_string(&v).unwrap_or_default())
        }
        other => {
            return Err(format!(
                "unknown or unsupported instruction {other:?} (known: FROM RUN COPY ADD ENV WORKDIR USER CMD ENTRYPOINT LABEL ARG EXPOSE SHELL)"
            )
            .into())
        }
    })
}

/// `docker commit --change`: one Dockerfile instruction that changes the config only (CMD,
/// ENTRYPOINT, ENV, LABEL, EXPOSE, USER, WORKDIR) applied to `cfg`. No variables are
/// substituted but the instruction's own; the shell form runs under `/bin/sh -c`.
pub fn apply_change(change: &str, cfg: &mut oci_spec::image::Config) -> Result<String> {
    let ins = parse(change)
        .map_err(|e| invalid(format!("--change {change:?}: {e}")))?
        .into_iter()
        .next()
        .ok_or_else(|| invalid(format!("--change {change:?}: no instruction")))?;
    if !matches!(
        ins.keyword.as_str(),
        "CMD" | "ENTRYPOINT" | "ENV" | "LABEL" | "EXPOSE" | "USER" | "WORKDIR"
    ) {
        return Err(invalid(format!(
            "--change {change:?}: {} is not supported (CMD ENTRYPOINT ENV LABEL EXPOSE USER \
             WORKDIR are)",
            ins.keyword
        )));
    }
    let shell = ["/bin/sh".to_string(), "-c".to_string()];
    config_step(&ins, &HashMap::new(), cfg, &shell).map_err(|e| match e {
        Fail::At(m) => invalid(format!("--change {change:?}: {m}")),
        Fail::Store(e) => e,
    })
}

/// The end of a step: its result from the cache, else its work done (and cached); its
/// layer and history entry added to the stage. Returns when the step ran (RFC 3339).
#[allow(clippy::too_many_arguments)]
fn finish_step(
    store: &ImageStore,
    opts: &BuildOptions,
    st: &mut Stage,
    ins: &Instruction,
    cfg: oci_spec::image::Config,
    canonical: &str,
    work: Work,
    started: Instant,
    progress: &mut dyn FnMut(BuildEvent),
) -> Step<String> {
    let key = step_key(&st.key, &[canonical]);
    let kd = to_digest(&key)?;
    let cached = if opts.no_cache {
        None
    } else {
        store.cache_get(&kd)
    };
    let entry = match cached {
        Some(e) => {
            progress(BuildEvent::UsingCache);
            e
        }
        None => {
            let made = match work {
                Work::None => None,
                Work::Run { argv, env } => {
                    Some(run_step(store, opts, st, &cfg, argv, env, progress)?)
                }
                Work::Copied(mut sr) => {
                    sr.unmount()?;
                    Some(
                        store
                            .add_layer_from_upper(&sr.upper())
                            .map_err(|e| e.to_string())?,
                    )
                }
            };
            let e = CacheEntry {
                layer: made.as_ref().map(entry_of),
                created: now_rfc3339(),
            };
            store.cache_put(&kd, &e)?;
            e
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let layer = match layer_of(&entry)? {
        Some(l) => {
            let short = l.diff_id.hex()[..12].to_string();
            st.layers.push(l);
            Some(short)
        }
        None => None,
    };
    progress(BuildEvent::StepDone { layer, seconds });
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
    Ok(entry.created)
}

fn empty_config() -> ImageConfiguration {
    let mut c = rootfs_config("");
    c.set_history(Some(Vec::new()));
    c.set_created(None);
    c
}

/// A mounted overlay of the stage's layers plus a fresh upper dir, under the store's temp.
pub(crate) struct StepRoot {
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
