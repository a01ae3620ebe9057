//! The runtime side of CNI (the Container Network Interface, spec 1.0/1.1): network
//! configuration lists ([`ConfList`]), plugins found on the plugin path and run with the
//! `CNI_*` environment ([`Cni`]: ADD, CHECK, DEL, GC, STATUS, VERSION), `prevResult`
//! chaining, capability arguments passed as `runtimeConfig` only to the plugins that declare
//! them, results ([`CniResult`]) and errors as the plugins return them, and the cache of ADD
//! results kept for DEL ([`Cache`]).
//!
//! How a plugin is run: its configuration object from the list, with the list's `name` and
//! `cniVersion` put in, `capabilities` taken out, `runtimeConfig` holding the capability
//! arguments it declared, `prevResult` for chained ADD and for CHECK and DEL, is written to
//! its stdin; `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS` and
//! `CNI_PATH` are set (inherited `CNI_*` variables are removed). It runs in its own process
//! group, which is killed when it outlives [`Cni::timeout`]. A non-zero exit with an error
//! object (`{code, msg, details}`) on stdout is [`Error::Plugin`] with that code; without
//! one, the error keeps the plugin's stderr.
//!
//! GC and STATUS are CNI 1.1 commands: they go only to plugins whose VERSION answer lists
//! 1.1.0 (with `cniVersion` 1.1.0 on stdin, since a 1.0 list cannot carry them); plugins that
//! do not support 1.1.0 are skipped, as the spec's version rules require.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{invalid, io_err, Error, Result};

/// The highest CNI version this runtime speaks.
pub const MAX_VERSION: &str = "1.1.0";

/// How long output pipes are still read after a plugin exited (a child it left may hold
/// them open).
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// The default time a plugin may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Parses `a.b.c` (also `a.b`, `a`) into a comparable triple.
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.trim().split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next().map(|s| s.parse().ok()).unwrap_or(Some(0))?;
    let c = it.next().map(|s| s.parse().ok()).unwrap_or(Some(0))?;
    if it.next().is_some() {
        return None;
    }
    Some((a, b, c))
}

fn version_at_least(v: &str, min: &str) -> bool {
    match (parse_version(v), parse_version(min)) {
        (Some(a), Some(b)) => a >= b,
        _ => false,
    }
}

/// Whether `name` is a valid network name or container id in CNI's terms: an alphanumeric
/// first character, then alphanumerics, `_`, `.` or `-`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

// ---------------------------------------------------------------------------------------
// Configuration lists

/// A network configuration list (a `.conflist`): the plugins run in order for a network.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfList {
    /// The CNI version selected: the highest of `cniVersion` and `cniVersions` that this
    /// runtime speaks.
    pub cni_version: String,
    /// The network's name.
    pub name: String,
    /// `disableCheck`: CHECK is never run.
    pub disable_check: bool,
    /// `disableGC`: GC is never run.
    pub disable_gc: bool,
    /// The plugin configuration objects, kept as written (every unknown key is passed on).
    pub plugins: Vec<Map<String, Value>>,
    /// Other top-level keys of the list (`cniVersions`, `loadOnlyInlinedPlugins`, ...),
    /// kept so that [`ConfList::to_json`] gives back what was read.
    pub extra: Map<String, Value>,
}

