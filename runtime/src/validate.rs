//! One validator for every container, whatever made its spec (a bundle's `config.json`, a
//! [`crate::describe::Description`], a face's update): values the runtime-spec rules out
//! that the typed spec still accepts ("Runtimes MUST generate an error when invalid or
//! unsupported values are encountered"), fields that contradict each other (a hostname
//! without a uts namespace, id mappings without a user namespace...), and limits the kernel
//! would take wrongly. Each error names the field. runc's `libcontainer/configs/validate` is
//! the model: one pass over the whole config at create (before anything is made), the
//! resources part again at update, the process part again at exec ([`process`]).
//!
//! What needs the host beyond a `stat` (a namespace path that opens as the right kind, a
//! sysctl this kernel knows, a module that is loaded, a device that is there) is checked
//! where it is used, when the container is made.

use std::path::{Path, PathBuf};

use ns::Kind;
use oci_spec::runtime::{Linux, LinuxNamespaceType, LinuxResources, Process, Spec};

use crate::{Error, Result};

fn bad(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks a whole spec: `ociVersion`, annotations, the process ([`process`]), the
/// namespaces and what needs one, the mounts, devices and hooks, and the resources
/// ([`resources`]). Called for every bundle ([`crate::Bundle::load`],
/// [`crate::Bundle::from_spec`]) and again by create (a bundle's `spec` is public).
pub fn spec(spec: &Spec) -> Result<()> {
    crate::config::check_version(spec.version())?;
    if let Some(a) = spec.annotations() {
        if a.contains_key("") {
            return Err(bad("annotations", "a key is empty"));
        }
    }
    if let Some(p) = spec.process() {
        process(p)?;
        container_process(p)?;
    }
    hooks(spec)?;
    let Some(l) = spec.linux() else {
        return Ok(());
    };
    let nss = namespaces(l)?;
    id_maps(l, &nss)?;
    for (field, v) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if v.as_deref().is_some_and(|h| !h.is_empty()) && !nss.has(Kind::Uts) {
            return Err(bad(
                field,
                format!("setting the {field} needs a uts namespace"),
            ));
        }
    }
    sysctls(l, &nss)?;
    time_offsets(l, &nss)?;
    mount_namespace(spec, l, &nss)?;
    let mut devs: Vec<_> = l.net_devices().iter().flatten().map(|(h, _)| h).collect();
    devs.sort();
    if let Some(host) = devs.first() {
        if !nss.creates(Kind::Net) {
            return Err(bad(
                format!("linux.netDevices.{host}"),
                "moving a network device needs a new network namespace",
            ));
        }
    }
    // (`linux.cgroupsPath` in the systemd form `slice:prefix:name` is a cgroupfs path like
    // any other, as runc's cgroupfs driver takes it: see `crate::container::create`.)
    if l.intel_rdt().is_some() {
        let why = if Path::new("/sys/fs/resctrl").exists() {
            "not supported by corral yet"
        } else {
            "this host has no Intel RDT (/sys/fs/resctrl is missing)"
        };
        return Err(bad("linux.intelRdt", why));
    }
    if let Some(s) = l.seccomp() {
        if s.listener_metadata().is_some() && s.listener_path().is_none() {
            return Err(bad(
                "linux.seccomp.listenerMetadata",
                "set without linux.seccomp.listenerPath",
            ));
        }
    }
    if l.personality()
        .as_ref()
        .and_then(|p| p.flags().as_ref())
        .is_some_and(|f| !f.is_empty())
    {
        return Err(bad(
            "linux.personality.flags",
            "personality flags are not supported",
        ));
    }
    memory_policy(l)?;
    devices(l)?;
    mounts(spec)?;
    if let Some(r) = l.resources() {
        resources(r)?;
    }
    Ok(())
}

