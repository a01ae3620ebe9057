//! The root and its mounts: mount options, propagation, binds, filesystems, the cgroup
//! mount, devices and the paths masked or made read-only.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::CString;
use std::path::Path;

use libc::c_ulong;
use ns::{Device, Mount, Rootfs, Symlink, Target};
use oci_spec::runtime::Spec;

use super::{cfg, cstr, target, CgroupView, Inputs};
use crate::Result;

/// A proc or sysfs mount whose mount point in the root is a symlink (`/proc -> /tmp/fake`) or
/// anything but a directory is refused by name before anything is made: the mount point must
/// be an ordinary directory (runc's CVE-2019-19921, where procfs was mounted where the symlink
/// pointed). Looked up inside the root without following the last component. The child holds
/// to the same rule when it opens the mount point (`ns::Mount::plain_dir`), so a root changed
/// after this check is refused too.
pub fn refuse_symlinked_mount_points(spec: &Spec, rootfs: &Path) -> Result<()> {
    use std::os::fd::{AsRawFd, OwnedFd};
    let mounts = spec.mounts().clone().unwrap_or_default();
    let mut root: Option<OwnedFd> = None;
    for (i, m) in mounts.iter().enumerate() {
        let typ = m.typ().clone().unwrap_or_default();
        let bind = m
            .options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
        if (typ != "proc" && typ != "sysfs") || bind {
            continue;
        }
        let field = format!("mounts[{i}].destination");
        let dest = m.destination().to_string_lossy().into_owned();
        let rel = dest.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        let root_fd = match &root {
            Some(r) => r.as_raw_fd(),
            None => {
                let f = std::fs::File::open(rootfs)
                    .map_err(|e| cfg("root.path", format!("{}: {e}", rootfs.display())))?;
                root.insert(OwnedFd::from(f)).as_raw_fd()
            }
        };
        if rel.contains('\0') {
            return Err(cfg(&field, "contains a NUL byte"));
        }
        // A directory (the rule) or missing (made by the child): one call. What else it is
        // only on refusal.
        match crate::in_root::openat2(
            root_fd,
            Path::new(rel),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY,
            crate::in_root::IN_ROOT,
        ) {
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(_) => {}
        }
        let Ok(fd) = crate::in_root::openat2(
            root_fd,
            Path::new(rel),
            libc::O_PATH | libc::O_NOFOLLOW,
            crate::in_root::IN_ROOT,
        ) else {
            // Missing (made by the child), or a parent the child will report on.
            continue;
        };
        let Ok(st) = nix::sys::stat::fstat(fd.as_raw_fd()) else {
            continue;
        };
        let what = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => continue,
            libc::S_IFLNK => {
                let to = nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "").unwrap_or_default();
                format!("a symlink (to {})", to.to_string_lossy())
            }
            _ => "not a directory".to_string(),
        };
        return Err(cfg(
            field,
            format!(
                "{dest} in the root is {what}: the mount point of a {typ} mount must be an ordinary directory (CVE-2019-19921)"
            ),
        ));
    }
    Ok(())
}

/// What a mount option does.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Effect {
    /// `mount(2)` flags it sets and clears.
    Flags(c_ulong, c_ulong),
    /// A bind mount (`rbind`: with the mounts under the source).
    Bind { rec: bool },
    /// The propagation flags it gives the mount (as `linux.rootfsPropagation` too).
    Propagation(c_ulong),
    /// An idmapped bind (`ridmap`: the mounts under it too).
    Idmap { rec: bool },
    /// A `MOUNT_ATTR_*` bit `mount_setattr` sets (true) or clears on the whole tree, as runc
    /// lists them (`rnoexec`, `rexec`).
    Recursive(u64, bool),
    /// The atime mode a recursive atime option selects. The kernel keeps one of three modes
    /// per mount, so the options that only undo one (`ratime`, `rnorelatime`,
    /// `rnostrictatime`) select the kernel's default, relatime, as `atime`, `norelatime` and
    /// `nostrictatime` do with `mount(2)`; the last atime option wins.
    RecursiveAtime(u64),
}

