//! [`Netns`]: a network namespace made for a test, deleted on drop.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A network namespace made for a test (`ip netns add`, so `/run/netns/NAME`), with its
/// loopback up. Deleted on drop, even when the test fails; errors then are ignored.
///
/// Three ways to run something in it:
/// * [`Netns::run`]: a closure on a thread that joined it (its sockets, and what it
///   spawns, are the namespace's);
/// * [`Netns::command`]: a program that joins it before exec (nothing else changes: use
///   this for corral and anything that looks at cgroups);
/// * [`Netns::exec`]: `ip netns exec`, which also mounts the namespace's sysfs over /sys
///   and so hides the cgroup mounts (fine for iptables-save or tc, not for corral).
pub struct Netns {
    name: String,
    deleted: bool,
}

impl Netns {
    /// Makes a namespace named by [`crate::unique_id`]`(tag)` and sets its `lo` up.
    /// Panics unless root, or when `ip` fails.
    pub fn new(tag: &str) -> Netns {
        crate::require_root();
        let name = crate::unique_id(tag);
        let o = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip (apt-get install iproute2)");
        assert!(
            o.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let ns = Netns {
            name,
            deleted: false,
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `ip -n NAME ARGS`, which must succeed; its stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let o = self.try_ip(args);
        assert!(
            o.status.success(),
            "ip -n {} {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `ip -n NAME ARGS`'s output, whether it succeeded or not.
    pub fn try_ip(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("run ip (apt-get install iproute2)")
    }

    /// `ip netns exec NAME CMD...`, which must succeed; its stdout. It remounts /sys
    /// (hiding the cgroup mounts): for tools like iptables-save or tc, not for corral.
    pub fn exec(&self, cmd: &[&str]) -> String {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .expect("run ip netns exec");
        assert!(
            o.status.success(),
            "{cmd:?} in {}: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A command for `program` that joins this namespace (setns) between fork and exec;
    /// nothing else about it changes.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let f = File::open(self.path())
            .unwrap_or_else(|e| panic!("open {}: {e}", self.path().display()));
        let mut c = Command::new(program);
        // SAFETY: the closure only calls setns(2), which is async-signal-safe, on an fd
        // that stays open as long as the closure (moved into it) lives.
        unsafe {
            c.pre_exec(move || {
                if libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    }

    /// Runs `f` on a thread that joined this namespace (its sockets, and what it spawns,
    /// are the namespace's); the caller's thread is left alone. A panic in `f` goes on
    /// in the caller.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(move || {
                let ns =
                    File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {}: {e}", path.display()));
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Deletes the namespace now (as when a container's process is gone); errors are
    /// ignored. Drop does nothing more afterwards.
    pub fn delete(&mut self) {
        if !self.deleted {
            self.deleted = true;
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.name])
                .status();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete();
    }
}