/// Checks a process, the container's (`process`) or one given to exec: arguments,
/// environment, working directory, rlimits, scheduler and I/O priority. Fields are named
/// `process.*` either way.
pub fn process(p: &Process) -> Result<()> {
    let args = p.args().as_deref().unwrap_or_default();
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(bad("process.args", "must not be empty"));
    }
    for (i, e) in p.env().iter().flatten().enumerate() {
        if !e.contains('=') {
            return Err(bad(
                format!("process.env[{i}]"),
                format!("{e:?} is not KEY=VALUE"),
            ));
        }
    }
    let cwd = p.cwd().to_string_lossy();
    if !cwd.starts_with('/') {
        return Err(bad(
            "process.cwd",
            format!("{cwd:?} is not an absolute path"),
        ));
    }
    let mut seen = Vec::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let name = r.typ();
        let field = format!("process.rlimits[{i}]");
        if seen.contains(&name) {
            return Err(bad(field, format!("{name} given twice")));
        }
        seen.push(name);
        if r.soft() > r.hard() {
            return Err(bad(
                field,
                format!(
                    "{name}: soft limit {} above hard limit {}",
                    r.soft(),
                    r.hard()
                ),
            ));
        }
    }
    if let Some(s) = p.scheduler() {
        scheduler(s)?;
    }
    if let Some(io) = p.io_priority() {
        // The class is an enum of the three the kernel knows; the level is 0 to 7.
        let prio = io.priority();
        if !(0..=7).contains(&prio) {
            return Err(bad(
                "process.ioPriority.priority",
                format!("{prio} is outside 0..7"),
            ));
        }
    }
    Ok(())
}

/// What only the container's own process has: `oomScoreAdj` and `execCPUAffinity` (which
/// is for the processes exec'd later, checked now).
fn container_process(p: &Process) -> Result<()> {
    if let Some(v) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&v) {
            return Err(bad(
                "process.oomScoreAdj",
                format!("{v} is outside -1000..1000"),
            ));
        }
    }
    if let Some(a) = p.exec_cpu_affinity() {
        crate::prepare::exec_cpu_affinity("process.execCPUAffinity", a)?;
    }
    Ok(())
}

/// `process.scheduler` (sched_setattr(2)): nice in -20..19, a priority for the real-time
/// policies only (1..99), runtime, deadline and period for SCHED_DEADLINE only.
fn scheduler(s: &oci_spec::runtime::Scheduler) -> Result<()> {
    use oci_spec::runtime::LinuxSchedulerPolicy as P;
    let f = "process.scheduler";
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(bad(
            format!("{f}.nice"),
            format!("{nice} is outside -20..19"),
        ));
    }
    let rt = matches!(s.policy(), P::SchedFifo | P::SchedRr);
    let priority = s.priority().unwrap_or(0);
    if rt && !(1..=99).contains(&priority) {
        return Err(bad(
            format!("{f}.priority"),
            format!("{priority} is outside 1..99 for a real-time policy"),
        ));
    }
    if !rt && priority != 0 {
        return Err(bad(
            format!("{f}.priority"),
            "only SCHED_FIFO and SCHED_RR take a priority",
        ));
    }
    if !matches!(s.policy(), P::SchedDeadline) {
        for (name, v) in [
            ("runtime", s.runtime()),
            ("deadline", s.deadline()),
            ("period", s.period()),
        ] {
            if v.is_some_and(|v| v != 0) {
                return Err(bad(
                    format!("{f}.{name}"),
                    "only SCHED_DEADLINE takes a runtime, deadline and period",
                ));
            }
        }
    }
    Ok(())
}

/// The namespace kind of an OCI namespace type.
pub(crate) fn ns_kind(t: LinuxNamespaceType) -> Kind {
    match t {
        LinuxNamespaceType::Mount => Kind::Mount,
        LinuxNamespaceType::Cgroup => Kind::Cgroup,
        LinuxNamespaceType::Uts => Kind::Uts,
        LinuxNamespaceType::Ipc => Kind::Ipc,
        LinuxNamespaceType::User => Kind::User,
        LinuxNamespaceType::Pid => Kind::Pid,
        LinuxNamespaceType::Network => Kind::Net,
        LinuxNamespaceType::Time => Kind::Time,
    }
}

/// The namespaces `linux.namespaces` lists: made by the container (no path) or joined (a
/// path). One not listed is the host's, shared.
struct Listed {
    made: Vec<Kind>,
    joined: Vec<(Kind, PathBuf)>,
}

impl Listed {
    fn creates(&self, k: Kind) -> bool {
        self.made.contains(&k)
    }

    fn joined(&self, k: Kind) -> Option<&Path> {
        self.joined
            .iter()
            .find(|(j, _)| *j == k)
            .map(|(_, p)| p.as_path())
    }

    fn has(&self, k: Kind) -> bool {
        self.creates(k) || self.joined(k).is_some()
    }
}