use Effect::{Bind, Flags, Idmap, Propagation, Recursive, RecursiveAtime};

/// Every mount option corral applies itself, and what it does. Any other option is the
/// filesystem's own, passed in the mount's data (refused on a bind, which has none).
const OPTIONS: [(&str, Effect); 61] = [
    ("ro", Flags(libc::MS_RDONLY, 0)),
    ("rw", Flags(0, libc::MS_RDONLY)),
    ("nosuid", Flags(libc::MS_NOSUID, 0)),
    ("suid", Flags(0, libc::MS_NOSUID)),
    ("nodev", Flags(libc::MS_NODEV, 0)),
    ("dev", Flags(0, libc::MS_NODEV)),
    ("noexec", Flags(libc::MS_NOEXEC, 0)),
    ("exec", Flags(0, libc::MS_NOEXEC)),
    ("sync", Flags(libc::MS_SYNCHRONOUS, 0)),
    ("async", Flags(0, libc::MS_SYNCHRONOUS)),
    ("dirsync", Flags(libc::MS_DIRSYNC, 0)),
    ("remount", Flags(libc::MS_REMOUNT, 0)),
    // mount(8)'s: "defaults" sets nothing of its own here (as runc).
    ("defaults", Flags(0, 0)),
    ("silent", Flags(libc::MS_SILENT, 0)),
    ("loud", Flags(0, libc::MS_SILENT)),
    ("iversion", Flags(libc::MS_I_VERSION, 0)),
    ("noiversion", Flags(0, libc::MS_I_VERSION)),
    ("mand", Flags(libc::MS_MANDLOCK, 0)),
    ("nomand", Flags(0, libc::MS_MANDLOCK)),
    ("atime", Flags(0, libc::MS_NOATIME)),
    ("noatime", Flags(libc::MS_NOATIME, 0)),
    ("diratime", Flags(0, libc::MS_NODIRATIME)),
    ("nodiratime", Flags(libc::MS_NODIRATIME, 0)),
    ("relatime", Flags(libc::MS_RELATIME, 0)),
    ("norelatime", Flags(0, libc::MS_RELATIME)),
    ("strictatime", Flags(libc::MS_STRICTATIME, 0)),
    ("nostrictatime", Flags(0, libc::MS_STRICTATIME)),
    ("nosymfollow", Flags(libc::MS_NOSYMFOLLOW, 0)),
    ("symfollow", Flags(0, libc::MS_NOSYMFOLLOW)),
    ("lazytime", Flags(libc::MS_LAZYTIME, 0)),
    ("nolazytime", Flags(0, libc::MS_LAZYTIME)),
    ("bind", Bind { rec: false }),
    ("rbind", Bind { rec: true }),
    ("private", Propagation(libc::MS_PRIVATE)),
    ("rprivate", Propagation(libc::MS_PRIVATE | libc::MS_REC)),
    ("shared", Propagation(libc::MS_SHARED)),
    ("rshared", Propagation(libc::MS_SHARED | libc::MS_REC)),
    ("slave", Propagation(libc::MS_SLAVE)),
    ("rslave", Propagation(libc::MS_SLAVE | libc::MS_REC)),
    ("unbindable", Propagation(libc::MS_UNBINDABLE)),
    (
        "runbindable",
        Propagation(libc::MS_UNBINDABLE | libc::MS_REC),
    ),
    ("idmap", Idmap { rec: false }),
    ("ridmap", Idmap { rec: true }),
    ("rro", Recursive(libc::MOUNT_ATTR_RDONLY, true)),
    ("rrw", Recursive(libc::MOUNT_ATTR_RDONLY, false)),
    ("rnosuid", Recursive(libc::MOUNT_ATTR_NOSUID, true)),
    ("rsuid", Recursive(libc::MOUNT_ATTR_NOSUID, false)),
    ("rnodev", Recursive(libc::MOUNT_ATTR_NODEV, true)),
    ("rdev", Recursive(libc::MOUNT_ATTR_NODEV, false)),
    ("rnoexec", Recursive(libc::MOUNT_ATTR_NOEXEC, true)),
    ("rexec", Recursive(libc::MOUNT_ATTR_NOEXEC, false)),
    ("rnodiratime", Recursive(libc::MOUNT_ATTR_NODIRATIME, true)),
    ("rdiratime", Recursive(libc::MOUNT_ATTR_NODIRATIME, false)),
    (
        "rnosymfollow",
        Recursive(libc::MOUNT_ATTR_NOSYMFOLLOW, true),
    ),
    ("rsymfollow", Recursive(libc::MOUNT_ATTR_NOSYMFOLLOW, false)),
    ("rnoatime", RecursiveAtime(libc::MOUNT_ATTR_NOATIME)),
    ("rstrictatime", RecursiveAtime(libc::MOUNT_ATTR_STRICTATIME)),
    ("rrelatime", RecursiveAtime(libc::MOUNT_ATTR_RELATIME)),
    ("ratime", RecursiveAtime(libc::MOUNT_ATTR_RELATIME)),
    ("rnorelatime", RecursiveAtime(libc::MOUNT_ATTR_RELATIME)),
    ("rnostrictatime", RecursiveAtime(libc::MOUNT_ATTR_RELATIME)),
];

