//! `create`, as the sequence of named phases of [`crate::timings::CREATE_PHASES`].
//!
//! Each phase is a function that takes what the earlier ones made and returns what it made,
//! behind a guard that undoes it: the state dir ([`StateDir`]), the overlay mount
//! ([`OverlayMount`]), the cgroups ([`CgroupGuard`]), the mounts made in the host's mount
//! namespace ([`crate::hostmounts::HostMounts`]) and the process ([`ns::Spawning`]). The
//! guards are locals of [`Container::create_from`], so a failing phase drops them in the
//! reverse order of their making: the process dies before its cgroups go, the cgroups before
//! the root, the root before the state dir.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use cgroup::{Cgroup, CgroupPath, Hierarchy, Version};
use oci_spec::runtime::{Linux, Spec};
use unionfs::{Overlay, OverlayMount};

use super::cgroup_ops::{oom_killed, to_be_made, CgroupGuard};
use super::{
    cgroup_err, io_err, keyring, ns_error, open_dir, open_path, send_console, set_winsize,
    Container, Options, FIFO, SECCOMP_CACHE,
};
use crate::config::Bundle;
use crate::prepare::{self, CgroupView, Inputs};
use crate::state::{self, State, StateDir, Status};
use crate::timings::Timings;
use crate::{resources, Error, Result};

/// `check`: what the config asks for, refused or planned before anything is made.
struct Checked {
    linux: Linux,
    hier: Hierarchy,
    res: cgroup::Resources,
    /// The cgroups to make (`None`: run without, as an undelegated rootless user).
    planned: std::result::Result<Option<Cgroup>, cgroup::Error>,
    rootless: bool,
}

fn check(id: &str, b: &Bundle, opts: &Options) -> Result<Checked> {
    let spec = &b.spec;
    state::check_id(id)?;
    // Refuse what is not honoured or contradicts itself before anything is made (again: a
    // bundle's spec is public, so it may have changed since it was loaded).
    crate::validate::spec(spec)?;
    if opts.layers.is_empty() {
        // (An overlay root is not there yet: the child holds to the same rule.)
        prepare::refuse_symlinked_mount_points(spec, &b.rootfs()?)?;
    }
    crate::hooks::check(spec)?;
    // Cgroups: planned now (nothing is made yet), made and limited before the clone, so the
    // limits hold from the first instruction.
    let hier = Hierarchy::detect().map_err(|e| cgroup_err(id, e))?;
    let linux = spec.linux().clone().unwrap_or_default();
    let path = cgroup_path(id, &linux);
    // Device rules go to the v1 devices controller, or to an eBPF filter on cgroup2.
    let device_rules = hier.v1_mount("devices").is_some() || hier.version() != Version::V1;
    let mut res = resources::from_spec(spec, device_rules)?;
    let rootless = nix::unistd::geteuid().as_raw() != 0;
    let planned = (|| -> std::result::Result<Option<Cgroup>, cgroup::Error> {
        let mut cg = Cgroup::new(&hier, &path)?;
        if rootless {
            // Only the hierarchies delegated to this user; device rules need CAP_SYS_ADMIN in
            // the host (and the devices are the user's own binds).
            res.devices.clear();
            let dropped = cg.retain_delegated();
            if cg.is_empty() {
                tracing::warn!(
                    container = id,
                    "cgroups are not delegated to this user, so the container runs without them (no limits)"
                );
                return Ok(None);
            }
            if !dropped.is_empty() {
                let lost = cg.drop_unplaceable(&mut res);
                let lost = if lost.is_empty() {
                    String::new()
                } else {
                    format!("; not enforced: {}", lost.join(", "))
                };
                let dirs: Vec<String> = dropped.iter().map(|d| d.display().to_string()).collect();
                tracing::warn!(
                    container = id,
                    "cgroups are not delegated to this user in {}, so the container runs without them{lost}",
                    dirs.join(", ")
                );
            }
        }
        Ok(Some(cg))
    })();
    Ok(Checked {
        linux,
        hier,
        res,
        planned,
        rootless,
    })
}