/// `linux.namespaces`: each kind once, a path absolute.
fn namespaces(linux: &Linux) -> Result<Listed> {
    let mut nss = Listed {
        made: Vec::new(),
        joined: Vec::new(),
    };
    for (i, n) in linux.namespaces().iter().flatten().enumerate() {
        let kind = ns_kind(n.typ());
        let field = format!("linux.namespaces[{i}]");
        if nss.has(kind) {
            return Err(bad(field, format!("{kind} namespace listed twice")));
        }
        match n.path() {
            // The spec: "This value MUST be an absolute path in the runtime mount namespace";
            // a relative one would resolve against corral's cwd.
            Some(p) if !p.is_absolute() => {
                return Err(bad(
                    format!("{field}.path"),
                    format!("{} is not an absolute path", p.display()),
                ));
            }
            Some(p) => nss.joined.push((kind, p.clone())),
            None => nss.made.push(kind),
        }
    }
    Ok(nss)
}

/// The uid and gid maps: given with a new user namespace, and only then.
fn id_maps(linux: &Linux, nss: &Listed) -> Result<()> {
    let empty = |v: &Option<Vec<_>>| v.as_ref().is_none_or(|v| v.is_empty());
    let (uid, gid) = (empty(linux.uid_mappings()), empty(linux.gid_mappings()));
    if nss.creates(Kind::User) && (uid || gid) {
        return Err(bad(
            "linux.uidMappings",
            "a new user namespace needs linux.uidMappings and linux.gidMappings",
        ));
    }
    if !nss.creates(Kind::User) && (!uid || !gid) {
        return Err(bad(
            "linux.uidMappings",
            "id mappings given without a new user namespace",
        ));
    }
    Ok(())
}

/// `linux.sysctl`: only namespaced sysctls, each in a namespace that is not the host's.
fn sysctls(linux: &Linux, nss: &Listed) -> Result<()> {
    let mut keys: Vec<&String> = linux.sysctl().iter().flatten().map(|(k, _)| k).collect();
    keys.sort();
    for k in keys {
        check_sysctl(k, nss).map_err(|r| bad(format!("linux.sysctl.{k}"), r))?;
    }
    Ok(())
}

/// Only namespaced sysctls may be set, and only in a namespace that is not the host's: one
/// the container creates, or one it joins that is not the runtime's own (a pod's, as runc
/// allows). A namespace that is not listed is the host's, shared.
fn check_sysctl(k: &str, nss: &Listed) -> std::result::Result<(), String> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let (kind, name) = if IPC.contains(&k) || k.starts_with("fs.mqueue.") {
        (Kind::Ipc, "ipc")
    } else if k.starts_with("net.") {
        (Kind::Net, "network")
    } else if k == "kernel.hostname" || k == "kernel.domainname" {
        (Kind::Uts, "uts")
    } else {
        return Err("not a namespaced sysctl: it would change the host".into());
    };
    if nss.creates(kind) {
        return Ok(());
    }
    let Some(path) = nss.joined(kind) else {
        return Err(format!(
            "needs a {name} namespace of the container's own: none is listed, so the host's is shared and the sysctl would change it"
        ));
    };
    if is_hosts(kind, path) {
        return Err(format!(
            "the {name} namespace joined from {} is the host's (the runtime's own): the sysctl would change the host",
            path.display()
        ));
    }
    Ok(())
}

/// Whether the namespace at `path` is the runtime's own, or the initial one (when it can be
/// read). A path that cannot be read is reported where it is opened.
fn is_hosts(kind: Kind, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let Some(joined) = id(path) else {
        return false;
    };
    ["self", "1"]
        .iter()
        .any(|p| id(Path::new(&format!("/proc/{p}/ns/{}", kind.proc_name()))) == Some(joined))
}

/// `linux.timeOffsets`: the monotonic and boottime clocks, in a new time namespace.
fn time_offsets(linux: &Linux, nss: &Listed) -> Result<()> {
    let Some(map) = linux.time_offsets().as_ref().filter(|m| !m.is_empty()) else {
        return Ok(());
    };
    if !nss.creates(Kind::Time) {
        return Err(bad("linux.timeOffsets", "needs a new time namespace"));
    }
    for clock in map.keys() {
        if clock != "monotonic" && clock != "boottime" {
            return Err(bad(
                format!("linux.timeOffsets.{clock}"),
                "unknown clock (monotonic or boottime)",
            ));
        }
    }
    Ok(())
}