const fn names<const N: usize>(t: &[(&'static str, Effect); N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = t[i].0;
        i += 1;
    }
    out
}

/// The mount options corral recognises (`mounts[].options`), from the table its parser
/// uses: the OCI features document lists them. Other options go to the filesystem.
pub const MOUNT_OPTIONS: &[&str] = &names(&OPTIONS);

fn effect(name: &str) -> Option<Effect> {
    OPTIONS.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
}

/// The mount flags of a propagation name (`rprivate` -> `MS_PRIVATE|MS_REC`), as mount
/// options and `linux.rootfsPropagation` spell them.
pub(crate) fn propagation(name: &str) -> Option<c_ulong> {
    match effect(name) {
        Some(Propagation(p)) => Some(p),
        _ => None,
    }
}

/// Parsed mount options.
struct MountOpts {
    flags: c_ulong,
    clear: c_ulong,
    propagation: c_ulong,
    bind: bool,
    rec: bool,
    idmap: bool,
    data: Vec<String>,
    /// Recursive attributes (`rro`, `rnoexec`, `rnoatime`...): `mount_setattr` set and clear.
    recursive: Option<(u64, u64)>,
}

/// The atime modes of `mount_setattr` (an enum in `MOUNT_ATTR__ATIME`, not bits).
const ATIME_MASK: u64 = libc::MOUNT_ATTR__ATIME;

/// Checks the options of a mount (`field`: `mounts[i].options`) as they will be parsed when
/// it is made; whether they make it a bind mount.
pub(crate) fn mount_options(field: &str, opts: &[String]) -> Result<bool> {
    Ok(parse_options(field, opts)?.bind)
}

fn parse_options(field: &str, opts: &[String]) -> Result<MountOpts> {
    let mut o = MountOpts {
        flags: 0,
        clear: 0,
        propagation: 0,
        bind: false,
        rec: false,
        idmap: false,
        data: Vec::new(),
        recursive: None,
    };
    let mut atime: Option<u64> = None;
    for opt in opts {
        let (set, clear): (c_ulong, c_ulong) = match effect(opt) {
            Some(Flags(set, clear)) => (set, clear),
            Some(Bind { rec }) => {
                o.bind = true;
                o.rec |= rec;
                (0, 0)
            }
            Some(Propagation(p)) => {
                o.propagation = p;
                (0, 0)
            }
            Some(Idmap { rec }) => {
                o.idmap = true;
                o.rec |= rec;
                (0, 0)
            }
            Some(Recursive(attr, on)) => {
                let (mut set, mut clr) = o.recursive.unwrap_or((0, 0));
                if on {
                    set |= attr;
                    clr &= !attr;
                } else {
                    clr |= attr;
                    set &= !attr;
                }
                o.recursive = Some((set, clr));
                (0, 0)
            }
            Some(RecursiveAtime(mode)) => {
                atime = Some(mode);
                o.recursive.get_or_insert((0, 0));
                (0, 0)
            }
            None if opt == "tmpcopyup" => {
                return Err(cfg(field, "option \"tmpcopyup\" is not supported"))
            }
            None => {
                if opt.contains(',') {
                    return Err(cfg(field, format!("option {opt:?} contains a comma")));
                }
                o.data.push(opt.to_string());
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
        o.clear |= clear;
    }
    if let (Some(mode), Some((set, clr))) = (atime, o.recursive.as_mut()) {
        // A new atime mode needs the whole atime field in attr_clr (mount_setattr(2)).
        *set = (*set & !ATIME_MASK) | mode;
        *clr |= ATIME_MASK;
    }
    Ok(o)
}

pub(super) fn rootfs(
    inp: &Inputs<'_>,
    linux: &oci_spec::runtime::Linux,
    userns: bool,
    new_net: bool,
    mount_ns: bool,
) -> Result<Rootfs> {
    let spec = inp.spec;
    let root = inp.rootfs;
    if !root.is_dir() {
        return Err(cfg(
            "root.path",
            format!("{} is not a directory", root.display()),
        ));
    }
    let readonly = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    let (propagation, root_propagation) = propagations(linux)?;
    let context = inp.security.mount_context(linux.mount_label().as_deref())?;
    let made = spec_mounts(inp, userns, new_net, context.as_deref())?;
    let (devices, symlinks) = if made.dev_bound {
        (Vec::new(), Vec::new())
    } else {
        devices(linux, made.has_pts)?
    };
    // The spec says these values MUST be absolute: a rule for whoever writes the config. A
    // relative entry is taken as relative to the container's "/" (it is resolved inside the
    // root either way, and ".." is refused), as runc and youki take it and conformance
    // suites expect: refusing it would only break configs that run elsewhere.
    let paths = |field: &str, v: &Option<Vec<String>>| -> Result<Vec<Target>> {
        v.clone()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, p)| target(&format!("{field}[{i}]"), p))
            .collect()
    };
    Ok(Rootfs {
        path: cstr("root.path", root.to_string_lossy().as_bytes())?,
        mount_ns,
        propagation,
        root_propagation,
        mounts: made.mounts,
        devices,
        bind_devices: userns,
        symlinks,
        masked: paths("linux.maskedPaths", linux.masked_paths())?,
        readonly_paths: paths("linux.readonlyPaths", linux.readonly_paths())?,
        readonly,
        no_pivot: inp.no_pivot,
        private_parent: if mount_ns && propagation & libc::MS_SHARED != 0 {
            let canon = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            match crate::hostmounts::mount_point_of(&canon) {
                Some(m) => Some(cstr("root.path", m.as_os_str().as_encoded_bytes())?),
                None => None,
            }
        } else {
            None
        },
    })
}

/// The propagation of `/` while the root is set up, and the one the root itself gets once it
/// is the root (0: none of its own), from `linux.rootfsPropagation`.
/// (That it needs a mount namespace of the container's own is [`crate::validate`]'s.)
fn propagations(linux: &oci_spec::runtime::Linux) -> Result<(c_ulong, c_ulong)> {
    let requested = match linux.rootfs_propagation().as_deref() {
        None | Some("") => None,
        Some(name) => Some(propagation(name).ok_or_else(|| {
            cfg(
                "linux.rootfsPropagation",
                format!("unknown propagation {name:?}"),
            )
        })?),
    };
    // `/` first gets a propagation that shares nothing with the host, except for shared
    // values, which keep the host's peer groups (so that a shared bind mount reaches the
    // host, as engines expect of rshared); the root itself gets a shared or unbindable value
    // once it is the root (it cannot before: pivot_root refuses a shared parent, and an
    // unbindable root cannot be bound onto itself). The non-recursive private and slave
    // values are made recursive for `/`: the root's own mount then has the value asked,
    // and no mount copied from the host stays in a peer group of the host.
    let requested = requested.unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    let (propagation, root_propagation) = if requested & libc::MS_SHARED != 0 {
        (requested, requested)
    } else if requested & libc::MS_UNBINDABLE != 0 {
        (libc::MS_SLAVE | libc::MS_REC, requested)
    } else {
        (requested | libc::MS_REC, 0)
    };
    Ok((propagation, root_propagation))
}

/// The mounts of `mounts`, in order, and what the devices step needs to know of them.
struct SpecMounts {
    mounts: Vec<Mount>,
    /// A bind mount at `/dev`: no default devices or links are made.
    dev_bound: bool,
    /// A devpts mount: `/dev/ptmx` links to its `ptmx`.
    has_pts: bool,
}

fn spec_mounts(
    inp: &Inputs<'_>,
    userns: bool,
    new_net: bool,
    context: Option<&str>,
) -> Result<SpecMounts> {
    let mut out = SpecMounts {
        mounts: Vec::new(),
        dev_bound: false,
        has_pts: false,
    };
    for (i, m) in inp
        .spec
        .mounts()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        spec_mount(inp, i, m, userns, new_net, context, &mut out)?;
    }
    Ok(out)
}

