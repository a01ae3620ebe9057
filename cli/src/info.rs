//! `corral info` (what `docker info` shows that applies to a daemonless runtime) and
//! `corral version`. Both only read: the store is opened read-only
//! ([`corral_image::ImageStore::open_read`]), the state root listed without being made, the
//! networks' files read, never written; a user who may not read the store still gets the
//! host's figures, and a warning says what could not be read.

use std::path::{Path, PathBuf};

use corral_image::ImageStore;

use crate::args::Cli;
use crate::args_image::{InfoArgs, VersionArgs};
use crate::docker_image::print_format;
use crate::error::R;
use crate::image::store_dir;
use crate::output::printable;

/// Bytes under `p` on disk (blocks), not following symlinks.
pub fn du(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    let mut n = md.blocks() * 512;
    if md.is_dir() {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                n += du(&e.path());
            }
        }
    }
    n
}

/// A runtime container's status from its state file, read without a lock and without
/// writing anything (a recorded process that is gone is `Stopped`; one past its start gate
/// is `Running`, which a start does not write).
pub fn runtime_status(root: &Path, id: &str) -> Option<runtime::Status> {
    runtime::Container::peeked_state(root, id)
        .ok()
        .map(|st| st.status)
}

/// The store's volumes: name, bytes of its data, whether a container uses it (read only).
pub fn volumes(store: &Path) -> Vec<(String, u64, bool)> {
    corral_image::volume::list(store)
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            let bytes = du(&corral_image::volume::data_dir(store, &v.name));
            let used = !corral_image::volume::users(store, &v.name).is_empty();
            (v.name, bytes, used)
        })
        .collect()
}

/// The engine over the store and state root of this command.
pub fn engine(store: &Path, root: &Path) -> corral_engine::Engine {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("corral"));
    corral_engine::Engine::new(store, root, exe)
}

/// The containers under `root` as `info` counts them: the engine's (running, paused,
/// created or exited), then the runtime's own that are not the engine's (made by the runc
/// verbs or `run --image`): (running, paused, stopped).
fn count_containers(store: &Path, root: &Path, runtime_ids: &[String]) -> (usize, usize, usize) {
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let listed = engine(store, root).list(true).unwrap_or_default();
    for c in &listed {
        match c.status {
            _ if c.paused => paused += 1,
            corral_engine::Status::Running | corral_engine::Status::Restarting => running += 1,
            _ => stopped += 1,
        }
    }
    for id in runtime_ids {
        if listed.iter().any(|c| c.id == *id) {
            continue;
        }
        match runtime_status(root, id) {
            Some(runtime::Status::Running) => running += 1,
            Some(runtime::Status::Paused) => paused += 1,
            _ => stopped += 1,
        }
    }
    (running, paused, stopped)
}

/// `statfs` magic numbers -> docker's names of backing filesystems.
fn fs_name(magic: i64) -> String {
    match magic {
        0xEF53 => "extfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x2FC1_2FC1 => "zfs".into(),
        0xF2F5_2010 => "f2fs".into(),
        0x6969 => "nfs".into(),
        0x5265_4973 => "reiserfs".into(),
        0x0102_1997 => "v9fs".into(),
        0xFF53_4D42 => "cifs".into(),
        0x7275 => "romfs".into(),
        0x7366_7173 => "squashfs".into(),
        0x6573_5546 => "fuse".into(),
        m => format!("<unknown> (0x{m:x})"),
    }
}

/// The directory itself, or its nearest existing parent (a store not made yet lives on the
/// filesystem of its parent).
fn existing(p: &Path) -> PathBuf {
    let mut p = p.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return PathBuf::from("/");
        }
    }
    p
}