/// What needs a mount namespace of the container's own: a user namespace (its processes
/// may not mount in the host's), `linux.rootfsPropagation` and `root.readonly` (both would
/// change the host's mounts).
fn mount_namespace(spec: &Spec, linux: &Linux, nss: &Listed) -> Result<()> {
    let propagation = linux
        .rootfs_propagation()
        .as_deref()
        .filter(|p| !p.is_empty());
    if let Some(name) = propagation {
        if crate::prepare::propagation(name).is_none() {
            return Err(bad(
                "linux.rootfsPropagation",
                format!("unknown propagation {name:?}"),
            ));
        }
    }
    if nss.has(Kind::Mount) {
        return Ok(());
    }
    if nss.has(Kind::User) {
        return Err(bad(
            "linux.namespaces",
            "a user namespace without a mount namespace: its processes may not mount in the host's mount namespace (add a mount namespace)",
        ));
    }
    // Both would change the host's own mounts: the propagation of the mounts the root sits
    // on, and (a read-only bind of root.path) the host's view of the root.
    if propagation.is_some() {
        return Err(bad(
            "linux.rootfsPropagation",
            "needs a mount namespace of the container's own (without one it would change the host's mounts)",
        ));
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        return Err(bad(
            "root.readonly",
            "needs a mount namespace of the container's own (without one the read-only bind of root.path would be the host's view of it too)",
        ));
    }
    Ok(())
}

/// `linux.memoryPolicy` (set_mempolicy(2)): the node list parses, the modes that need nodes
/// have some, and MPOL_DEFAULT and MPOL_LOCAL have none (runc).
fn memory_policy(linux: &Linux) -> Result<()> {
    use oci_spec::runtime::MemoryPolicyModeType as M;
    let Some(m) = linux.memory_policy() else {
        return Ok(());
    };
    let f = "linux.memoryPolicy.nodes";
    let nodes = crate::prepare::node_mask(f, m.nodes().as_deref().unwrap_or(""))?.0;
    match m.mode() {
        M::MpolBind | M::MpolInterleave | M::MpolPreferredMany | M::MpolWeightedInterleave
            if nodes.is_empty() =>
        {
            Err(bad(f, "this mode needs nodes"))
        }
        M::MpolDefault | M::MpolLocal if !nodes.is_empty() => {
            Err(bad(f, "MPOL_DEFAULT and MPOL_LOCAL take no nodes"))
        }
        _ => Ok(()),
    }
}

/// `linux.devices`: a path under /dev, a type the kernel can make.
fn devices(linux: &Linux) -> Result<()> {
    use oci_spec::runtime::LinuxDeviceType as T;
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        let field = format!("linux.devices[{i}]");
        let path = d.path().to_string_lossy();
        if !path.starts_with("/dev/") {
            return Err(bad(
                format!("{field}.path"),
                format!("{path:?} is not under /dev"),
            ));
        }
        if matches!(d.typ(), T::A) {
            return Err(bad(format!("{field}.type"), "\"a\" is not c, u, b or p"));
        }
    }
    Ok(())
}

/// `hooks`: absolute paths, timeouts above zero (the spec's MUSTs). That the programs exist
/// is checked at create ([`crate::hooks::check`]): a kept config stays loadable when one
/// goes away.
fn hooks(spec: &Spec) -> Result<()> {
    let Some(h) = spec.hooks() else {
        return Ok(());
    };
    for (name, v) in crate::hooks::all(h) {
        for (i, hook) in v.iter().enumerate() {
            let p = hook.path();
            if !p.is_absolute() {
                return Err(bad(
                    format!("hooks.{name}[{i}].path"),
                    format!("{} is not an absolute path", p.display()),
                ));
            }
            // The spec: "If set, timeout MUST be greater than zero."
            if let Some(t) = hook.timeout().filter(|t| *t <= 0) {
                return Err(bad(
                    format!("hooks.{name}[{i}].timeout"),
                    format!("{t} is not greater than zero"),
                ));
            }
        }
    }
    Ok(())
}

/// `mounts`: a destination, options corral knows how to apply, and a type unless the mount
/// is a bind. A relative destination is taken as relative to the container's "/" (as runc,
/// which only warns).
fn mounts(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}]");
        if m.destination().as_os_str().is_empty() {
            return Err(bad(format!("{field}.destination"), "empty"));
        }
        let opts = m.options().as_deref().unwrap_or_default();
        let bind = crate::prepare::mount_options(&format!("{field}.options"), opts)?
            || m.typ().as_deref() == Some("bind");
        if !bind && m.typ().as_deref().is_none_or(str::is_empty) {
            return Err(bad(
                format!("{field}.type"),
                "missing (and not a bind mount)",
            ));
        }
    }
    Ok(())
}