/// Where the container's cgroup goes, as runc's cgroupfs driver (the one runc uses without
/// `--systemd-cgroup`) places it: the id when `linux.cgroupsPath` is unset; an absolute
/// path under each hierarchy's root; a relative one under the caller's cgroup (v1) or its
/// parent (v2).
///
/// The systemd form `slice:prefix:name` is one of the relative paths: containerd's CRI
/// builds `test.slice:cri-containerd:<id>` from a pod's cgroup parent ending in `.slice`
/// even with `SystemdCgroup = false`, and runc's cgroupfs driver then makes one directory
/// of that literal name under the shim's cgroup (v1) or beside it (v2) (no expansion of
/// `a-b.slice` into `a.slice/a-b.slice`, no `prefix-name.scope`: that is what its systemd
/// driver asks systemd for). corral does the same, so a container lands where runc would
/// put it.
///
/// A systemd driver (`--systemd-cgroup`, refused by the CLI) is not worth having yet. It would
/// need a D-Bus client asking systemd for a transient scope per container, with the limits as
/// unit properties, and a second way to update, stat and delete them. It matters only where
/// the kubelet (or dockerd) uses its systemd cgroup driver: pods' parents are then slices
/// (`kubepods-burstable-pod<uid>.slice`), and a container placed by this cgroupfs rule runs
/// outside its pod's slice (pod limits and accounting miss it), as it would under runc's
/// cgroupfs driver. With the kubelet's `cgroupDriver: cgroupfs` (the set-up docs/kubernetes.md
/// gives) every path is a plain cgroupfs path and nothing is lost.
fn cgroup_path(id: &str, linux: &Linux) -> CgroupPath {
    match linux.cgroups_path() {
        None => CgroupPath::Relative(id.to_string()),
        Some(p) => {
            let s = p.to_string_lossy().into_owned();
            if p.is_absolute() {
                CgroupPath::Absolute(s)
            } else {
                CgroupPath::Relative(s)
            }
        }
    }
}

