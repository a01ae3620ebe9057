//! The engine's files in a container's record dir: `container.json`, `state.json` (by
//! rename, changed under `state.lock`), and the names under `<store>/names/`.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{io_err, Error, Result};
use crate::model::{Config, RunState};

pub const CONFIG: &str = "container.json";
pub const STATE: &str = "state.json";
const STATE_LOCK: &str = "state.lock";

/// The record dir of container `id`.
pub fn record_dir(store: &Path, id: &str) -> PathBuf {
    store.join("containers").join(id)
}

/// The names dir of a store.
pub fn names_dir(store: &Path) -> PathBuf {
    store.join("names")
}

/// Writes `bytes` to `path` by a temp file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("rename", path)(e)
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(v)
        .map_err(|e| Error::Invalid(format!("encoding {}: {e}", path.display())))?;
    write_atomic(path, &text)
}

/// Container `id`'s `container.json`, if it is an engine container.
pub fn read_config(store: &Path, id: &str) -> Result<Option<Config>> {
    if runtime::state::check_id(id).is_err() {
        return Ok(None);
    }
    read_json(&record_dir(store, id).join(CONFIG))
}

pub fn write_config(store: &Path, c: &Config) -> Result<()> {
    write_json(&record_dir(store, &c.id).join(CONFIG), c)
}

/// The state as last written (`created` when there is none yet).
pub fn read_state(store: &Path, id: &str) -> Result<RunState> {
    Ok(read_json(&record_dir(store, id).join(STATE))?.unwrap_or_default())
}

pub fn write_state(store: &Path, id: &str, s: &RunState) -> Result<()> {
    write_json(&record_dir(store, id).join(STATE), s)
}

/// Changes the state under its lock (read, `f`, write). Returns what `f` returned.
pub fn update_state<T>(store: &Path, id: &str, f: impl FnOnce(&mut RunState) -> T) -> Result<T> {
    let _l = lock_state(store, id)?;
    let mut s = read_state(store, id)?;
    let out = f(&mut s);
    write_state(store, id, &s)?;
    Ok(out)
}

/// An exclusive `flock` on the container's `state.lock`, held while the value lives.
pub struct StateLock(#[allow(dead_code)] fs::File);

pub fn lock_state(store: &Path, id: &str) -> Result<StateLock> {
    lock(store, id, STATE_LOCK)
}

/// An exclusive `flock` on the container's `start.lock`: one start at a time (held until
/// the container runs or its start failed).
pub fn lock_start(store: &Path, id: &str) -> Result<StateLock> {
    lock(store, id, "start.lock")
}

fn lock(store: &Path, id: &str, name: &str) -> Result<StateLock> {
    let p = record_dir(store, id).join(name);
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::NoSuchContainer(id.to_string()),
            _ => io_err("open", &p)(e),
        })?;
    loop {
        // SAFETY: flock on an fd we own for the call.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(StateLock(f));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(io_err("flock", &p)(e));
        }
    }
}

/// Checks a container name as docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading `/` is
/// dropped).
pub fn check_name(name: &str) -> Result<&str> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = n.len() >= 2
        && n.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return Err(Error::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(n)
}

/// The id a name points to.
pub fn name_target(store: &Path, name: &str) -> Option<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    if check_name(n).is_err() {
        return None;
    }
    fs::read_link(names_dir(store).join(n))
        .ok()
        .and_then(|t| t.to_str().map(str::to_string))
}

/// Claims `name` for `id`: the symlink `<store>/names/<name>` -> id, made only if it is not
/// there (a name whose container's record is gone is taken back).
pub fn claim_name(store: &Path, name: &str, id: &str) -> Result<()> {
    let name = check_name(name)?;
    let dir = names_dir(store);
    fs::create_dir_all(&dir).map_err(io_err("mkdir", &dir))?;
    let link = dir.join(name);
    for _ in 0..2 {
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let owner = name_target(store, name).unwrap_or_default();
                if owner == id {
                    return Ok(());
                }
                if !owner.is_empty() && record_dir(store, &owner).join(CONFIG).exists() {
                    return Err(Error::NameInUse {
                        name: name.to_string(),
                        id: owner,
                    });
                }
                // A stale name (its container is gone): take it back, once.
                let _ = fs::remove_file(&link);
            }
            Err(e) => return Err(io_err("symlink", &link)(e)),
        }
    }
    Err(Error::NameInUse {
        name: name.to_string(),
        id: name_target(store, name).unwrap_or_default(),
    })
}

/// Lets `name` go if it points to `id`.
pub fn release_name(store: &Path, name: &str, id: &str) {
    if name_target(store, name).as_deref() == Some(id) {
        let _ = fs::remove_file(names_dir(store).join(name));
    }
}