/// Mount `i` of the spec (`m`) as the child makes it, pushed on `out`.
fn spec_mount(
    inp: &Inputs<'_>,
    i: usize,
    m: &oci_spec::runtime::Mount,
    userns: bool,
    new_net: bool,
    context: Option<&str>,
    out: &mut SpecMounts,
) -> Result<()> {
    let mounts = &mut out.mounts;
    let field = format!("mounts[{i}]");
    let dest = m.destination().to_string_lossy().into_owned();
    let t = target(&format!("{field}.destination"), &dest)?;
    let opts = parse_options(
        &format!("{field}.options"),
        &m.options().clone().unwrap_or_default(),
    )?;
    let typ = m.typ().clone().unwrap_or_default();
    let bind = opts.bind || typ == "bind";
    if bind {
        warn_ignored_bind_options(&field, &opts);
    }
    let recursive_attr = opts.recursive;
    let mut data = opts.data.clone();
    if let Some(c) = context {
        if !bind && crate::lsm::takes_mount_label(&typ) {
            data.push(c.to_string());
        }
    }
    let data = if data.is_empty() {
        None
    } else {
        Some(cstr(&field, data.join(","))?)
    };
    if typ == "cgroup" || typ == "cgroup2" {
        cgroup_mounts(&field, t, &opts, inp.cgroups, context, mounts)?;
        return Ok(());
    }
    if bind {
        if dest == "/dev" || dest == "/dev/" {
            out.dev_bound = true;
        }
        mounts.push(bind_mount(inp, i, m, &field, t, &opts)?);
        return Ok(());
    }
    if typ == "devpts" {
        out.has_pts = true;
    }
    // sysfs can only be mounted by the owner of the network namespace; in a user
    // namespace without its own network namespace, bind the host's /sys instead.
    if typ == "sysfs" && userns && !new_net {
        mounts.push(Mount {
            source: Some(c"/sys".into()),
            target: t,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
            remount_flags: Some(opts.flags | libc::MS_RDONLY),
            propagation: 0,
            is_file: false,
            detached: None,
            recursive_attr,
            plain_dir: true,
        });
        return Ok(());
    }
    let source = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.clone());
    mounts.push(Mount {
        source: Some(cstr(&field, source)?),
        target: t,
        fstype: Some(cstr(&field, typ.as_str())?),
        flags: opts.flags,
        data,
        remount_flags: None,
        propagation: opts.propagation,
        is_file: false,
        detached: None,
        recursive_attr,
        plain_dir: typ == "proc" || typ == "sysfs",
    });
    Ok(())
}

