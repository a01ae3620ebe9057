//! `pull`, `push`, `login`, `logout`: the registry client (`corral_registry`) with docker's
//! output. Progress per layer: redrawn in place on a terminal (bytes, size, rate), one line
//! per change of state otherwise.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;
use std::time::Instant;

use corral_registry::{Event, LayerState, PullOptions, PushOptions};

use crate::args::Cli;
use crate::args_pull::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use crate::error::{msg, CliError, R};
use crate::image::{human, open_store};

impl From<corral_registry::Error> for CliError {
    fn from(e: corral_registry::Error) -> Self {
        CliError::Msg(e.to_string())
    }
}

/// The layers in the order first seen, each one's state, bytes and total, the lines last
/// drawn and when.
type Table = (
    Vec<String>,
    BTreeMap<String, (LayerState, u64, u64)>,
    usize,
    Instant,
);

/// Where each layer is, for the display.
pub struct Display {
    tty: bool,
    quiet: bool,
    push: bool,
    start: Instant,
    state: Mutex<Table>,
}

fn short(d: &str) -> &str {
    let h = d.strip_prefix("sha256:").unwrap_or(d);
    &h[..h.len().min(12)]
}

fn word(s: LayerState, push: bool) -> &'static str {
    match (s, push) {
        (LayerState::Exists, _) => "Already exists",
        (LayerState::Waiting, _) => "Waiting",
        (LayerState::Downloading, false) => "Downloading",
        (LayerState::Downloading, true) => "Pushing",
        (LayerState::Extracting, _) => "Extracting",
        (LayerState::Done, false) => "Pull complete",
        (LayerState::Done, true) => "Pushed",
    }
}

impl Display {
    pub fn new(quiet: bool, push: bool) -> Display {
        let now = Instant::now();
        Display {
            tty: std::io::stderr().is_terminal(),
            quiet,
            push,
            start: now,
            state: Mutex::new((Vec::new(), BTreeMap::new(), 0, now)),
        }
    }

    /// Take one event: plain lines on a change of state, or the whole table redrawn.
    pub fn event(&self, e: &Event) {
        if self.quiet {
            return;
        }
        let Ok(mut g) = self.state.lock() else { return };
        let (order, layers, drawn, last) = &mut *g;
        let prev = layers.get(&e.digest).map(|l| l.0);
        if prev.is_none() {
            order.push(e.digest.clone());
        }
        layers.insert(e.digest.clone(), (e.state, e.done, e.total));
        let mut err = std::io::stderr().lock();
        if !self.tty {
            if prev != Some(e.state) {
                let _ = writeln!(err, "{}: {}", short(&e.digest), word(e.state, self.push));
            }
            return;
        }
        let now = Instant::now();
        if prev == Some(e.state)
            && e.state == LayerState::Downloading
            && now.duration_since(*last).as_millis() < 100
        {
            return;
        }
        *last = now;
        let secs = now.duration_since(self.start).as_secs_f64().max(0.001);
        let mut out = String::new();
        if *drawn > 0 {
            out.push_str(&format!("\x1b[{}A", *drawn));
        }
        for d in order.iter() {
            let (s, done, total) = layers[d];
            out.push_str("\x1b[2K");
            out.push_str(short(d));
            out.push_str(": ");
            out.push_str(word(s, self.push));
            if s == LayerState::Downloading {
                out.push_str(&format!(
                    " {}/{} {}/s",
                    human(done),
                    human(total),
                    human((done as f64 / secs) as u64)
                ));
            }
            out.push('\n');
        }
        *drawn = order.len();
        let _ = err.write_all(out.as_bytes());
    }
}

fn insecure_for(reference: &str, tls_verify: bool) -> R<Vec<String>> {
    if tls_verify {
        return Ok(Vec::new());
    }
    let n = corral_registry::name::Name::parse(reference)?;
    Ok(vec![n.registry().to_string()])
}