/// Checks resource limits, as a spec gives them at create and a face at update
/// ([`crate::Container::update_resources`]): the same value is refused the same way on both
/// roads.
pub fn resources(res: &LinuxResources) -> Result<()> {
    const R: &str = "linux.resources";
    if let Some(c) = res.cpu() {
        if c.idle().is_some() || c.burst().is_some() {
            return Err(bad(format!("{R}.cpu"), "idle and burst are not supported"));
        }
        if let Some(s) = c.shares() {
            // 0 is "unset" (as runc); 1 has no cgroup v2 weight.
            if s != 0 && !(2..=262_144).contains(&s) {
                return Err(bad(
                    format!("{R}.cpu.shares"),
                    format!("{s}: must be in 2..=262144"),
                ));
            }
        }
    }
    if let Some(m) = res.memory() {
        for (name, v) in [
            ("limit", m.limit()),
            ("reservation", m.reservation()),
            ("swap", m.swap()),
        ] {
            if let Some(v) = v {
                // 0 is "unset" (crate::resources::limits), as runc.
                if v < -1 {
                    return Err(bad(
                        format!("{R}.memory.{name}"),
                        format!("{v} is not a valid byte count (-1 means unlimited)"),
                    ));
                }
            }
        }
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                return Err(bad(
                    format!("{R}.memory.swap"),
                    format!("{s} is below memory.limit {l} (swap is memory plus swap)"),
                ));
            }
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(bad(
                    format!("{R}.memory.swappiness"),
                    format!("{s} is above 100"),
                ));
            }
        }
    }
    if let Some(p) = res.pids() {
        if p.limit() < -1 {
            return Err(bad(
                format!("{R}.pids.limit"),
                format!("{}: must be positive (or -1)", p.limit()),
            ));
        }
    }
    if let Some(b) = res.block_io() {
        // 0 is "unset" (dockerd always sends a weight, 0 when none was asked).
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            if !(10..=1000).contains(&w) {
                return Err(bad(
                    format!("{R}.blockIO.weight"),
                    format!("{w} is outside 10..1000"),
                ));
            }
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            if d.weight().is_none() && d.leaf_weight().is_none() {
                return Err(bad(
                    format!("{R}.blockIO.weightDevice[{i}]"),
                    "needs weight or leafWeight",
                ));
            }
        }
    }
    for (i, h) in res.hugepage_limits().iter().flatten().enumerate() {
        if h.limit() < 0 {
            return Err(bad(
                format!("{R}.hugepageLimits[{i}].limit"),
                format!("{} is negative", h.limit()),
            ));
        }
    }
    for (i, d) in res.devices().iter().flatten().enumerate() {
        use oci_spec::runtime::LinuxDeviceType as T;
        if matches!(d.typ(), Some(T::P)) {
            return Err(bad(
                format!("{R}.devices[{i}].type"),
                "\"p\" is not a, b or c",
            ));
        }
        if let Some(a) = d.access() {
            if a.is_empty() || !a.chars().all(|c| "rwm".contains(c)) {
                return Err(bad(
                    format!("{R}.devices[{i}].access"),
                    format!("{a:?} is not a combination of r, w and m"),
                ));
            }
        }
    }
    if let Some(n) = res.network() {
        // classID: any u32 (0xAAAABBBB is tc class AAAA:BBBB; 0 is no class). Priorities:
        // one per interface, by the kernel's rules for a device name (the interface itself
        // is looked up when the cgroup is written, in the host's initial namespace).
        let mut seen = std::collections::HashSet::new();
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            let field = format!("{R}.network.priorities[{i}].name");
            crate::netdev::interface_name(p.name()).map_err(|e| bad(&field, e))?;
            if !seen.insert(p.name().as_str()) {
                return Err(bad(field, format!("{:?} is given twice", p.name())));
            }
        }
    }
    if res.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(bad(format!("{R}.rdma"), "rdma limits are not supported"));
    }
    if res.unified().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(bad(
            format!("{R}.unified"),
            "unified (raw cgroup v2) settings are not supported",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxMemoryBuilder, LinuxResourcesBuilder};

    fn memory(limit: i64) -> LinuxResources {
        LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(limit).build().unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn each_refusal_names_its_field() {
        for (v, ok) in [
            (-5, false),
            (-2, false),
            (-1, true),
            (0, true),
            (1 << 20, true),
        ] {
            let r = resources(&memory(v));
            assert_eq!(r.is_ok(), ok, "{v}: {r:?}");
            if let Err(e) = r {
                assert!(
                    e.to_string().contains("linux.resources.memory.limit"),
                    "{e}"
                );
            }
        }
        let mut s = crate::spec::runc_spec().unwrap();
        s.set_version("2.0.0".into());
        assert!(spec(&s).unwrap_err().to_string().contains("ociVersion"));
    }

    /// The default spec with `f` applied, checked.
    fn check(f: impl Fn(&mut serde_json::Value)) -> Result<()> {
        let mut v = crate::default_spec();
        f(&mut v);
        spec(&serde_json::from_value(v).unwrap())
    }

    fn without_ns(v: &mut serde_json::Value, kind: &str) {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != kind);
    }

    fn add_ns(v: &mut serde_json::Value, n: serde_json::Value) {
        v["linux"]["namespaces"].as_array_mut().unwrap().push(n);
    }

    #[test]
    fn the_default_spec_passes() {
        check(|_| {}).unwrap();
    }

    type Case = (
        &'static str,
        Box<dyn Fn(&mut serde_json::Value)>,
        &'static [&'static str],
    );

    /// Each case's spec is refused with an error holding every one of its words.
    fn refused(cases: Vec<Case>) {
        for (what, f, want) in cases {
            let e = check(&*f).expect_err(what).to_string();
            for w in want {
                assert!(e.contains(w), "{what}: {e:?} lacks {w:?}");
            }
        }
    }

    #[test]
    fn namespaces_maps_hostnames_sysctls_and_time_that_contradict_are_refused_by_name() {
        use serde_json::json;
        refused(vec![
            (
                "a namespace twice",
                Box::new(|v| add_ns(v, json!({"type": "pid"}))),
                &["linux.namespaces[", "pid namespace listed twice"],
            ),
            (
                "a relative namespace path",
                Box::new(|v| {
                    without_ns(v, "network");
                    add_ns(v, json!({"type": "network", "path": "proc/1/ns/net"}));
                }),
                &["linux.namespaces[", "].path", "not an absolute path"],
            ),
            (
                "a user namespace without maps",
                Box::new(|v| add_ns(v, json!({"type": "user"}))),
                &[
                    "linux.uidMappings",
                    "needs linux.uidMappings and linux.gidMappings",
                ],
            ),
            (
                "maps without a user namespace",
                Box::new(|v| {
                    v["linux"]["uidMappings"] =
                        json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
                }),
                &["linux.uidMappings", "without a new user namespace"],
            ),
            (
                "a hostname without uts",
                Box::new(|v| {
                    without_ns(v, "uts");
                    v["hostname"] = json!("box");
                }),
                &["hostname", "needs a uts namespace"],
            ),
            (
                "a domainname without uts",
                Box::new(|v| {
                    without_ns(v, "uts");
                    v.as_object_mut().unwrap().remove("hostname");
                    v["domainname"] = json!("example.org");
                }),
                &["domainname", "needs a uts namespace"],
            ),
            (
                "a sysctl of the host",
                Box::new(|v| {
                    v["linux"]["sysctl"] = json!({"kernel.panic": "1"});
                }),
                &["linux.sysctl.kernel.panic", "not a namespaced sysctl"],
            ),
            (
                "a net sysctl without a network namespace",
                Box::new(|v| {
                    without_ns(v, "network");
                    v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
                }),
                &["linux.sysctl.net.ipv4.ip_forward", "network namespace"],
            ),
            (
                "a net sysctl in the joined host's namespace",
                Box::new(|v| {
                    without_ns(v, "network");
                    add_ns(v, json!({"type": "network", "path": "/proc/self/ns/net"}));
                    v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
                }),
                &["linux.sysctl.net.ipv4.ip_forward", "is the host's"],
            ),
            (
                "time offsets without a time namespace",
                Box::new(|v| {
                    v["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1}});
                }),
                &["linux.timeOffsets", "needs a new time namespace"],
            ),
            (
                "an unknown clock",
                Box::new(|v| {
                    add_ns(v, json!({"type": "time"}));
                    v["linux"]["timeOffsets"] = json!({"realtime": {"secs": 1}});
                }),
                &["linux.timeOffsets.realtime", "unknown clock"],
            ),
            (
                "a user namespace without a mount namespace",
                Box::new(|v| {
                    without_ns(v, "mount");
                    add_ns(v, json!({"type": "user"}));
                    v["linux"]["uidMappings"] =
                        json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
                    v["linux"]["gidMappings"] =
                        json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
                }),
                &["linux.namespaces", "without a mount namespace"],
            ),
        ]);
    }

    #[test]
    fn root_net_devices_cgroups_and_process_values_that_contradict_are_refused_by_name() {
        use serde_json::json;
        refused(vec![
            (
                "an unknown root propagation",
                Box::new(|v| {
                    v["linux"]["rootfsPropagation"] = json!("rbind");
                }),
                &["linux.rootfsPropagation", "unknown propagation"],
            ),
            (
                "a root propagation without a mount namespace",
                Box::new(|v| {
                    without_ns(v, "mount");
                    v["linux"]["rootfsPropagation"] = json!("rslave");
                }),
                &["linux.rootfsPropagation", "mount namespace"],
            ),
            (
                "a read-only root without a mount namespace",
                Box::new(|v| {
                    without_ns(v, "mount");
                    v["root"]["readonly"] = json!(true);
                }),
                &["root.readonly", "mount namespace"],
            ),
            (
                "a network device without a network namespace",
                Box::new(|v| {
                    without_ns(v, "network");
                    v["linux"]["netDevices"] = json!({"dummy0": {}});
                }),
                &["linux.netDevices.dummy0", "new network namespace"],
            ),
            (
                "deadline fields on another policy",
                Box::new(|v| {
                    v["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "runtime": 1000});
                }),
                &["process.scheduler.runtime", "only SCHED_DEADLINE"],
            ),
            (
                "a nice out of range",
                Box::new(|v| {
                    v["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 20});
                }),
                &["process.scheduler.nice", "outside -20..19"],
            ),
            (
                "a priority on a policy without one",
                Box::new(|v| {
                    v["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "priority": 5});
                }),
                &["process.scheduler.priority", "only SCHED_FIFO and SCHED_RR"],
            ),
            (
                "an I/O priority out of range",
                Box::new(|v| {
                    v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8});
                }),
                &["process.ioPriority.priority", "outside 0..7"],
            ),
            (
                "an OOM score out of range",
                Box::new(|v| {
                    v["process"]["oomScoreAdj"] = json!(1001);
                }),
                &["process.oomScoreAdj", "outside -1000..1000"],
            ),
            (
                "an rlimit twice",
                Box::new(|v| {
                    v["process"]["rlimits"] = json!([
                    {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                    {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2}]);
                }),
                &["process.rlimits[1]", "given twice"],
            ),
            (
                "a soft rlimit above its hard one",
                Box::new(|v| {
                    v["process"]["rlimits"] =
                        json!([{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]);
                }),
                &["process.rlimits[0]", "above hard limit"],
            ),
            (
                "no args",
                Box::new(|v| v["process"]["args"] = json!([])),
                &["process.args", "must not be empty"],
            ),
            (
                "an env entry without =",
                Box::new(|v| v["process"]["env"] = json!(["PATH"])),
                &["process.env[0]", "KEY=VALUE"],
            ),
            (
                "a relative cwd",
                Box::new(|v| v["process"]["cwd"] = json!("tmp")),
                &["process.cwd", "not an absolute path"],
            ),
            (
                "a binding policy without nodes",
                Box::new(|v| {
                    v["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND"});
                }),
                &["linux.memoryPolicy.nodes", "needs nodes"],
            ),
            (
                "MPOL_LOCAL with nodes",
                Box::new(|v| {
                    v["linux"]["memoryPolicy"] = json!({"mode": "MPOL_LOCAL", "nodes": "0"});
                }),
                &["linux.memoryPolicy.nodes", "take no nodes"],
            ),
        ]);
    }

    #[test]
    fn devices_mounts_hooks_and_personality_that_cannot_apply_are_refused_by_name() {
        use serde_json::json;
        refused(vec![
            (
                "a device outside /dev",
                Box::new(|v| {
                    v["linux"]["devices"] =
                        json!([{"path": "/etc/x", "type": "c", "major": 1, "minor": 3}]);
                }),
                &["linux.devices[0].path", "not under /dev"],
            ),
            (
                "a device of type a",
                Box::new(|v| {
                    v["linux"]["devices"] =
                        json!([{"path": "/dev/x", "type": "a", "major": 1, "minor": 3}]);
                }),
                &["linux.devices[0].type", "is not c, u, b or p"],
            ),
            (
                "a mount without a destination",
                Box::new(|v| {
                    v["mounts"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"destination": "", "type": "tmpfs"}));
                }),
                &["mounts[", "].destination", "empty"],
            ),
            (
                "a mount without a type",
                Box::new(|v| {
                    v["mounts"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"destination": "/x", "source": "/x"}));
                }),
                &["mounts[", "].type", "not a bind mount"],
            ),
            (
                "an option corral cannot apply",
                Box::new(|v| {
                    v["mounts"].as_array_mut().unwrap().push(
                        json!({"destination": "/x", "type": "tmpfs", "options": ["tmpcopyup"]}),
                    );
                }),
                &["mounts[", "].options", "tmpcopyup"],
            ),
            (
                "a relative hook",
                Box::new(|v| {
                    v["hooks"] = json!({"poststop": [{"path": "bin/true"}]});
                }),
                &["hooks.poststop[0].path", "not an absolute path"],
            ),
            (
                "a hook timeout of zero",
                Box::new(|v| {
                    v["hooks"] = json!({"poststop": [{"path": "/bin/true", "timeout": 0}]});
                }),
                &["hooks.poststop[0].timeout", "not greater than zero"],
            ),
            (
                "personality flags",
                Box::new(|v| {
                    v["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["x"]});
                }),
                &["linux.personality.flags", "not supported"],
            ),
        ]);
    }

    #[test]
    fn what_the_same_rules_allow_passes() {
        use serde_json::json;
        // And what the same rules allow: a net sysctl in a network namespace of its own, a
        // hostname in a joined uts namespace, a bind mount without a type, a relative mount
        // destination (runc only warns), a missing hook program (checked at create).
        check(|v| {
            v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "100"});
            without_ns(v, "uts");
            add_ns(v, json!({"type": "uts", "path": "/proc/self/ns/uts"}));
            v["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "x", "source": "/x", "options": ["rbind", "ro"]}));
            v["hooks"] = json!({"poststop": [{"path": "/no/such/hook"}]});
            v["process"]["scheduler"] = json!({"policy": "SCHED_DEADLINE", "runtime": 1000});
        })
        .unwrap();
    }

    /// What engines send and runc accepts: a `cgroupsPath` in the systemd form (containerd's
    /// CRI with a pod cgroup parent ending in `.slice`, even with `SystemdCgroup = false`),
    /// and zeros that mean "unset" in every field where runc's cgroupfs drivers write
    /// nothing for 0 (dockerd 20.10 sends `blockIO.weight: 0` for every container).
    #[test]
    fn what_engines_send_and_runc_accepts_passes() {
        use serde_json::json;
        let cases: [(&str, serde_json::Value); 11] = [
            ("cgroupsPath", json!("test.slice:cri-containerd:0123abcd")),
            (
                "cgroupsPath",
                json!("kubepods-burstable-pod1.slice:cri-containerd:x"),
            ),
            (
                "resources",
                json!({"blockIO": {"weight": 0, "leafWeight": 0}}),
            ),
            ("resources", json!({"cpu": {"shares": 0}})),
            ("resources", json!({"cpu": {"quota": 0, "period": 0}})),
            (
                "resources",
                json!({"cpu": {"realtimeRuntime": 0, "realtimePeriod": 0}}),
            ),
            ("resources", json!({"memory": {"limit": 0}})),
            ("resources", json!({"memory": {"limit": 0, "swap": 0}})),
            ("resources", json!({"memory": {"reservation": 0}})),
            ("resources", json!({"pids": {"limit": 0}})),
            (
                "resources",
                json!({"memory": {"limit": 0, "reservation": 0, "swap": 0, "swappiness": 0},
                       "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": ""},
                       "pids": {"limit": 0}, "blockIO": {"weight": 0}}),
            ),
        ];
        for (field, value) in cases {
            check(|v| v["linux"][field] = value.clone())
                .unwrap_or_else(|e| panic!("linux.{field} {value}: {e}"));
        }
    }
}