/// Backing filesystem of `dir` and whether it records d_type (the `.` entry has a type on
/// a filesystem that does; nothing is written to find out).
fn backing(dir: &Path) -> (String, Option<bool>) {
    let dir = existing(dir);
    let fsname = nix::sys::statfs::statfs(&dir)
        .map(|s| fs_name(s.filesystem_type().0))
        .unwrap_or_else(|e| format!("<unknown> ({e})"));
    let dtype = nix::dir::Dir::open(
        &dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .ok()
    .and_then(|mut d| {
        d.iter()
            .flatten()
            .find(|e| e.file_name().to_bytes() == b".")
            .map(|e| e.file_type().is_some())
    });
    (fsname, dtype)
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    (
        get("PRETTY_NAME").unwrap_or_else(|| "Linux".into()),
        get("VERSION_ID").unwrap_or_default(),
    )
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Bytes as docker's `units.BytesSize` (base 1024: `7.763GiB`).
fn bytes_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut f = n as f64;
    let mut u = 0;
    while f >= 1024.0 && u + 1 < UNITS.len() {
        f /= 1024.0;
        u += 1;
    }
    let s = format!("{f:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{}", UNITS[u])
}

/// The CNI plugins found in the plugin dirs (executables, sorted, each once).
fn cni_plugins(dirs: &[PathBuf]) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut v: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten())
        .filter(|e| {
            e.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The networks of the store, from their files (`networks/NAME.conflist`), read only.
fn network_names(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join("networks"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".conflist"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn proc_bool(p: &str) -> Option<bool> {
    std::fs::read_to_string(p).ok().map(|s| s.trim() == "1")
}

/// Does the kernel account swap in the memory controller (so `--memory-swap` is enforced)?
fn swap_limit(h: &cgroup::Hierarchy) -> bool {
    for m in h.mounts() {
        if m.controllers.iter().any(|c| c == "memory") {
            if !m.v2 {
                return m.mount_point.join("memory.memsw.limit_in_bytes").exists();
            }
            // cgroup2: the files are in every cgroup but the root; look at our own.
            let own = std::fs::read_to_string("/proc/self/cgroup")
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
                })
                .unwrap_or_default();
            let dir = m.mount_point.join(own.trim_start_matches('/'));
            return dir.join("memory.swap.max").exists()
                || std::fs::read_dir(&m.mount_point).is_ok_and(|rd| {
                    rd.flatten()
                        .any(|e| e.path().join("memory.swap.max").exists())
                });
        }
    }
    false
}

/// What `info` shows, as docker's JSON keys (`docker info --format json`).
fn gather(cli: &Cli, root: &Path) -> serde_json::Value {
    let dir = store_dir(cli);
    let mut warnings: Vec<String> = Vec::new();
    // Containers: the engine's (their records in the store), and the runtime's own under
    // the state root.
    let ids = match runtime::state::list_ids(root) {
        Ok(ids) => ids,
        Err(e) => {
            warnings.push(format!(
                "WARNING: the state root {} cannot be read: {e}",
                root.display()
            ));
            Vec::new()
        }
    };
    let (running, paused, stopped) = count_containers(&dir, root, &ids);
    let store = match ImageStore::open_read(&dir) {
        Ok(s) => s,
        Err(e) => {
            warnings.push(format!("WARNING: the image store cannot be read: {e}"));
            None
        }
    };
    let images = match store.as_ref().map(|s| s.images()) {
        Some(Ok(v)) => v.len(),
        Some(Err(e)) => {
            warnings.push(format!("WARNING: the image store's images: {e}"));
            0
        }
        None => 0,
    };
    let (fsname, dtype) = backing(&dir);
    if dtype == Some(false) {
        warnings.push(format!(
            "WARNING: {} does not record d_type: overlay may misbehave",
            dir.display()
        ));
    }
    let hier = cgroup::Hierarchy::detect();
    let (cg_version, swap) = match &hier {
        Ok(h) => {
            let v = match h.version() {
                cgroup::Version::V2 => "2",
                cgroup::Version::V1 => "1",
                cgroup::Version::Hybrid => {
                    warnings.push(
                        "WARNING: the host's cgroups are hybrid (v1 controllers and a cgroup2 \
                         mount): each controller is driven where it is mounted"
                            .into(),
                    );
                    "1"
                }
            };
            (v.to_string(), swap_limit(h))
        }
        Err(e) => {
            warnings.push(format!("WARNING: no cgroups found: {e}"));
            (String::new(), false)
        }
    };
    if !swap {
        warnings.push("WARNING: No swap limit support".into());
    }
    for (file, what) in [
        (
            "/proc/sys/net/bridge/bridge-nf-call-iptables",
            "bridge-nf-call-iptables",
        ),
        (
            "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
            "bridge-nf-call-ip6tables",
        ),
    ] {
        if proc_bool(file) != Some(true) {
            warnings.push(format!("WARNING: {what} is disabled"));
        }
    }
    if proc_bool("/proc/sys/net/ipv4/ip_forward") == Some(false) {
        warnings.push("WARNING: IPv4 forwarding is disabled".into());
    }
    let euid = nix::unistd::geteuid().as_raw();
    let sec = runtime::Security::detect();
    let mut security = vec!["name=seccomp,profile=builtin".to_string()];
    if sec.apparmor {
        security.insert(0, "name=apparmor".into());
    }
    if sec.selinux {
        security.push("name=selinux".into());
    }
    if euid != 0 {
        security.push("name=rootless".into());
    }
    if cg_version == "2" {
        security.push("name=cgroupns".into());
    }
    let uts = nix::sys::utsname::uname().ok();
    let kernel = uts
        .as_ref()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let arch = uts
        .as_ref()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_else(|| std::env::consts::ARCH.into());
    let (os, os_version) = os_release();
    let ncpu = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|i| set.is_set(*i).unwrap_or(false))
                .count()
        })
        .unwrap_or(1);
    let name = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id = std::fs::read_to_string("/etc/machine-id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let net = runtime::net::network::NetRoot::open(&dir);
    let plugins = cni_plugins(net.plugin_dirs());
    let version = env!("CARGO_PKG_VERSION");
    serde_json::json!({
        "ID": id,
        "Containers": running + paused + stopped,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay",
        "DriverStatus": [
            ["Backing Filesystem", fsname],
            ["Supports d_type", dtype.map_or("unknown".to_string(), |b| b.to_string())],
            ["Native Overlay Diff", "true"],
        ],
        "Plugins": {
            "Volume": ["local"],
            "Network": plugins,
            "Authorization": null,
            "Log": ["json-file"],
        },
        "MemoryLimit": true,
        "SwapLimit": swap,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": proc_bool("/proc/sys/net/ipv4/ip_forward").unwrap_or(false),
        "BridgeNfIptables": proc_bool("/proc/sys/net/bridge/bridge-nf-call-iptables")
            .unwrap_or(false),
        "BridgeNfIp6tables": proc_bool("/proc/sys/net/bridge/bridge-nf-call-ip6tables")
            .unwrap_or(false),
        "Debug": cli.debug,
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cg_version,
        "KernelVersion": kernel,
        "OperatingSystem": os,
        "OSVersion": os_version,
        "OSType": "linux",
        "Architecture": arch,
        "NCPU": ncpu,
        "MemTotal": mem_total(),
        "DockerRootDir": dir,
        "StateRoot": root,
        "Name": name,
        "ServerVersion": version,
        "Runtimes": {"corral": {"path": std::env::current_exe().unwrap_or_default()}},
        "DefaultRuntime": "corral",
        "Networks": network_names(&dir),
        "CNIPluginDirs": net.plugin_dirs(),
        "SecurityOptions": security,
        "Warnings": warnings,
    })
}