pub fn pull(cli: &Cli, a: &PullArgs) -> R {
    let store = open_store(cli)?;
    let opts = PullOptions {
        platform: a.platform.clone(),
        insecure: insecure_for(&a.reference, a.tls_verify)?,
        ..PullOptions::default()
    };
    let name = corral_registry::name::Name::parse(&a.reference)?;
    if !a.quiet {
        eprintln!(
            "{}: Pulling from {}",
            name.remote
                .tag()
                .or(name.remote.digest())
                .unwrap_or("latest"),
            name.repository()
        );
    }
    let d = Display::new(a.quiet, false);
    let p = corral_registry::pull(&store, &a.reference, &opts, &|e| d.event(e))?;
    if !a.quiet {
        eprintln!("Digest: {}", p.digest);
        if p.fresh {
            eprintln!("Status: Downloaded newer image for {}", p.tag);
        } else {
            eprintln!("Status: Image is up to date for {}", p.tag);
        }
    }
    println!("{name}");
    Ok(0)
}

pub fn push(cli: &Cli, a: &PushArgs) -> R {
    let store = open_store(cli)?;
    let target = a.destination.as_deref().unwrap_or(&a.image);
    let opts = PushOptions {
        insecure: insecure_for(target, a.tls_verify)?,
    };
    let d = Display::new(a.quiet, true);
    let (name, digest) =
        corral_registry::push(&store, &a.image, a.destination.as_deref(), &opts, &|e| {
            d.event(e)
        })?;
    println!("{name}: digest: {digest}");
    Ok(0)
}

fn host_of(r: &Option<String>) -> String {
    match r.as_deref() {
        None | Some("") => "docker.io".to_string(),
        Some(s) => s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
}

pub fn login(cli: &Cli, a: &LoginArgs) -> R {
    let store = open_store(cli)?;
    let host = host_of(&a.registry);
    let user = a
        .username
        .clone()
        .ok_or_else(|| msg("login: give the user name with -u"))?;
    let secret = match (&a.password, a.password_stdin) {
        (Some(_), true) => {
            return Err(msg(
                "login: --password and --password-stdin exclude each other",
            ))
        }
        (Some(p), false) => p.clone(),
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| msg(format!("login: reading the password from stdin: {e}")))?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(msg(
                "login: give the password with --password-stdin (or -p)",
            ))
        }
    };
    corral_registry::login(&store, &host, &user, &secret, !a.tls_verify)?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(_cli: &Cli, a: &LogoutArgs) -> R {
    let host = host_of(&a.registry);
    if corral_registry::auth::erase_credentials(&host)? {
        println!("Removing login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(0)
}

/// Let a build's `FROM` pull a base image the store lacks (`policy` missing; never: no
/// pull). Progress goes to stderr as plain lines.
pub fn install_base_fetcher(policy: corral_registry::PullPolicy) {
    if policy == corral_registry::PullPolicy::Never {
        return;
    }
    corral_image::build::set_base_fetcher(Box::new(move |store, base| {
        let d = Display::new(false, false);
        let name = corral_registry::name::Name::parse(base).map_err(|e| e.to_string())?;
        let img = corral_registry::pull::ensure_image(store, base, policy, &|e| d.event(e))
            .map_err(|e| format!("pulling {base}: {e}"))?;
        let _ = img;
        Ok(name
            .store_reference()
            .map_err(|e| e.to_string())?
            .to_string())
    }));
}

/// For `run`/`create --image IMAGE` with docker's `--pull missing|always|never`: the image
/// pulled first as `policy` says (progress on stderr, as `pull` shows it). Returns the name
/// to make the container from: the image's manifest digest, which the store resolves
/// whatever form of the name the user gave (`debian`, `docker.io/library/debian:latest`).
pub fn ensure_for_container(cli: &Cli, image: &str, policy: &str) -> R<String> {
    let policy: corral_registry::PullPolicy = policy.parse()?;
    let store = open_store(cli)?;
    let d = Display::new(false, false);
    let img = corral_registry::ensure_image(&store, image, policy, &|e| d.event(e))?;
    Ok(img.manifest_digest.to_string())
}