impl ConfList {
    /// Parses a configuration list; `origin` (the file it came from) names it in errors,
    /// with the key that was wrong. A single plugin configuration (a `.conf`, with `type`
    /// at the top level) is read as a list of that one plugin.
    pub fn parse(bytes: &[u8], origin: &Path) -> Result<ConfList> {
        let field = |key: &str| format!("{}: {key}", origin.display());
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| invalid(origin.display().to_string(), format!("not JSON: {e}")))?;
        let Value::Object(mut obj) = v else {
            return Err(invalid(
                origin.display().to_string(),
                "a network configuration list is a JSON object",
            ));
        };
        // A single plugin config (.conf): the list is made of it.
        if !obj.contains_key("plugins") && obj.contains_key("type") {
            let mut list = Map::new();
            for k in [
                "cniVersion",
                "cniVersions",
                "name",
                "disableCheck",
                "disableGC",
            ] {
                if let Some(v) = obj.get(k) {
                    list.insert(k.to_string(), v.clone());
                }
            }
            obj.remove("cniVersions");
            obj.remove("disableCheck");
            obj.remove("disableGC");
            list.insert("plugins".into(), Value::Array(vec![Value::Object(obj)]));
            obj = list;
        }
        let string = |obj: &Map<String, Value>, key: &str| -> Result<Option<String>> {
            match obj.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(invalid(field(key), format!("{other} is not a string"))),
            }
        };
        let boolean = |obj: &Map<String, Value>, key: &str| -> Result<bool> {
            match obj.get(key) {
                None => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(invalid(field(key), format!("{other} is not true or false"))),
            }
        };
        let name = string(&obj, "name")?.ok_or_else(|| invalid(field("name"), "missing"))?;
        if !valid_name(&name) {
            return Err(invalid(
                field("name"),
                format!("{name:?} (want an alphanumeric then alphanumerics, '_', '.' or '-')"),
            ));
        }
        let mut versions = Vec::new();
        if let Some(v) = string(&obj, "cniVersion")? {
            if parse_version(&v).is_none() {
                return Err(invalid(
                    field("cniVersion"),
                    format!("{v:?} is not a version"),
                ));
            }
            versions.push(v);
        }
        match obj.get("cniVersions") {
            None => {}
            Some(Value::Array(a)) => {
                for v in a {
                    match v.as_str() {
                        Some(s) if parse_version(s).is_some() => versions.push(s.to_string()),
                        _ => {
                            return Err(invalid(
                                field("cniVersions"),
                                format!("{v} is not a version string"),
                            ))
                        }
                    }
                }
            }
            Some(other) => {
                return Err(invalid(
                    field("cniVersions"),
                    format!("{other} is not a list"),
                ))
            }
        }
        if versions.is_empty() {
            return Err(invalid(field("cniVersion"), "missing"));
        }
        let max = parse_version(MAX_VERSION);
        let cni_version = versions
            .iter()
            .filter(|v| parse_version(v) <= max)
            .max_by_key(|v| parse_version(v))
            .cloned()
            .ok_or_else(|| {
                invalid(
                    field("cniVersion"),
                    format!(
                        "none of {versions:?} is a CNI version this runtime speaks (up to {MAX_VERSION})"
                    ),
                )
            })?;
        let disable_check = boolean(&obj, "disableCheck")?;
        let disable_gc = boolean(&obj, "disableGC")?;
        let plugins = match obj.get("plugins") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) => return Err(invalid(field("plugins"), "empty")),
            Some(other) => return Err(invalid(field("plugins"), format!("{other} is not a list"))),
            None => return Err(invalid(field("plugins"), "missing")),
        };
        let mut out = Vec::new();
        for (i, p) in plugins.iter().enumerate() {
            let key = |k: &str| field(&format!("plugins[{i}].{k}"));
            let Value::Object(p) = p else {
                return Err(invalid(
                    field(&format!("plugins[{i}]")),
                    "a plugin configuration is a JSON object",
                ));
            };
            match p.get("type") {
                Some(Value::String(t)) if valid_type(t) => {}
                Some(Value::String(t)) => {
                    return Err(invalid(
                        key("type"),
                        format!("{t:?} is not a plugin file name"),
                    ))
                }
                Some(other) => {
                    return Err(invalid(key("type"), format!("{other} is not a string")))
                }
                None => return Err(invalid(key("type"), "missing")),
            }
            match p.get("capabilities") {
                None | Some(Value::Object(_)) => {}
                Some(other) => {
                    return Err(invalid(
                        key("capabilities"),
                        format!("{other} is not an object"),
                    ))
                }
            }
            out.push(p.clone());
        }
        let mut extra = obj.clone();
        for k in ["cniVersion", "name", "disableCheck", "disableGC", "plugins"] {
            extra.remove(k);
        }
        Ok(ConfList {
            cni_version,
            name,
            disable_check,
            disable_gc,
            plugins: out,
            extra,
        })
    }

    /// Reads and parses the list in `path`.
    pub fn load(path: &Path) -> Result<ConfList> {
        let bytes = fs::read(path).map_err(io_err("read", path))?;
        ConfList::parse(&bytes, path)
    }

    /// The list as JSON (what a `.conflist` holds).
    pub fn to_json(&self) -> Value {
        let mut obj = self.extra.clone();
        obj.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        obj.insert("name".into(), Value::String(self.name.clone()));
        if self.disable_check {
            obj.insert("disableCheck".into(), Value::Bool(true));
        }
        if self.disable_gc {
            obj.insert("disableGC".into(), Value::Bool(true));
        }
        obj.insert(
            "plugins".into(),
            Value::Array(self.plugins.iter().cloned().map(Value::Object).collect()),
        );
        Value::Object(obj)
    }

    /// The `type` of plugin `i` (checked by [`ConfList::parse`]).
    pub fn plugin_type(&self, i: usize) -> &str {
        self.plugins
            .get(i)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

fn valid_type(t: &str) -> bool {
    !t.is_empty() && t != "." && t != ".." && !t.contains('/') && !t.contains('\0')
}

// ---------------------------------------------------------------------------------------
// Runtime configuration and results

/// What one attachment is: the container, its network namespace, the interface name, and
/// the arguments passed to the plugins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeConf {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS` (may be `None` for DEL: the namespace is gone).
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS` (`K=V;K2=V2`).
    pub args: Vec<(String, String)>,
    /// Capability arguments (`portMappings`, `bandwidth`, ...): each goes into the
    /// `runtimeConfig` of the plugins that declare it in `capabilities`.
    pub capability_args: Map<String, Value>,
}

impl RuntimeConf {
    fn validate(&self, command: &str, need_netns: bool) -> Result<()> {
        if !valid_name(&self.container_id) {
            return Err(invalid(
                "CNI_CONTAINERID",
                format!(
                    "{:?} (want an alphanumeric then alphanumerics, '_', '.' or '-')",
                    self.container_id
                ),
            ));
        }
        let ifname = &self.ifname;
        if ifname.is_empty()
            || ifname.len() > 15
            || ifname == "."
            || ifname == ".."
            || ifname
                .chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
        {
            return Err(invalid(
                "CNI_IFNAME",
                format!(
                    "{ifname:?} is not an interface name (1-15 characters, no '/', ':' or space)"
                ),
            ));
        }
        if need_netns && self.netns.is_none() {
            return Err(invalid(
                "CNI_NETNS",
                format!("{command} needs a network namespace"),
            ));
        }
        for (k, v) in &self.args {
            if k.is_empty() || k.contains(['=', ';']) || v.contains(';') {
                return Err(invalid(
                    "CNI_ARGS",
                    format!("{k:?}={v:?} (keys and values cannot hold ';', keys not '=')"),
                ));
            }
        }
        Ok(())
    }

    fn args_env(&self) -> String {
        self.args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// An interface in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    /// The namespace it is in (`None`: the host's).
    pub sandbox: Option<String>,
}

/// An address in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// The address in CIDR form (`10.89.0.2/16`).
    pub address: String,
    pub gateway: Option<IpAddr>,
    /// Index into [`CniResult::interfaces`].
    pub interface: Option<usize>,
}

impl IpConfig {
    /// The address without its prefix length.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next()?.parse().ok()
    }
}

/// A route in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination in CIDR form.
    pub dst: String,
    pub gw: Option<IpAddr>,
}

/// DNS settings in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The result of an ADD: the raw JSON (kept for CHECK and DEL) and what was read from it.
/// Results of CNI 0.3/0.4/1.0/1.1 (`interfaces`, `ips`) and of 0.1/0.2 (`ip4`, `ip6`) are read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CniResult {
    pub raw: Value,
    pub cni_version: String,
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

impl CniResult {
    /// Reads a result object. Fields of an unexpected type are an error naming the field.
    pub fn from_value(raw: Value) -> Result<CniResult> {
        let obj = raw
            .as_object()
            .ok_or_else(|| invalid("CNI result", "not a JSON object"))?;
        let bad =
            |f: &str, v: &Value| invalid(format!("CNI result {f}"), format!("{v} is unexpected"));
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let ip = |f: &str, v: Option<&Value>| -> Result<Option<IpAddr>> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(x)) if x.is_empty() => Ok(None),
                Some(Value::String(x)) => x
                    .parse()
                    .map(Some)
                    .map_err(|_| bad(f, &Value::String(x.clone()))),
                Some(o) => Err(bad(f, o)),
            }
        };
        let strings = |f: &str, v: Option<&Value>| -> Result<Vec<String>> {
            match v {
                None | Some(Value::Null) => Ok(vec![]),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string).ok_or_else(|| bad(f, x)))
                    .collect(),
                Some(o) => Err(bad(f, o)),
            }
        };
        let mut r = CniResult {
            cni_version: s(obj.get("cniVersion")).unwrap_or_default(),
            ..CniResult::default()
        };
        match obj.get("interfaces") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for (i, v) in a.iter().enumerate() {
                    let f = format!("interfaces[{i}]");
                    let o = v.as_object().ok_or_else(|| bad(&f, v))?;
                    let name = s(o.get("name")).ok_or_else(|| bad(&format!("{f}.name"), v))?;
                    r.interfaces.push(Interface {
                        name,
                        mac: s(o.get("mac")).filter(|m| !m.is_empty()),
                        sandbox: s(o.get("sandbox")).filter(|m| !m.is_empty()),
                    });
                }
            }
            Some(o) => return Err(bad("interfaces", o)),
        }
        match obj.get("ips") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for (i, v) in a.iter().enumerate() {
                    let f = format!("ips[{i}]");
                    let o = v.as_object().ok_or_else(|| bad(&f, v))?;
                    let address =
                        s(o.get("address")).ok_or_else(|| bad(&format!("{f}.address"), v))?;
                    let interface = match o.get("interface") {
                        None | Some(Value::Null) => None,
                        Some(n) => Some(
                            n.as_u64()
                                .and_then(|n| usize::try_from(n).ok())
                                .ok_or_else(|| bad(&format!("{f}.interface"), n))?,
                        ),
                    };
                    r.ips.push(IpConfig {
                        address,
                        gateway: ip(&format!("{f}.gateway"), o.get("gateway"))?,
                        interface,
                    });
                }
            }
            Some(o) => return Err(bad("ips", o)),
        }
        // 0.1/0.2: ip4 and ip6 objects, each with ip, gateway, routes.
        for fam in ["ip4", "ip6"] {
            if let Some(v) = obj.get(fam).filter(|v| !v.is_null()) {
                let o = v.as_object().ok_or_else(|| bad(fam, v))?;
                let address = s(o.get("ip")).ok_or_else(|| bad(&format!("{fam}.ip"), v))?;
                r.ips.push(IpConfig {
                    address,
                    gateway: ip(&format!("{fam}.gateway"), o.get("gateway"))?,
                    interface: None,
                });
                if let Some(Value::Array(routes)) = o.get("routes") {
                    for rt in routes {
                        if let Some(dst) = s(rt.get("dst")) {
                            r.routes.push(Route {
                                dst,
                                gw: ip(&format!("{fam}.routes.gw"), rt.get("gw"))?,
                            });
                        }
                    }
                }
            }
        }
        match obj.get("routes") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for (i, v) in a.iter().enumerate() {
                    let f = format!("routes[{i}]");
                    let dst = s(v.get("dst")).ok_or_else(|| bad(&format!("{f}.dst"), v))?;
                    r.routes.push(Route {
                        dst,
                        gw: ip(&format!("{f}.gw"), v.get("gw"))?,
                    });
                }
            }
            Some(o) => return Err(bad("routes", o)),
        }
        match obj.get("dns") {
            None | Some(Value::Null) => {}
            Some(Value::Object(d)) => {
                r.dns = Dns {
                    nameservers: strings("dns.nameservers", d.get("nameservers"))?,
                    domain: s(d.get("domain")).filter(|x| !x.is_empty()),
                    search: strings("dns.search", d.get("search"))?,
                    options: strings("dns.options", d.get("options"))?,
                }
            }
            Some(o) => return Err(bad("dns", o)),
        }
        r.raw = raw;
        Ok(r)
    }

    /// The addresses on interfaces inside `sandbox` (or, when no address names its
    /// interface, every address).
    pub fn container_ips(&self) -> Vec<IpAddr> {
        self.ips
            .iter()
            .filter(|ip| match ip.interface {
                Some(i) => self
                    .interfaces
                    .get(i)
                    .map(|itf| itf.sandbox.is_some())
                    .unwrap_or(true),
                None => true,
            })
            .filter_map(IpConfig::ip)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Running plugins

/// The CNI runtime: where plugins are found, how long one may run.
#[derive(Debug, Clone)]
pub struct Cni {
    /// Directories searched for a plugin's `type`, in order (also `CNI_PATH`).
    pub plugin_dirs: Vec<PathBuf>,
    /// How long a plugin may run before it (and its process group) is killed.
    pub timeout: Duration,
}

/// What a plugin printed and how it ended.
struct Output {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// The context of one plugin call, for errors.
struct Call<'a> {
    network: &'a str,
    plugin: &'a str,
    command: &'a str,
}

impl Call<'_> {
    fn err(&self, code: u32, msg: impl Into<String>, details: impl Into<String>) -> Error {
        Error::Plugin {
            network: self.network.to_string(),
            plugin: self.plugin.to_string(),
            command: self.command.to_string(),
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }
}

fn excerpt(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    if s.chars().count() > 400 {
        format!("{}...", s.chars().take(400).collect::<String>())
    } else {
        s.to_string()
    }
}

type VersionKey = (PathBuf, Option<SystemTime>, u64);

fn version_memo() -> &'static Mutex<HashMap<VersionKey, Vec<String>>> {
    static MEMO: OnceLock<Mutex<HashMap<VersionKey, Vec<String>>>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Default for Cni {
    /// [`Cni::default_dirs`], [`DEFAULT_TIMEOUT`].
    fn default() -> Cni {
        Cni::new(Cni::default_dirs())
    }
}

impl Cni {
    /// A runtime searching `dirs`, with the default timeout.
    pub fn new(dirs: Vec<PathBuf>) -> Cni {
        Cni {
            plugin_dirs: dirs,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same runtime with another plugin timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Cni {
        self.timeout = timeout;
        self
    }

    /// `$CNI_PATH` (a colon list) when set and not empty, else `/usr/lib/cni`,
    /// `/opt/cni/bin`, `/usr/libexec/cni`.
    pub fn default_dirs() -> Vec<PathBuf> {
        if let Some(p) = std::env::var_os("CNI_PATH") {
            let dirs: Vec<PathBuf> = std::env::split_paths(&p)
                .filter(|d| !d.as_os_str().is_empty())
                .collect();
            if !dirs.is_empty() {
                return dirs;
            }
        }
        ["/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni"]
            .iter()
            .map(PathBuf::from)
            .collect()
    }

    fn dirs_text(&self) -> String {
        self.plugin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The executable for a plugin `type`: the first file of that name in
    /// [`Cni::plugin_dirs`] that can be executed. The error names the type and the dirs.
    pub fn find(&self, plugin_type: &str) -> Result<PathBuf> {
        if !valid_type(plugin_type) {
            return Err(invalid(
                "plugin type",
                format!("{plugin_type:?} is not a plugin file name"),
            ));
        }
        for d in &self.plugin_dirs {
            let p = d.join(plugin_type);
            if let Ok(m) = fs::metadata(&p) {
                if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                    return Ok(p);
                }
            }
        }
        Err(Error::Plugin {
            network: String::new(),
            plugin: plugin_type.to_string(),
            command: "find".into(),
            code: 0,
            msg: format!(
                "no executable {plugin_type:?} in the CNI plugin directories {}",
                if self.plugin_dirs.is_empty() {
                    "(none given)".to_string()
                } else {
                    self.dirs_text()
                }
            ),
            details: String::new(),
        })
    }

    fn find_for(&self, call: &Call<'_>) -> Result<PathBuf> {
        self.find(call.plugin).map_err(|e| match e {
            Error::Plugin { msg, .. } => call.err(0, msg, ""),
            other => other,
        })
    }

    /// Runs `exe` with `env` and `stdin`, killing its process group at the timeout.
    fn exec(
        &self,
        call: &Call<'_>,
        exe: &Path,
        env: &[(&str, OsString)],
        stdin: &[u8],
    ) -> Result<Output> {
        let mut cmd = Command::new(exe);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CNI_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env(
            "CNI_PATH",
            std::env::join_paths(&self.plugin_dirs).unwrap_or_default(),
        );
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| call.err(0, format!("cannot run {}: {e}", exe.display()), ""))?;
        let pid = child.id() as i32;
        let kill_group = || {
            // SAFETY: kill(2) with a negative pid signals the process group the plugin
            // leads (made by process_group(0)); it touches no memory.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        };
        // Pipes are served by threads so that a plugin that writes a lot, or reads
        // nothing, cannot block us; buffers are shared so that what was printed before a
        // timeout is kept.
        let mut input = child.stdin.take();
        let data = stdin.to_vec();
        std::thread::spawn(move || {
            // A plugin that exits before reading its config must give this write EPIPE,
            // not kill a caller that leaves SIGPIPE at its default (a C program): the
            // signal is blocked on this thread, and dropped with it.
            let mut pipe = nix::sys::signal::SigSet::empty();
            pipe.add(nix::sys::signal::Signal::SIGPIPE);
            let _ = pipe.thread_block();
            if let Some(w) = input.as_mut() {
                let _ = w.write_all(&data);
            }
            drop(input);
        });
        let out_buf = Arc::new(Mutex::new(Vec::new()));
        let err_buf = Arc::new(Mutex::new(Vec::new()));
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .zip([out_buf.clone(), err_buf.clone()])
        .map(|(r, buf)| {
            let (done, wait) = mpsc::channel::<()>();
            std::thread::spawn(move || {
                let _done = done;
                let Some(mut r) = r else { return };
                let mut chunk = [0u8; 8192];
                loop {
                    match r.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => {
                            if let Ok(mut b) = buf.lock() {
                                b.extend_from_slice(&chunk[..n]);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            });
            wait
        })
        .collect();
        let deadline = Instant::now() + self.timeout;
        // A thread waits for the plugin, so that its end is seen at once; the timeout is
        // a receive with a deadline.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(self.timeout) {
            Ok(Ok(st)) => st,
            Ok(Err(e)) => {
                kill_group();
                return Err(call.err(0, format!("waiting for {}: {e}", exe.display()), ""));
            }
            Err(_) => {
                kill_group();
                let _ = rx.recv_timeout(Duration::from_secs(5));
                let stderr = err_buf.lock().map(|b| excerpt(&b)).unwrap_or_default();
                return Err(call.err(
                    0,
                    format!("killed after {:?} (the plugin timeout)", self.timeout),
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!("stderr: {stderr}")
                    },
                ));
            }
        };
        // The plugin is gone, and what it printed is in the pipes; something it left
        // behind may still hold them open (a daemon it started): wait a moment for the
        // readers, then take what they read.
        let grace = deadline.min(Instant::now() + EXIT_GRACE);
        for done in readers {
            let left = grace.saturating_duration_since(Instant::now());
            let _ = done.recv_timeout(left);
        }
        let stdout = out_buf.lock().map(|b| b.clone()).unwrap_or_default();
        let stderr = err_buf.lock().map(|b| b.clone()).unwrap_or_default();
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Runs one plugin and returns its stdout parsed as JSON (`Value::Null` when empty), or
    /// the error it reported.
    fn invoke(&self, call: &Call<'_>, env: &[(&str, OsString)], stdin: &Value) -> Result<Value> {
        let exe = self.find_for(call)?;
        let bytes =
            serde_json::to_vec(stdin).map_err(|e| call.err(0, format!("config: {e}"), ""))?;
        let out = self.exec(call, &exe, env, &bytes)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let parsed: Option<Value> = if text.trim().is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_str(&text).ok()
        };
        let stderr = excerpt(&out.stderr);
        if !out.status.success() {
            let how = match out.status.code() {
                Some(c) => format!("exit status {c}"),
                None => format!("killed by {}", out.status),
            };
            if let Some(Value::Object(o)) = &parsed {
                if o.contains_key("code") || o.contains_key("msg") {
                    let code = o.get("code").and_then(Value::as_u64).unwrap_or(0);
                    let msg = o
                        .get("msg")
                        .and_then(Value::as_str)
                        .unwrap_or("(no msg)")
                        .to_string();
                    let details = o
                        .get("details")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    return Err(call.err(u32::try_from(code).unwrap_or(u32::MAX), msg, details));
                }
            }
            let mut details = Vec::new();
            if !text.trim().is_empty() {
                details.push(format!("stdout: {}", excerpt(&out.stdout)));
            }
            if !stderr.is_empty() {
                details.push(format!("stderr: {stderr}"));
            }
            return Err(call.err(
                0,
                format!("failed ({how}) without a CNI error object"),
                details.join("; "),
            ));
        }
        match parsed {
            Some(v) => Ok(v),
            None => Err(call.err(
                0,
                "printed something that is not JSON",
                format!(
                    "stdout: {}{}",
                    excerpt(&out.stdout),
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!("; stderr: {stderr}")
                    }
                ),
            )),
        }
    }

    /// The configuration written to plugin `i`'s stdin for an attachment command.
    fn request(
        list: &ConfList,
        i: usize,
        version: &str,
        rt: Option<&RuntimeConf>,
        prev: Option<&Value>,
    ) -> Value {
        let mut conf = list.plugins.get(i).cloned().unwrap_or_default();
        let caps = conf.remove("capabilities");
        conf.insert("cniVersion".into(), Value::String(version.to_string()));
        conf.insert("name".into(), Value::String(list.name.clone()));
        conf.retain(|k, _| !k.starts_with("cni.dev/"));
        if let Some(rt) = rt {
            let mut rc = match conf.remove("runtimeConfig") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            if let Some(Value::Object(caps)) = caps {
                for (cap, on) in caps {
                    if on == Value::Bool(true) {
                        if let Some(arg) = rt.capability_args.get(&cap) {
                            rc.insert(cap, arg.clone());
                        }
                    }
                }
            }
            if !rc.is_empty() {
                conf.insert("runtimeConfig".into(), Value::Object(rc));
            }
        }
        match prev {
            Some(p) if !p.is_null() => {
                conf.insert("prevResult".into(), p.clone());
            }
            _ => {
                conf.remove("prevResult");
            }
        }
        Value::Object(conf)
    }

    fn attach_env(command: &str, rt: &RuntimeConf) -> Vec<(&'static str, OsString)> {
        vec![
            ("CNI_COMMAND", command.into()),
            ("CNI_CONTAINERID", rt.container_id.clone().into()),
            (
                "CNI_NETNS",
                rt.netns
                    .as_ref()
                    .map(|p| p.as_os_str().to_owned())
                    .unwrap_or_default(),
            ),
            ("CNI_IFNAME", rt.ifname.clone().into()),
            ("CNI_ARGS", rt.args_env().into()),
        ]
    }

    /// ADD: runs the plugins in order, each given the previous one's result as
    /// `prevResult`; the last result is returned. The first error stops the chain (the
    /// caller must DEL what was half made).
    pub fn add(&self, list: &ConfList, rt: &RuntimeConf) -> Result<CniResult> {
        rt.validate("ADD", true)?;
        let env = Self::attach_env("ADD", rt);
        let mut prev: Option<Value> = None;
        for i in 0..list.plugins.len() {
            let call = Call {
                network: &list.name,
                plugin: list.plugin_type(i),
                command: "ADD",
            };
            let req = Self::request(list, i, &list.cni_version, Some(rt), prev.as_ref());
            let out = self.invoke(&call, &env, &req)?;
            if !out.is_object() {
                return Err(call.err(
                    0,
                    "printed no result object",
                    format!("stdout: {}", excerpt(out.to_string().as_bytes())),
                ));
            }
            prev = Some(out);
        }
        let raw = prev.unwrap_or(Value::Null);
        CniResult::from_value(raw).map_err(|e| Error::Plugin {
            network: list.name.clone(),
            plugin: list
                .plugin_type(list.plugins.len().saturating_sub(1))
                .to_string(),
            command: "ADD".into(),
            code: 0,
            msg: format!("result not understood: {e}"),
            details: String::new(),
        })
    }

    /// CHECK: every plugin, in order, given the cached ADD result as `prevResult`. Skipped
    /// when the list says `disableCheck`; refused for lists older than CNI 0.4.0.
    pub fn check(&self, list: &ConfList, rt: &RuntimeConf, prev: &Value) -> Result<()> {
        if list.disable_check {
            return Ok(());
        }
        if !version_at_least(&list.cni_version, "0.4.0") {
            return Err(invalid(
                format!("network {:?} cniVersion", list.name),
                format!("{} has no CHECK (it came in 0.4.0)", list.cni_version),
            ));
        }
        rt.validate("CHECK", true)?;
        let env = Self::attach_env("CHECK", rt);
        for i in 0..list.plugins.len() {
            let call = Call {
                network: &list.name,
                plugin: list.plugin_type(i),
                command: "CHECK",
            };
            let req = Self::request(list, i, &list.cni_version, Some(rt), Some(prev));
            self.invoke(&call, &env, &req)?;
        }
        Ok(())
    }

    /// DEL: every plugin in reverse order, given the cached ADD result as `prevResult`
    /// (from CNI 0.4.0 on). Every plugin is run even when one fails; the first error is
    /// returned.
    pub fn del(&self, list: &ConfList, rt: &RuntimeConf, prev: Option<&Value>) -> Result<()> {
        rt.validate("DEL", false)?;
        let env = Self::attach_env("DEL", rt);
        let prev = prev.filter(|_| version_at_least(&list.cni_version, "0.4.0"));
        let mut errors = Vec::new();
        for i in (0..list.plugins.len()).rev() {
            let call = Call {
                network: &list.name,
                plugin: list.plugin_type(i),
                command: "DEL",
            };
            let req = Self::request(list, i, &list.cni_version, Some(rt), prev);
            if let Err(e) = self.invoke(&call, &env, &req) {
                errors.push(e);
            }
        }
        first_of(errors)
    }

    /// Whether plugin `i` of `list` speaks CNI 1.1.0 (VERSION lists it). A plugin that
    /// cannot be found or asked is an error.
    fn speaks_1_1(&self, list: &ConfList, i: usize) -> Result<bool> {
        let t = list.plugin_type(i);
        let v = self.versions(t).map_err(|e| match e {
            Error::Plugin {
                plugin,
                command,
                code,
                msg,
                details,
                ..
            } => Error::Plugin {
                network: list.name.clone(),
                plugin,
                command,
                code,
                msg,
                details,
            },
            other => other,
        })?;
        Ok(v.iter().any(|x| parse_version(x) >= parse_version("1.1.0")))
    }

    /// GC: every plugin that speaks CNI 1.1.0 is told the attachments still valid
    /// (`cni.dev/valid-attachments`, of `(container id, ifname)`); it removes what belongs to
    /// others. Errors do not stop the others; the first is returned. Nothing is run when
    /// the list says `disableGC`.
    pub fn gc(&self, list: &ConfList, valid: &[(String, String)]) -> Result<()> {
        if list.disable_gc {
            return Ok(());
        }
        let attachments: Vec<Value> = valid
            .iter()
            .map(|(id, ifname)| json!({"containerID": id, "ifname": ifname}))
            .collect();
        let version = max_version(&list.cni_version, "1.1.0");
        let env = [("CNI_COMMAND", OsString::from("GC"))];
        let mut errors = Vec::new();
        for i in 0..list.plugins.len() {
            match self.speaks_1_1(list, i) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
            let call = Call {
                network: &list.name,
                plugin: list.plugin_type(i),
                command: "GC",
            };
            let mut req = Self::request(list, i, &version, None, None);
            if let Value::Object(m) = &mut req {
                m.insert(
                    "cni.dev/valid-attachments".into(),
                    Value::Array(attachments.clone()),
                );
            }
            if let Err(e) = self.invoke(&call, &env, &req) {
                errors.push(e);
            }
        }
        first_of(errors)
    }

    /// STATUS: asks every plugin that speaks CNI 1.1.0 whether it can serve ADD; the first
    /// that cannot is the error (codes 50, 51).
    pub fn status(&self, list: &ConfList) -> Result<()> {
        let version = max_version(&list.cni_version, "1.1.0");
        let env = [("CNI_COMMAND", OsString::from("STATUS"))];
        for i in 0..list.plugins.len() {
            if !self.speaks_1_1(list, i)? {
                continue;
            }
            let call = Call {
                network: &list.name,
                plugin: list.plugin_type(i),
                command: "STATUS",
            };
            let req = Self::request(list, i, &version, None, None);
            self.invoke(&call, &env, &req)?;
        }
        Ok(())
    }

    /// VERSION: the CNI versions a plugin supports, asked once per executable (path and
    /// modification time) in this process.
    pub fn versions(&self, plugin_type: &str) -> Result<Vec<String>> {
        let exe = self.find(plugin_type)?;
        let key = {
            let m = fs::metadata(&exe).map_err(io_err("stat", &exe))?;
            (exe.clone(), m.modified().ok(), m.len())
        };
        if let Some(v) = version_memo()
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(v);
        }
        let call = Call {
            network: "",
            plugin: plugin_type,
            command: "VERSION",
        };
        let env = [("CNI_COMMAND", OsString::from("VERSION"))];
        let out = self.invoke(&call, &env, &json!({"cniVersion": MAX_VERSION}))?;
        let list = out
            .get("supportedVersions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .ok_or_else(|| {
                call.err(
                    0,
                    "VERSION answer has no supportedVersions list",
                    format!("stdout: {}", excerpt(out.to_string().as_bytes())),
                )
            })?;
        if let Ok(mut m) = version_memo().lock() {
            m.insert(key, list.clone());
        }
        Ok(list)
    }
}

/// The first of `errors` (none: success); when there were more, its details say how many
/// and what they were, so that no failure of a DEL or GC goes unseen.
fn first_of(errors: Vec<Error>) -> Result<()> {
    let mut it = errors.into_iter();
    let Some(mut first) = it.next() else {
        return Ok(());
    };
    let rest: Vec<String> = it.map(|e| e.to_string()).collect();
    if !rest.is_empty() {
        let more = format!("{} more error(s): {}", rest.len(), rest.join("; "));
        match &mut first {
            Error::Plugin { details, .. } if details.is_empty() => *details = more,
            Error::Plugin { details, .. } => *details = format!("{details}; {more}"),
            _ => {}
        }
    }
    Err(first)
}

fn max_version(a: &str, b: &str) -> String {
    if parse_version(a) >= parse_version(b) {
        a.to_string()
    } else {
        b.to_string()
    }
}

// ---------------------------------------------------------------------------------------
// The cache of results

/// One attachment as it was made: what ADD was given, and its result. Written before the
/// ADD (with `result: None`), so that an attach killed half way is still found and undone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub container_id: String,
    pub network: String,
    pub ifname: String,
    pub netns: Option<PathBuf>,
    /// The configuration list as used (DEL must see what ADD saw).
    pub config: Value,
    pub capability_args: Map<String, Value>,
    pub args: Vec<(String, String)>,
    /// The ADD result; `None` while the ADD has not finished.
    pub result: Option<Value>,
    /// The state root of the runtime that made it (whose containers it belongs to).
    pub owner: PathBuf,
}

impl CacheEntry {
    /// The configuration list the ADD ran with (errors name the entry).
    pub fn conf_list(&self) -> Result<ConfList> {
        let origin = PathBuf::from(format!(
            "CNI cache entry {}@{}@{}.json",
            self.container_id, self.network, self.ifname
        ));
        ConfList::parse(self.config.to_string().as_bytes(), &origin)
    }

    /// The attachment parameters to run CHECK or DEL with.
    pub fn runtime_conf(&self) -> RuntimeConf {
        RuntimeConf {
            container_id: self.container_id.clone(),
            netns: self.netns.clone(),
            ifname: self.ifname.clone(),
            args: self.args.clone(),
            capability_args: self.capability_args.clone(),
        }
    }
}

/// The cache of attachments: one JSON file per `(container, network, ifname)` in a
/// directory, `<container>@<network>@<ifname>.json`, each written whole (a temporary file
/// renamed over it).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (made on the first [`Cache::put`]).
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds (or would hold) one attachment's entry.
    pub fn file(&self, id: &str, network: &str, ifname: &str) -> Result<PathBuf> {
        self.path(id, network, ifname)
    }

    fn path(&self, id: &str, network: &str, ifname: &str) -> Result<PathBuf> {
        // Ids and network names are CNI names (no '@'), so the first two '@' end them:
        // one file per attachment, which `-` (allowed in both) could not promise.
        for (what, v) in [("container id", id), ("network", network)] {
            if !valid_name(v) {
                return Err(invalid(
                    format!("CNI cache {what}"),
                    format!("{v:?} (want an alphanumeric then alphanumerics, '_', '.' or '-')"),
                ));
            }
        }
        if ifname.is_empty()
            || ifname.contains('/')
            || ifname.contains('\0')
            || ifname.starts_with('.')
        {
            return Err(invalid(
                "CNI cache ifname",
                format!("{ifname:?} cannot name a file"),
            ));
        }
        Ok(self.dir.join(format!("{id}@{network}@{ifname}.json")))
    }

    /// Writes `e`, replacing any entry of the same attachment, atomically (readers see the
    /// old entry or the new one, never a part).
    pub fn put(&self, e: &CacheEntry) -> Result<()> {
        let path = self.path(&e.container_id, &e.network, &e.ifname)?;
        fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        static N: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let bytes = serde_json::to_vec_pretty(e)
            .map_err(|err| invalid("CNI cache entry", err.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            if let Ok(d) = fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        write().map_err(|err| {
            let _ = fs::remove_file(&tmp);
            Error::Io {
                op: "write",
                path: path.clone(),
                source: err,
            }
        })
    }

    fn read(path: &Path) -> Result<Option<CacheEntry>> {
        match fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                invalid(
                    path.display().to_string(),
                    format!("not a CNI cache entry: {e}"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", path)(e)),
        }
    }

    /// The entry of one attachment, if there is one.
    pub fn get(&self, id: &str, network: &str, ifname: &str) -> Result<Option<CacheEntry>> {
        Self::read(&self.path(id, network, ifname)?)
    }

    /// Removes the entry of one attachment (none is fine).
    pub fn remove(&self, id: &str, network: &str, ifname: &str) -> Result<()> {
        let p = self.path(id, network, ifname)?;
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }

    /// Every entry, sorted by file name (no directory: none).
    pub fn list(&self) -> Result<Vec<CacheEntry>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err("read", &self.dir)(e)),
        };
        let mut paths = Vec::new();
        for ent in rd {
            let ent = ent.map_err(io_err("read", &self.dir))?;
            let name = ent.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            paths.push(ent.path());
        }
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            if let Some(e) = Self::read(&p)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Every entry of one container.
    pub fn of_container(&self, id: &str) -> Result<Vec<CacheEntry>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|e| e.container_id == id)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare() {
        assert_eq!(parse_version("1.0.0"), Some((1, 0, 0)));
        assert_eq!(parse_version("0.4"), Some((0, 4, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(version_at_least("1.0.0", "0.4.0"));
        assert!(!version_at_least("0.3.1", "0.4.0"));
        assert_eq!(max_version("1.0.0", "1.1.0"), "1.1.0");
    }

    #[test]
    fn conflist_parse_and_round_trip() {
        let text = br#"{"cniVersion":"1.0.0","cniVersions":["0.4.0","1.0.0","9.9.9"],"name":"n1",
            "disableCheck":true,"plugins":[{"type":"bridge","bridge":"b0","x":{"y":1}},
            {"type":"portmap","capabilities":{"portMappings":true}}]}"#;
        let l = ConfList::parse(text, Path::new("/x/n1.conflist")).unwrap();
        assert_eq!(l.cni_version, "1.0.0");
        assert!(l.disable_check && !l.disable_gc);
        assert_eq!(l.plugins.len(), 2);
        assert_eq!(l.plugin_type(1), "portmap");
        let again = ConfList::parse(l.to_json().to_string().as_bytes(), Path::new("a")).unwrap();
        assert_eq!(again, l);
        assert_eq!(again.plugins[0]["x"]["y"], 1);
    }

    #[test]
    fn conflist_errors_name_file_and_key() {
        let cases: &[(&str, &str)] = &[
            (r#"{"cniVersion":"1.0.0","plugins":[{"type":"a"}]}"#, "name"),
            (
                r#"{"cniVersion":"1.0.0","name":"-x","plugins":[{"type":"a"}]}"#,
                "name",
            ),
            (r#"{"name":"n","plugins":[{"type":"a"}]}"#, "cniVersion"),
            (
                r#"{"cniVersion":"2.0.0","name":"n","plugins":[{"type":"a"}]}"#,
                "cniVersion",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
                "plugins",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"t":"a"}]}"#,
                "plugins[0].type",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a/b"}]}"#,
                "plugins[0].type",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","disableCheck":"yes","plugins":[{"type":"a"}]}"#,
                "disableCheck",
            ),
        ];
        for (text, key) in cases {
            let e = ConfList::parse(text.as_bytes(), Path::new("/etc/x.conflist")).unwrap_err();
            let s = e.to_string();
            assert!(
                s.contains("/etc/x.conflist") && s.contains(key),
                "{text}: {s}"
            );
        }
        let e = ConfList::parse(b"{nope", Path::new("/etc/y.conflist")).unwrap_err();
        assert!(e.to_string().contains("/etc/y.conflist"), "{e}");
    }

    #[test]
    fn single_conf_becomes_a_list() {
        let l = ConfList::parse(
            br#"{"cniVersion":"0.4.0","name":"one","type":"bridge","bridge":"b"}"#,
            Path::new("one.conf"),
        )
        .unwrap();
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(l.plugins[0]["bridge"], "b");
        assert_eq!(l.cni_version, "0.4.0");
    }

    #[test]
    fn request_injects_name_version_runtime_config_prev() {
        let l = ConfList::parse(
            br#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","capabilities":{"portMappings":true,"bandwidth":false}}]}"#,
            Path::new("n"),
        )
        .unwrap();
        let mut rt = RuntimeConf::default();
        rt.capability_args
            .insert("portMappings".into(), json!([{"hostPort": 1}]));
        rt.capability_args
            .insert("bandwidth".into(), json!({"ingressRate": 1}));
        rt.capability_args.insert("ips".into(), json!(["1.2.3.4"]));
        let prev = json!({"cniVersion":"1.0.0"});
        let r = Cni::request(&l, 0, "1.0.0", Some(&rt), Some(&prev));
        assert_eq!(r["name"], "n");
        assert_eq!(r["cniVersion"], "1.0.0");
        assert!(r.get("capabilities").is_none());
        assert_eq!(
            r["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 1}]})
        );
        assert_eq!(r["prevResult"], prev);
    }

    #[test]
    fn results_of_each_version_are_read() {
        let v1 = json!({"cniVersion":"1.0.0",
            "interfaces":[{"name":"cni0","mac":"aa"},{"name":"eth0","sandbox":"/run/netns/x"}],
            "ips":[{"address":"10.1.0.2/24","gateway":"10.1.0.1","interface":1}],
            "routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["1.1.1.1"]}});
        let r = CniResult::from_value(v1.clone()).unwrap();
        assert_eq!(r.interfaces[1].sandbox.as_deref(), Some("/run/netns/x"));
        assert_eq!(r.ips[0].interface, Some(1));
        assert_eq!(
            r.container_ips(),
            vec!["10.1.0.2".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(r.dns.nameservers, vec!["1.1.1.1"]);
        assert_eq!(r.raw, v1);
        let v04 = json!({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.2.0.3/16"}]});
        assert_eq!(
            CniResult::from_value(v04).unwrap().ips[0].address,
            "10.2.0.3/16"
        );
        let v02 = json!({"cniVersion":"0.2.0","ip4":{"ip":"10.3.0.4/24","gateway":"10.3.0.1"}});
        let r = CniResult::from_value(v02).unwrap();
        assert_eq!(r.ips[0].gateway, Some("10.3.0.1".parse().unwrap()));
        let e = CniResult::from_value(json!({"ips":"no"})).unwrap_err();
        assert!(e.to_string().contains("ips"), "{e}");
    }

    #[test]
    fn runtime_conf_is_checked() {
        let ok = RuntimeConf {
            container_id: "c1".into(),
            netns: Some("/run/netns/x".into()),
            ifname: "eth0".into(),
            ..RuntimeConf::default()
        };
        ok.validate("ADD", true).unwrap();
        let mut bad = ok.clone();
        bad.container_id = "../x".into();
        assert!(bad
            .validate("ADD", true)
            .unwrap_err()
            .to_string()
            .contains("CNI_CONTAINERID"));
        let mut bad = ok.clone();
        bad.ifname = "a-name-too-long-for-linux".into();
        assert!(bad
            .validate("ADD", true)
            .unwrap_err()
            .to_string()
            .contains("CNI_IFNAME"));
        let mut bad = ok.clone();
        bad.netns = None;
        assert!(bad.validate("ADD", true).is_err());
        bad.validate("DEL", false).unwrap();
    }
}