/// A bind mount (`bind`/`rbind`, or type `bind`): its source (relative to the bundle), an
/// idmapped copy when the mount has id mappings, its flags applied by a remount.
fn bind_mount(
    inp: &Inputs<'_>,
    i: usize,
    m: &oci_spec::runtime::Mount,
    field: &str,
    t: Target,
    opts: &MountOpts,
) -> Result<Mount> {
    let src = m
        .source()
        .clone()
        .ok_or_else(|| cfg(format!("{field}.source"), "a bind mount needs a source"))?;
    let src = if src.is_absolute() {
        src
    } else {
        inp.bundle.join(src)
    };
    let meta = std::fs::metadata(&src)
        .map_err(|e| cfg(format!("{field}.source"), format!("{}: {e}", src.display())))?;
    let user_flags = opts.flags & !libc::MS_REMOUNT;
    let idmap = inp.mount_idmaps.get(i).cloned().flatten();
    if opts.idmap && idmap.is_none() {
        return Err(cfg(
            format!("{field}.options"),
            "\"idmap\" needs the mount's uidMappings and gidMappings",
        ));
    }
    let detached = match &idmap {
        Some(map) => Some(
            crate::idmap::detached(&src, opts.rec, user_flags, map)
                .map_err(|e| cfg(format!("{field}.uidMappings"), e))?,
        ),
        None => None,
    };
    Ok(Mount {
        source: Some(cstr(field, src.to_string_lossy().as_bytes())?),
        target: t,
        fstype: None,
        flags: libc::MS_BIND | if opts.rec { libc::MS_REC } else { 0 },
        data: None,
        remount_flags: if user_flags != 0 && detached.is_none() {
            Some(user_flags)
        } else {
            None
        },
        propagation: opts.propagation,
        is_file: !meta.is_dir(),
        detached,
        recursive_attr: opts.recursive,
        plain_dir: false,
    })
}