/// `record`: the state dir, the kept config, and the state `creating`, which records what is
/// about to be made before it is made (with this process as its creator), so that a
/// `delete --force` after this process died at any point finds and removes all of it.
fn record(id: &str, b: &Bundle, opts: &Options, chk: &Checked) -> Result<(StateDir, State)> {
    let spec = &b.spec;
    let state_dir = StateDir::create(&opts.root, id)?;
    state_dir.write_config(spec)?;
    crate::fault::point("create:after-state-dir");
    let me = nix::unistd::getpid().as_raw();
    let mut rec = State {
        status: Status::Creating,
        bundle: b.dir.clone(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        no_new_keyring: opts.no_new_keyring,
        late_exec: opts.late_exec,
        creator_pid: me,
        creator_start_time: state::pid_start_time(me),
        // The overlay's mount point, if any.
        rootfs_mount: Some(state::overlay_paths(state_dir.path()).0)
            .filter(|_| !opts.layers.is_empty()),
        ..State::unrecorded(id)
    };
    if let Ok(Some(cg)) = &chk.planned {
        // The leaves, and every directory on the way to them that is not there yet (only
        // those are this create's to remove).
        let dirs = cg.dirs();
        rec.cgroup_dirs = to_be_made(
            dirs.iter()
                .map(|d| (d.dir.as_path(), d.mount_point.as_path())),
        );
        rec.cgroup_leaves = dirs.into_iter().map(|d| d.dir).collect();
    }
    state_dir.write_first(&rec)?;
    crate::fault::point("create:after-state");
    Ok((state_dir, rec))
}

/// `rootfs`: the bundle's root, or an overlay of the given layers mounted in the state dir.
fn rootfs(
    id: &str,
    b: &Bundle,
    opts: &Options,
    state_dir: &StateDir,
) -> Result<(PathBuf, Option<OverlayMount>)> {
    if opts.layers.is_empty() {
        return Ok((b.rootfs()?, None));
    }
    use std::os::unix::fs::DirBuilderExt;
    let (target, mut upper, mut work) = state::overlay_paths(state_dir.path());
    if let Some(dir) = &opts.upper {
        (upper, work) = (dir.join("upper"), dir.join("work"));
    }
    // The overlay's dirs live in a dir only the caller may enter, whatever the mode of the
    // state root: another user must not reach the container's files (a set-user-ID binary
    // the image or the container put there) through the host's paths.
    let private = target.parent().unwrap_or(state_dir.path());
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(private)
        .map_err(|e| io_err(id, "creating overlay dir", private, e))?;
    std::fs::create_dir(&target)
        .map_err(|e| io_err(id, "creating overlay mount point", &target, e))?;
    let ov = Overlay::new(opts.layers.clone(), upper, work);
    let m = ov.mount(&target).map_err(|e| Error::Rootfs {
        id: id.to_string(),
        source: e,
    })?;
    crate::fault::point("create:after-overlay");
    Ok((target, Some(m)))
}

/// What `cgroup` made: the guard, the views the child mounts, the cgroup2 dir to clone into,
/// and the warnings of the limits.
struct Cgroups {
    guard: CgroupGuard,
    views: Vec<CgroupView>,
    fd: Option<OwnedFd>,
    warnings: Vec<String>,
}

/// `cgroup`: the cgroups made and limited.
fn cgroups(
    id: &str,
    chk: Checked,
    state_dir: &StateDir,
    rec: &mut State,
) -> Result<(Cgroups, Linux)> {
    let Checked {
        linux,
        hier,
        res,
        planned,
        rootless,
    } = chk;
    let unmade = |e: cgroup::Error| -> Result<CgroupGuard> {
        match e {
            cgroup::Error::AlreadyExists { .. } => Err(Error::AlreadyExists(id.to_string())),
            // Not root and the hierarchy is not delegated to us: run without cgroups.
            e if rootless
                && matches!(e.errno(), Some(libc::EACCES | libc::EPERM | libc::EROFS)) =>
            {
                tracing::warn!(
                    container = id,
                    "cgroups are not delegated to this user, so the container runs without them (no limits): {e}"
                );
                Ok(CgroupGuard(None))
            }
            e => Err(cgroup_err(id, e)),
        }
    };
    // A `cgroupsPath` may name a cgroup made beforehand (runc joins it, and so do
    // engines' tests): joined, recorded as not made (`State::cgroup_dirs`), so delete
    // leaves it and the processes in it that are not the container's. The default path
    // (the id) must be new: an existing one is another container's.
    let named = linux.cgroups_path().is_some();
    let guard = match planned {
        Ok(Some(mut cg)) => match if named {
            cg.create_or_join(&res)
        } else {
            cg.create(&res)
        } {
            Ok(()) => {
                crate::fault::point("create:after-cgroup");
                CgroupGuard(Some(cg))
            }
            Err(e) => unmade(e)?,
        },
        Ok(None) => CgroupGuard(None),
        Err(e) => unmade(e)?,
    };
    if guard.0.is_none() && !rec.cgroup_leaves.is_empty() {
        rec.cgroup_leaves.clear();
        rec.cgroup_dirs.clear();
        state_dir.write(rec)?;
    }
    if let Some(cg) = guard.0.as_ref().filter(|c| !c.made_every_leaf()) {
        // runc 1.1's warning: the container shares a cgroup with processes of others.
        if let Ok(p) = cg.pids() {
            if !p.is_empty() {
                tracing::warn!(
                    container = id,
                    "container's cgroup is not empty: {} process(es) found",
                    p.len()
                );
            }
        }
    }
    let mut made = Cgroups {
        guard,
        views: Vec::new(),
        fd: None,
        warnings: Vec::new(),
    };
    if let Some(cgr) = made.guard.0.as_ref() {
        cgr.apply(&res).map_err(|e| cgroup_err(id, e))?;
        made.warnings = cgr.warnings();
        for w in &made.warnings {
            tracing::warn!(container = id, "{w}");
        }
        made.views = cgr
            .dirs()
            .into_iter()
            .map(|d| CgroupView {
                name: d.name,
                host_dir: d.dir,
            })
            .collect();
        made.fd = match (hier.version(), cgr.v2_dir()) {
            (Version::V2, Some(dir)) => Some(open_dir(id, dir)?),
            _ => None,
        };
    }
    Ok((made, linux))
}

/// What `plan` prepared.
struct Planned {
    plan: ns::Plan,
    /// Network devices to move in: host name, name inside, index.
    netdevs: Vec<(String, String, u32)>,
    /// Mounts made in the host's mount namespace (a container without one of its own).
    host_mounts: Option<crate::hostmounts::HostMounts>,
}

/// `plan`: the child's whole set-up prepared, and the start gate made.
#[allow(clippy::too_many_arguments)]
fn plan(
    id: &str,
    b: &Bundle,
    opts: &Options,
    linux: &Linux,
    rootfs: &Path,
    cg: &mut Cgroups,
    state_dir: &StateDir,
    rootless: bool,
) -> Result<Planned> {
    let spec = &b.spec;
    let mut plan = prepare::plan(Inputs {
        spec,
        bundle: &b.dir,
        rootfs,
        cgroups: &cg.views,
        cgroup_fd: cg.fd.take(),
        no_pivot: opts.no_pivot,
        preserve_fds: opts.preserve_fds,
        stdio: opts.stdio,
        mount_idmaps: &b.mount_idmaps,
        security: &opts.security,
    })?;
    plan.keyring = keyring(id, spec.process().as_ref(), opts)?;
    plan.attr_root = opts.security.attr_root(&plan)?;
    plan.start_hooks = crate::hooks::start_plan(spec)?;
    if let Some(sc) = linux.seccomp() {
        let prog = crate::filter::compile(sc, &opts.root.join(SECCOMP_CACHE))?;
        plan.seccomp = Some(crate::filter::to_plan(&prog));
    }
    plan.close_fds.extend(state_dir.lock_fd());
    plan.close_fds.extend(&opts.preserve_holes);
    if opts.late_exec {
        // No FIFO: only this process starts it, through the socket, with its program.
        plan.late_exec = true;
    } else if !(opts.start_in_process && plan.start_hooks.is_empty()) {
        gate(id, &mut plan, state_dir, rootless)?;
    }

    // Network devices to move in, checked now, moved while the child pauses.
    let mut netdevs = Vec::new();
    let mut devs: Vec<_> = linux
        .net_devices()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    devs.sort_by(|a, b| a.0.cmp(&b.0));
    for (host, d) in devs {
        // (A new network namespace to move it into: crate::validate.)
        let field = format!("linux.netDevices.{host}");
        let name = d.name().clone().unwrap_or_else(|| host.clone());
        let idx = crate::netdev::check(&field, &host, &name)?;
        netdevs.push((host, name, idx));
    }
    let early = ["prestart", "createRuntime", "createContainer"]
        .iter()
        .any(|h| !crate::hooks::of(spec, h).is_empty());
    plan.hook_pause = early || !netdevs.is_empty();
    // Without a mount namespace of its own, the child mounts in the host's: what it mounts
    // under the root is found, kept in the state and unmounted by delete, or on failure
    // (after the child is gone: this guard is made before the process's).
    let host_mounts = plan
        .rootfs
        .as_ref()
        .filter(|r| !r.mount_ns)
        .map(|_| crate::hostmounts::HostMounts::snapshot(rootfs));
    Ok(Planned {
        plan,
        netdevs,
        host_mounts,
    })
}

/// The start gate: a FIFO in the state dir that `start` opens, writable by the process's own
/// ids only.
fn gate(id: &str, plan: &mut ns::Plan, state_dir: &StateDir, rootless: bool) -> Result<()> {
    // The start gate: a FIFO in the state dir that `start` opens.
    let fifo = state_dir.path().join(FIFO);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(|e| {
        Error::Sys {
            id: id.to_string(),
            what: format!("mkfifo {}", fifo.display()),
            errno: e,
        }
    })?;
    // The process reaches the gate with its own ids: let it open the FIFO (only it).
    let host_id = |id: u32, map: &[ns::IdMap]| -> u32 {
        if map.is_empty() {
            return id;
        }
        map.iter()
            .find(|m| id >= m.inside && id - m.inside < m.count)
            .map(|m| m.outside + (id - m.inside))
            .unwrap_or(id)
    };
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let (fu, fg) = (
        host_id(plan.process.uid, &plan.uid_map),
        host_id(plan.process.gid, &plan.gid_map),
    );
    if rootless && (fu, fg) != (euid, egid) {
        // Without privilege the FIFO cannot be given to a subordinate id: let anyone write
        // it (runc's 0622). The process reaches it through the state dir's fd, and the state
        // root is the user's own.
        std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
            .map_err(|e| io_err(id, "chmod", &fifo, e))?;
    } else {
        std::os::unix::fs::chown(&fifo, Some(fu), Some(fg))
            .map_err(|e| io_err(id, "chown", &fifo, e))?;
    }
    plan.gate = Some(ns::Gate {
        dir: open_path(id, state_dir.path())?,
        name: std::ffi::CString::from(c"exec.fifo"),
    });
    debug_assert_eq!(FIFO, "exec.fifo");
    Ok(())
}

/// `clone`: the process, in its cgroups (by the clone itself on cgroup2, else by a write of
/// its pid), waiting for `GO`.
fn clone(id: &str, plan: ns::Plan, cg: &Cgroups, rec: &mut State) -> Result<ns::Spawning> {
    let sp = ns::spawn(plan).map_err(|e| ns_error(id, e))?;
    // The process and the cgroup dirs actually made go into the final state. No write is
    // needed before it: until create is complete (`RELEASE`) the process dies with this one,
    // and the record of what was to be made already covers the cgroups.
    rec.pid = sp.pid();
    rec.pid_start_time = state::pid_start_time(rec.pid);
    if let Some(c) = cg.guard.0.as_ref() {
        rec.cgroup_dirs = c.created_dirs().to_vec();
    }
    crate::fault::point("create:after-clone");
    if !sp.placed_in_cgroup() {
        if let Some(cgr) = cg.guard.0.as_ref() {
            cgr.add_pid(sp.pid()).map_err(|e| cgroup_err(id, e))?;
        }
    }
    Ok(sp)
}

/// `setup`: the child goes on with its set-up; meanwhile its id maps are written, its network
/// devices moved in and the create hooks run; it ends waiting at its start gate.
fn setup(
    id: &str,
    spec: &Spec,
    linux: &Linux,
    sp: &mut ns::Spawning,
    netdevs: &[(String, String, u32)],
    cg: &Cgroups,
    rec: &mut State,
) -> Result<()> {
    let hook_state = rec.clone();
    // A notify filter's listener goes to linux.seccomp.listenerPath as soon as the child sends
    // it (state "creating", as runc), so that syscalls the child makes before its gate can be
    // answered; a listener that cannot be reached fails the create at once.
    let mut listener_err = None;
    let mut listener = |pid: i32, fd: OwnedFd| -> std::result::Result<(), String> {
        let Some(sc) = linux.seccomp() else {
            return Ok(());
        };
        let mut st = hook_state.clone();
        st.pid = pid;
        crate::filter::send_listener(sc, &st, pid, "creating", fd).map_err(|e| {
            let m = e.to_string();
            listener_err = Some(e);
            m
        })
    };
    let mut hooks = |pid: i32| -> std::result::Result<(), String> {
        for (host, name, idx) in netdevs {
            crate::netdev::move_into(pid, *idx, host, name)?;
        }
        let mut st = hook_state.clone();
        st.pid = pid;
        // What the suites and engines expect these hooks to read: the container is created
        // (its process waits), as runc's state says.
        let json = crate::hooks::state_json(&st, "created");
        crate::hooks::run("prestart", &crate::hooks::of(spec, "prestart"), &json)?;
        crate::hooks::run(
            "createRuntime",
            &crate::hooks::of(spec, "createRuntime"),
            &json,
        )?;
        crate::hooks::run_in_namespaces(
            "createContainer",
            &crate::hooks::of(spec, "createContainer"),
            pid,
            &json,
        )
    };
    sp.go_with_listener(&mut hooks, Some(&mut listener))
        .map_err(|e| match (listener_err.take(), e) {
            (Some(l), _) => l,
            (None, ns::Error::Hook(message)) => Error::Hook {
                id: id.to_string(),
                message,
            },
            // Killed during its set-up by the OOM killer of its own cgroup: say so.
            (None, ns::Error::ChildExited(how)) if oom_killed(cg.guard.0.as_ref()) => {
                ns_error(
                    id,
                    ns::Error::ChildExited(format!(
                        "{how}: out of memory; linux.resources.memory.limit is too small for its set-up"
                    )),
                )
            }
            (None, e) => ns_error(id, e),
        })?;
    if sp.pid() != rec.pid {
        // The second fork (slow path): the container's process is the intermediate's child.
        rec.pid = sp.pid();
        rec.pid_start_time = state::pid_start_time(rec.pid);
    }
    crate::fault::point("create:after-ready");
    Ok(())
}

/// `created`: the terminal handed over (to the console socket, or kept), the state its
/// startContainer hooks read sent, and the state `created` written.
fn created(
    id: &str,
    spec: &Spec,
    opts: &Options,
    sp: &mut ns::Spawning,
    state_dir: &StateDir,
    rec: State,
    host_mounts: &Option<crate::hostmounts::HostMounts>,
) -> Result<(Option<OwnedFd>, State)> {
    let console = match sp.take_console() {
        Some(m) => {
            let size = spec.process().as_ref().and_then(|p| p.console_size());
            if let Some(sz) = size {
                set_winsize(&m, sz.height() as u16, sz.width() as u16);
            }
            match &opts.console_socket {
                Some(sock) => {
                    send_console(id, sock, m)?;
                    None
                }
                None => Some(m),
            }
        }
        None => None,
    };
    let st = State {
        status: Status::Created,
        creator_pid: 0,
        creator_start_time: 0,
        host_mounts: host_mounts.as_ref().map(|h| h.made()).unwrap_or_default(),
        ..rec
    };
    // The state its startContainer hooks read; it waits for it before its start gate.
    sp.send_state(crate::hooks::state_json(&st, "created").as_bytes())
        .map_err(|e| ns_error(id, e))?;
    crate::fault::point("create:before-state");
    state_dir.write(&st)?;
    crate::fault::point("create:after-state-created");
    Ok((console, st))
}

impl Container {
    /// Creates the container from the bundle at `bundle` (its `config.json`): see
    /// [`Container::create_from`].
    pub fn create(id: &str, bundle: &Path, opts: &Options) -> Result<Container> {
        let b = Bundle::load(bundle)?;
        Container::create_from(id, &b, opts)
    }

    /// Creates the container from a loaded bundle (from a directory, a config JSON string, or
    /// [`crate::Description::bundle`]): its process has done all its set-up and waits at the start
    /// gate. The phases of [`crate::timings::CREATE_PHASES`] run in order, timed
    /// ([`Container::timings`]); everything made on the way is undone if any of them fails.
    pub fn create_from(id: &str, b: &Bundle, opts: &Options) -> Result<Container> {
        let spec = &b.spec;
        let mut t = Timings::default();
        let chk = t.time("check", || check(id, b, opts))?;
        let rootless = chk.rootless;
        let (state_dir, mut rec) = t.time("record", || record(id, b, opts, &chk))?;
        let (rootfs, overlay) = t.time("rootfs", || rootfs(id, b, opts, &state_dir))?;
        let (mut cg, linux) = t.time("cgroup", || cgroups(id, chk, &state_dir, &mut rec))?;
        let Planned {
            plan,
            netdevs,
            host_mounts,
        } = t.time("plan", || {
            plan(id, b, opts, &linux, &rootfs, &mut cg, &state_dir, rootless)
        })?;
        let mut sp = t.time("clone", || clone(id, plan, &cg, &mut rec))?;
        t.time("setup", || {
            setup(id, spec, &linux, &mut sp, &netdevs, &cg, &mut rec)
        })?;
        // The container's mount namespace holds its own copy of the root mount by now: the
        // host's copy becomes nosuid,nodev (the container's keeps its flags).
        if let Some(m) = &overlay {
            m.set_nosuid_nodev().map_err(|e| Error::Rootfs {
                id: id.to_string(),
                source: e,
            })?;
        }
        let (console, st) = t.time("created", || {
            created(id, spec, opts, &mut sp, &state_dir, rec, &host_mounts)
        })?;
        if let Some(h) = host_mounts {
            h.keep();
        }
        Ok(Container {
            id: id.to_string(),
            bundle: b.dir.clone(),
            pid: sp.pid(),
            pidfd: None,
            own_child: true,
            spawning: Some(sp),
            console,
            exit: None,
            cgroup: cg.guard.take(),
            overlay,
            state_dir: Some(state_dir),
            state: st,
            config: Some(spec.clone()),
            warnings: cg.warnings,
            owned: true,
            half_made: false,
            timings: t,
            late_exec: opts.late_exec,
            execs: std::sync::Mutex::new(Vec::new()),
            stopped_unwritten: false,
        })
    }
}
