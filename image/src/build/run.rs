//! RUN: the step's command in a container of its own on the step root, a guard that takes
//! that container down if the build dies, and the mount placeholders kept out of the layer.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use runtime::describe::{Description, NetworkMode, Root};
use sha2::{Digest as _, Sha256};

use super::cache::hex;
use super::copy::mkdir_in_root;
use super::{BuildEvent, BuildOptions, Stage, StepRoot};
use crate::store::{ImageStore, Layer};

/// The label SHELL is kept in (the OCI image config has no Shell field).
pub(super) const SHELL_LABEL: &str = "org.corral.build.shell";

/// The shell the image's SHELL set, if any.
pub(super) fn labels_shell(cfg: &oci_spec::image::Config) -> Option<Vec<String>> {
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
    match nix::sys::stat::fstatat(
        Some(pfd.as_raw_fd()),
        cn.as_c_str(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => Ok(Some((st, pfd, cn))),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
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

/// Run a RUN step's command in a container on a fresh step root (state under
/// `opts.state_root`, network per `opts.host_network`); its upper dir, placeholders
/// removed, becomes the step's layer.
pub(super) fn run_step(
    store: &ImageStore,
    opts: &BuildOptions,
    st: &Stage,
    cfg: &oci_spec::image::Config,
    argv: Vec<String>,
    env: Vec<String>,
    progress: &mut dyn FnMut(BuildEvent),
) -> Result<Layer, String> {
    let host_network = opts.host_network;
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
    let mut d = Description::new(Root::Image(String::new()));
    d.args = argv.clone();
    d.entrypoint = Some(Vec::new());
    d.hostname = Some("corral-build".into());
    if host_network {
        d.network.mode = NetworkMode::Host;
    } else {
        d.network.networks = opts.networks.clone();
    }
    let mut d = crate::describe::describe_image(&id, &image_cfg, &layer_dirs, &d)
        .map_err(|e| e.to_string())?;
    d.root = Root::Dir(merged.clone());
    let net = crate::network::plan(&store.root, &id, &mut d).map_err(|e| e.to_string())?;
    let spec = d.to_spec().map_err(|e| e.to_string())?;
    let bundle = sr.tmp.join("bundle");
    fs::create_dir(&bundle).map_err(|e| e.to_string())?;
    // The bundle on disk, as engines and `corral state` expect it; the container is made
    // from the typed spec.
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let bundle = runtime::Bundle::from_spec(bundle, spec).map_err(|e| e.to_string())?;
    let root = opts.state_root.clone();
    progress(BuildEvent::Running { id: id.clone() });
    // Which container uses this step root: `image prune` takes it down if this build and
    // its guard both died.
    fs::write(
        sr.tmp.join(crate::STEP_CONTAINER),
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
        let made = runtime::Container::create_from(&id, &bundle, &opts);
        let attached = match (&made, &net) {
            (Ok(ct), Some(p)) => p.attach(&id, &opts.root, ct.pid()).map(|_| ()),
            _ => Ok(()),
        };
        let ran = match (made, attached) {
            (Err(e), _) => Err(e.to_string()),
            (Ok(ct), Err(e)) => {
                let _ = ct.delete_checked(true);
                Err(e.to_string())
            }
            (Ok(mut ct), Ok(())) => match ct.start() {
                Err(e) => {
                    let _ = ct.delete();
                    Err(e.to_string())
                }
                Ok(()) => {
                    let s = ct.wait().map_err(|e| e.to_string());
                    ct.delete().map_err(|e| e.to_string()).and(s)
                }
            },
        };
        if let Some(p) = &net {
            p.undo(&id);
        }
        ran?
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