/// A bind mount takes no filesystem options: the words of its options that are none of
/// corral's are ignored, a bare word with a warning.
fn warn_ignored_bind_options(field: &str, opts: &MountOpts) {
    if opts.data.is_empty() {
        return;
    }
    // A bind mount takes no filesystem options. Every option that is not a mount
    // flag, a propagation, a recursive attribute or (r)bind/(r)idmap (`mode=755`,
    // `size=1k`, `uid=0`, or any other word) is ignored, as runc and youki ignore it
    // (they pass it as data, which the kernel ignores for MS_BIND): engines send
    // such options. corral does not pass it on at all. A bare word (no `=`) is more
    // likely a mistyped flag (`rrro`, `noxec`) than filesystem data: a warning names
    // it, so the mistake is seen, but the mount is made as runc makes it.
    let (data, words): (Vec<&String>, Vec<&String>) =
        opts.data.iter().partition(|o| o.contains('='));
    if !words.is_empty() {
        tracing::warn!(
            "{field}.options: {words:?} ignored: not a flag a bind mount knows (a typo?)"
        );
    }
    if !data.is_empty() {
        tracing::debug!(
            "{field}.options: {data:?} ignored (filesystem data; a bind mount takes none)"
        );
    }
}

/// The devices (the defaults, then the spec's: a spec device replaces a default of its
/// path) and the `/dev` links.
fn devices(linux: &oci_spec::runtime::Linux, has_pts: bool) -> Result<(Vec<Device>, Vec<Symlink>)> {
    let mut devices = Vec::new();
    let mut symlinks = Vec::new();
    let mut list: Vec<(String, u32, u64, u64, u32, u32, u32)> = vec![
        ("/dev/null".into(), libc::S_IFCHR, 1, 3, 0o666, 0, 0),
        ("/dev/zero".into(), libc::S_IFCHR, 1, 5, 0o666, 0, 0),
        ("/dev/full".into(), libc::S_IFCHR, 1, 7, 0o666, 0, 0),
        ("/dev/random".into(), libc::S_IFCHR, 1, 8, 0o666, 0, 0),
        ("/dev/urandom".into(), libc::S_IFCHR, 1, 9, 0o666, 0, 0),
        ("/dev/tty".into(), libc::S_IFCHR, 5, 0, 0o666, 0, 0),
    ];
    for (i, d) in linux
        .devices()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("linux.devices[{i}]");
        // Under /dev, and a type it can make: crate::validate.
        let path = d.path().to_string_lossy().into_owned();
        use oci_spec::runtime::LinuxDeviceType as T;
        let kind = match d.typ() {
            T::C | T::U => libc::S_IFCHR,
            T::B => libc::S_IFBLK,
            T::P => libc::S_IFIFO,
            T::A => return Err(cfg(format!("{field}.type"), "\"a\" is not c, u, b or p")),
        };
        let perm = d.file_mode().unwrap_or(0o666) & 0o7777;
        let entry = (
            path.clone(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            perm,
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        );
        list.retain(|x| x.0 != path);
        list.push(entry);
    }
    for (i, (path, kind, major, minor, perm, uid, gid)) in list.into_iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        devices.push(Device {
            target: target(&field, &path)?,
            mode: kind | perm,
            major,
            minor,
            uid,
            gid,
            host_path: cstr(&field, path.as_str())?,
        });
    }
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if has_pts {
        links.push(("pts/ptmx", "/dev/ptmx"));
    }
    for (to, link) in links {
        symlinks.push(Symlink {
            target: cstr("symlink", to)?,
            link: target("symlink", link)?,
        });
    }
    Ok((devices, symlinks))
}