/// A new id: 64 random lowercase hex digits, not all digits (docker's rule, so that a
/// short id is never taken for a number).
pub fn new_id() -> Result<String> {
    use std::io::Read;
    let mut f = fs::File::open("/dev/urandom").map_err(io_err("open", "/dev/urandom"))?;
    loop {
        let mut b = [0u8; 32];
        f.read_exact(&mut b)
            .map_err(io_err("read", "/dev/urandom"))?;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        if hex[..12].bytes().any(|c| c.is_ascii_alphabetic()) {
            return Ok(hex);
        }
    }
}

/// Whether process `pid` lives and started at `start_time` (not a reused pid, not a zombie).
pub fn process_is(pid: i32, start_time: u64) -> bool {
    if pid <= 0 || start_time == 0 {
        return false;
    }
    if runtime::state::pid_start_time(pid) != start_time {
        return false;
    }
    // A zombie is gone for us.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

/// This process's pid and start time.
pub fn me() -> (i32, u64) {
    let pid = std::process::id() as i32;
    (pid, runtime::state::pid_start_time(pid))
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const NOUNS: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "almeida",
    "archimedes",
    "ardinghelli",
    "aryabhata",
    "austin",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bassi",
    "bell",
    "bhabha",
    "bhaskara",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "boyd",
    "brahmagupta",
    "brattain",
    "brown",
    "carson",
    "chandrasekhar",
    "clarke",
    "colden",
    "cori",
    "cray",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dubinsky",
    "easley",
    "edison",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gates",
    "goldberg",
    "goodall",
    "haibt",
    "hamilton",
    "hawking",
    "heisenberg",
    "hermann",
    "hodgkin",
    "hoover",
    "hopper",
    "hugle",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "jepsen",
    "johnson",
    "joliot",
    "jones",
    "kalam",
    "kapitsa",
    "keldysh",
    "keller",
    "kepler",
    "khorana",
    "kilby",
    "kirch",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lederberg",
    "lehmann",
    "lewin",
    "lichterman",
    "liskov",
    "lovelace",
    "lumiere",
    "mahavira",
    "mayer",
    "mccarthy",
    "mcclintock",
    "mclean",
    "mcnulty",
    "meitner",
    "mendel",
    "mirzakhani",
    "montalcini",
    "moore",
    "morse",
    "moser",
    "napier",
    "nash",
    "neumann",
    "newton",
    "nightingale",
    "nobel",
    "noether",
    "northcutt",
    "noyce",
    "panini",
    "pare",
    "pascal",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "poitras",
    "ptolemy",
    "raman",
    "ramanujan",
    "ride",
    "ritchie",
    "roentgen",
    "rosalind",
    "saha",
    "sammet",
    "shannon",
    "shaw",
    "shirley",
    "shockley",
    "sinoussi",
    "snyder",
    "spence",
    "stonebraker",
    "sutherland",
    "swanson",
    "swartz",
    "swirles",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// A generated name, docker's style (`adjective_noun`); a digit is appended after the first
/// tries (as docker does when names collide).
pub fn generate_name(attempt: u32) -> String {
    let mut b = [0u8; 4];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    let r = u32::from_le_bytes(b);
    let a = ADJECTIVES[(r as usize) % ADJECTIVES.len()];
    let n = NOUNS[(r as usize / ADJECTIVES.len()) % NOUNS.len()];
    if attempt == 0 {
        format!("{a}_{n}")
    } else {
        format!("{a}_{n}{}", r % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_docker_does() {
        assert_eq!(check_name("/web").unwrap(), "web");
        assert!(check_name("a").is_err());
        assert!(check_name("-web").is_err());
        assert!(check_name("we b").is_err());
        assert!(check_name("../x").is_err());
        assert!(check_name("web_1.a-b").is_ok());
        let g = generate_name(0);
        assert!(check_name(&g).is_ok() && g.contains('_'), "{g}");
    }

    #[test]
    fn a_name_is_claimed_once() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (new_id().unwrap(), new_id().unwrap());
        for id in [&a, &b] {
            fs::create_dir_all(record_dir(t.path(), id)).unwrap();
            fs::write(record_dir(t.path(), id).join(CONFIG), "{}").unwrap();
        }
        claim_name(t.path(), "web", &a).unwrap();
        let e = claim_name(t.path(), "web", &b).unwrap_err().to_string();
        assert!(
            e.contains("\"/web\" is already in use by container \"") && e.contains(&a),
            "{e}"
        );
        // Its container gone: the name is free again.
        fs::remove_dir_all(record_dir(t.path(), &a)).unwrap();
        claim_name(t.path(), "web", &b).unwrap();
        assert_eq!(name_target(t.path(), "web").unwrap(), b);
    }
}