pub fn info(cli: &Cli, root: &Path, a: &InfoArgs) -> R {
    let v = gather(cli, root);
    if let Some(f) = &a.format {
        print_format(f, &v)?;
        return Ok(0);
    }
    let s = |k: &str| match &v[k] {
        serde_json::Value::String(s) => printable(s).into_owned(),
        other => other.to_string(),
    };
    let list = |k: &str| -> Vec<String> {
        v[k].as_array()
            .into_iter()
            .flatten()
            .map(|x| printable(x.as_str().unwrap_or_default()).into_owned())
            .collect()
    };
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(" Context:    default");
    println!(" Debug Mode: {}", cli.debug);
    println!();
    println!("Server:");
    println!(" Containers: {}", s("Containers"));
    println!("  Running: {}", s("ContainersRunning"));
    println!("  Paused: {}", s("ContainersPaused"));
    println!("  Stopped: {}", s("ContainersStopped"));
    println!(" Images: {}", s("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    for kv in v["DriverStatus"].as_array().into_iter().flatten() {
        println!(
            "  {}: {}",
            kv[0].as_str().unwrap_or_default(),
            printable(kv[1].as_str().unwrap_or_default())
        );
    }
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    println!(" Plugins:");
    println!("  Volume: local");
    let plugins: Vec<String> = v["Plugins"]["Network"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| printable(x.as_str().unwrap_or_default()).into_owned())
        .collect();
    println!("  Network: {}", plugins.join(" "));
    println!("  Log: json-file");
    println!(" Runtimes: corral");
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Security Options:");
    for o in list("SecurityOptions") {
        let mut parts = o.split(',');
        let name = parts.next().unwrap_or_default();
        println!("  {}", name.trim_start_matches("name="));
        for p in parts {
            if let Some((k, val)) = p.split_once('=') {
                let mut k = k.to_string();
                if let Some(first) = k.get(..1) {
                    k = first.to_uppercase() + &k[1..];
                }
                println!("   {k}: {val}");
            }
        }
    }
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", s("NCPU"));
    println!(
        " Total Memory: {}",
        bytes_size(v["MemTotal"].as_u64().unwrap_or(0))
    );
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" State Root: {}", s("StateRoot"));
    println!(" Debug Mode: {}", cli.debug);
    println!(" Networks: {}", list("Networks").join(" "));
    let dirs: Vec<String> = v["CNIPluginDirs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| printable(x.as_str().unwrap_or_default()).into_owned())
        .collect();
    println!(" CNI Plugin Dirs: {}", dirs.join(":"));
    let w = list("Warnings");
    if !w.is_empty() {
        println!();
        for l in w {
            println!("{l}");
        }
    }
    Ok(0)
}

/// Built into the binary by `build.rs`.
const GIT_COMMIT: &str = env!("CORRAL_GIT_COMMIT");
const RUSTC_VERSION: &str = env!("CORRAL_RUSTC_VERSION");
const BUILT: &str = env!("CORRAL_BUILT");

fn version_json() -> serde_json::Value {
    let os = std::env::consts::OS;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        a => a,
    };
    let v = env!("CARGO_PKG_VERSION");
    serde_json::json!({
        "Client": {
            "Version": v,
            "GitCommit": GIT_COMMIT,
            "RustVersion": RUSTC_VERSION,
            "BuildTime": BUILT,
            "Os": os,
            "Arch": arch,
            "Context": "default",
        },
        "Server": {
            "Platform": {"Name": "corral (no daemon)"},
            "Version": v,
            "Os": os,
            "Arch": arch,
            "Components": [
                {"Name": "corral", "Version": v, "Details": {"GitCommit": GIT_COMMIT}},
                {"Name": "OCI runtime spec", "Version": runtime::OCI_VERSION, "Details": {}},
            ],
        },
    })
}

pub fn version(a: &VersionArgs) -> R {
    let v = version_json();
    if let Some(f) = &a.format {
        print_format(f, &v)?;
        return Ok(0);
    }
    let c = &v["Client"];
    let get = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_string();
    println!("Client:");
    println!(" Version:           {}", get(&c["Version"]));
    println!(" Git commit:        {}", get(&c["GitCommit"]));
    println!(" Rust version:      {}", get(&c["RustVersion"]));
    println!(" Built:             {}", get(&c["BuildTime"]));
    println!(" OS/Arch:           {}/{}", get(&c["Os"]), get(&c["Arch"]));
    println!(" Context:           default");
    println!();
    println!("Server: corral (no daemon: the same binary)");
    println!(" Engine:");
    println!("  Version:          {}", get(&c["Version"]));
    println!("  Git commit:       {}", get(&c["GitCommit"]));
    println!("  OS/Arch:          {}/{}", get(&c["Os"]), get(&c["Arch"]));
    println!(" OCI runtime spec:");
    println!("  Version:          {}", runtime::OCI_VERSION);
    Ok(0)
}