/// The cgroup mount: on v1 and hybrid hosts a tmpfs with each hierarchy's container cgroup
/// bound under it; on a pure v2 host the container's cgroup bound at the destination.
fn cgroup_mounts(
    field: &str,
    t: Target,
    opts: &MountOpts,
    views: &[CgroupView],
    context: Option<&str>,
    out: &mut Vec<Mount>,
) -> Result<()> {
    let ro = opts.flags & libc::MS_RDONLY != 0;
    let base = opts.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    let bind = |target: Target, dir: &Path, out: &mut Vec<Mount>| -> Result<()> {
        out.push(Mount {
            source: Some(cstr(field, dir.to_string_lossy().as_bytes())?),
            target,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
            remount_flags: Some(base | if ro { libc::MS_RDONLY } else { 0 }),
            propagation: 0,
            is_file: false,
            detached: None,
            recursive_attr: opts.recursive,
            plain_dir: false,
        });
        Ok(())
    };
    if let [v] = views {
        if v.name.is_empty() {
            return bind(t, &v.host_dir, out);
        }
    }
    let dest = t.display();
    out.push(Mount {
        source: Some(c"tmpfs".into()),
        target: t.clone(),
        fstype: Some(c"tmpfs".into()),
        flags: base,
        data: Some(match context {
            Some(c) => cstr(field, format!("mode=755,{c}"))?,
            None => c"mode=755".into(),
        }),
        remount_flags: None,
        propagation: 0,
        is_file: false,
        detached: None,
        // Applied by the last entry, once the binds below are in place (an `rro` tmpfs
        // could not take their mount points).
        recursive_attr: None,
        plain_dir: false,
    });
    for v in views {
        let sub = target(field, &format!("{dest}/{}", v.name))?;
        bind(sub, &v.host_dir, out)?;
    }
    if ro || opts.recursive.is_some() {
        out.push(Mount {
            source: None,
            target: t,
            fstype: None,
            flags: libc::MS_REMOUNT | if ro { libc::MS_RDONLY } else { 0 } | base,
            data: Some(c"mode=755".into()),
            remount_flags: None,
            propagation: 0,
            is_file: false,
            detached: None,
            recursive_attr: opts.recursive,
            plain_dir: false,
        });
    }
    Ok(())
}

