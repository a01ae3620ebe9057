//! Where a spawn's time went: one entry per phase, in the order the phases ran.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::time::{Duration, Instant};

/// The phases of [`crate::Container::create`], in the order they run. Each is undone by its
/// own guard when a later one fails.
///
/// | phase | what it does |
/// |---|---|
/// | `check` | the id, the fields corral refuses, hooks, cgroup plan and limits: nothing is made |
/// | `record` | the state dir, the kept config, the state `creating` (what is about to be made) |
/// | `rootfs` | the overlay of image layers, when there are layers |
/// | `cgroup` | the cgroups made and limited, before the clone |
/// | `plan` | the child's whole set-up prepared: C strings, masks, seccomp BPF, the start gate |
/// | `clone` | the process cloned (into its cgroup where the kernel can) |
/// | `setup` | the child's set-up, id maps, network devices and create hooks, until it waits at its gate |
/// | `created` | the terminal handed over and the state `created` written |
pub const CREATE_PHASES: [&str; 8] = [
    "check", "record", "rootfs", "cgroup", "plan", "clone", "setup", "created",
];

/// The phase of [`crate::Container::start`]: the gate opened, until `execve` succeeded.
pub const START_PHASE: &str = "start";

/// The duration of each phase of a spawn, in the order the phases ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    phases: Vec<(&'static str, Duration)>,
}

impl Timings {
    /// The phases, by name, in order.
    pub fn phases(&self) -> &[(&'static str, Duration)] {
        &self.phases
    }

    /// The duration of the phase `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<Duration> {
        self.phases.iter().find(|(n, _)| *n == name).map(|p| p.1)
    }

    /// The sum of every phase.
    pub fn total(&self) -> Duration {
        self.phases.iter().map(|p| p.1).sum()
    }

    pub(crate) fn push(&mut self, name: &'static str, d: Duration) {
        self.phases.push((name, d));
    }

    /// Runs `f` as the phase `name` and records how long it took.
    pub(crate) fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        self.phases.push((name, t.elapsed()));
        r
    }
}

impl std::fmt::Display for Timings {
    /// `check 0.051ms, record 0.210ms, ...`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (n, d)) in self.phases.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n} {:.3}ms", d.as_secs_f64() * 1e3)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_kept_in_order_and_summed() {
        let mut t = Timings::default();
        let v = t.time("check", || 7);
        assert_eq!(v, 7);
        t.time("clone", || std::thread::sleep(Duration::from_millis(2)));
        assert_eq!(
            t.phases().iter().map(|p| p.0).collect::<Vec<_>>(),
            ["check", "clone"]
        );
        assert!(t.get("clone").unwrap() >= Duration::from_millis(2));
        assert!(t.get("start").is_none());
        assert_eq!(t.total(), t.get("check").unwrap() + t.get("clone").unwrap());
        assert!(t.to_string().starts_with("check 0.0"), "{t}");
    }
}