/// A root that is only `chroot`ed into, in the caller's mount namespace (nothing mounted).
pub(super) fn chroot_only(path: CString) -> Rootfs {
    Rootfs {
        path,
        mount_ns: false,
        propagation: 0,
        root_propagation: 0,
        mounts: Vec::new(),
        devices: Vec::new(),
        bind_devices: false,
        symlinks: Vec::new(),
        masked: Vec::new(),
        readonly_paths: Vec::new(),
        readonly: false,
        no_pivot: false,
        private_parent: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_names() {
        assert_eq!(propagation("private"), Some(libc::MS_PRIVATE));
        assert_eq!(propagation("rslave"), Some(libc::MS_SLAVE | libc::MS_REC));
        assert_eq!(
            propagation("runbindable"),
            Some(libc::MS_UNBINDABLE | libc::MS_REC)
        );
        assert_eq!(propagation("rbind"), None);
        assert_eq!(propagation("ro"), None);
    }

    #[test]
    fn every_listed_mount_option_parses_as_one_of_corrals() {
        assert_eq!(MOUNT_OPTIONS.len(), OPTIONS.len());
        for name in MOUNT_OPTIONS {
            let o = parse_options("mounts[0].options", &[name.to_string()]).unwrap();
            assert!(
                o.data.is_empty(),
                "{name} went to the filesystem: {:?}",
                o.data
            );
            let e = effect(name).unwrap();
            let seen = match e {
                Effect::Flags(set, clear) => o.flags == set && o.clear == clear,
                Effect::Bind { rec } => o.bind && o.rec == rec,
                Effect::Propagation(p) => o.propagation == p && propagation(name) == Some(p),
                Effect::Idmap { rec } => o.idmap && o.rec == rec,
                Effect::Recursive(..) | Effect::RecursiveAtime(_) => o.recursive.is_some(),
            };
            assert!(seen, "{name}: {e:?} not applied");
        }
        let mut names = MOUNT_OPTIONS.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), MOUNT_OPTIONS.len(), "a name listed twice");
        // What is not listed goes to the filesystem.
        let o = parse_options("mounts[0].options", &["size=1m".into()]).unwrap();
        assert_eq!(o.data, ["size=1m"]);
    }

    #[test]
    fn recursive_options() {
        let rec = |v: &[&str]| {
            let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            parse_options("mounts[0].options", &v).unwrap().recursive
        };
        use libc::{
            MOUNT_ATTR_NOATIME as NOATIME, MOUNT_ATTR_NODIRATIME as NODIRATIME,
            MOUNT_ATTR_NOEXEC as NOEXEC, MOUNT_ATTR_RDONLY as RDONLY,
            MOUNT_ATTR_RELATIME as RELATIME, MOUNT_ATTR_STRICTATIME as STRICTATIME,
        };
        assert_eq!(rec(&["rbind", "ro", "rprivate"]), None);
        assert_eq!(rec(&["rro", "rnoexec"]), Some((RDONLY | NOEXEC, 0)));
        // The last of opposite options wins.
        assert_eq!(rec(&["rro", "rrw"]), Some((0, RDONLY)));
        assert_eq!(rec(&["rrw", "rro"]), Some((RDONLY, 0)));
        // An atime mode replaces the whole atime field.
        assert_eq!(rec(&["rnoatime"]), Some((NOATIME, ATIME_MASK)));
        assert_eq!(rec(&["rnoatime", "ratime"]), Some((RELATIME, ATIME_MASK)));
        assert_eq!(
            rec(&["rnoatime", "rstrictatime", "rnodiratime"]),
            Some((STRICTATIME | NODIRATIME, ATIME_MASK))
        );
        assert_eq!(rec(&["rnostrictatime"]), Some((RELATIME, ATIME_MASK)));
    }
}
