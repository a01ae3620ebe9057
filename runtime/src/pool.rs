//! A warm pool: containers made ahead from one template, waiting for their program.
//!
//! Each pooled container has done its whole set-up — namespaces, cgroups with their limits,
//! the root and its mounts, credentials — and waits at its start gate not knowing what it will
//! run ([`Options::late_exec`]). [`Pool::take`] hands one out started with the caller's
//! arguments and environment: what is left is one message, a memfd mapped by the waiting
//! process, and `execve`. A background thread keeps `size` containers ready.
//!
//! Cleanup: dropping the pool removes every container still in it. Until it is taken, a pooled
//! container's process dies with the pool's thread (parent-death signal), so a host process
//! that is killed leaves only state dirs and empty cgroups, recorded as `created`, which
//! `corral delete --force` removes, and which the next [`Pool::new`] with the same id prefix
//! and state root removes itself.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::config::Bundle;
use crate::container::{Container, Options};
use crate::state::Status;
use crate::{Error, Result};

/// How a pool is made.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// How many containers to keep ready (at least 1).
    pub size: usize,
    /// Ids are `PREFIX-PID-N`. Leftovers of an earlier pool with this prefix (a killed host)
    /// are removed by [`Pool::new`].
    pub id_prefix: String,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            size: 4,
            id_prefix: "corral-pool".into(),
        }
    }
}

struct Ready {
    containers: VecDeque<Container>,
    stop: bool,
    /// Ids handed out so far (the N of the ids).
    next: u64,
    /// The last error of the refill thread, for `take` when the pool is empty.
    error: Option<String>,
}

struct Shared {
    bundle: Bundle,
    opts: Options,
    prefix: String,
    size: usize,
    ready: Mutex<Ready>,
    /// Signalled when a container is taken (refill) or made (takers), or on stop.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Ready> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_id(&self) -> String {
        let mut r = self.lock();
        r.next += 1;
        format!(
            "{}-{}-{}",
            self.prefix,
            nix::unistd::getpid().as_raw(),
            r.next
        )
    }

    fn make(&self) -> Result<Container> {
        let mut c = Container::create_from(&self.next_id(), &self.bundle, &self.opts)?;
        // A waiting container must not block other processes' commands (`corral list`).
        c.unlock();
        Ok(c)
    }
}

/// A warm pool of containers (see the module's doc).
pub struct Pool {
    shared: Arc<Shared>,
    refill: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("prefix", &self.shared.prefix)
            .field("size", &self.shared.size)
            .field("ready", &self.ready())
            .finish()
    }
}

impl Pool {
    /// Makes a pool of containers from `bundle` ([`crate::Description::bundle`]'s, or a config's:
    /// its `process.args` are replaced at take time, the rest holds for every container),
    /// created with `opts` under `opts.root`. The first container is made before this
    /// returns, so a template that cannot run fails here, naming what is wrong.
    pub fn new(bundle: Bundle, opts: Options, popts: PoolOptions) -> Result<Pool> {
        if popts.size == 0 {
            return Err(Error::Config {
                field: "pool.size".into(),
                reason: "must be at least 1".into(),
            });
        }
        crate::state::check_id(&format!("{}-1-1", popts.id_prefix)).map_err(|_| Error::Config {
            field: "pool.id_prefix".into(),
            reason: format!(
                "{:?}: letters, digits, '_', '.' and '-' only, not starting with '.' or '-'",
                popts.id_prefix
            ),
        })?;
        sweep(&opts.root, &popts.id_prefix);
        let shared = Arc::new(Shared {
            bundle,
            opts: Options {
                late_exec: true,
                ..opts
            },
            prefix: popts.id_prefix,
            size: popts.size,
            ready: Mutex::new(Ready {
                containers: VecDeque::new(),
                stop: false,
                next: 0,
                error: None,
            }),
            changed: Condvar::new(),
        });
        // The containers are made by the refill thread: their processes die with the thread
        // that made them until they are taken, and this one is the pool's.
        let (tx, rx) = std::sync::mpsc::channel::<Result<()>>();
        let s = shared.clone();
        let refill = std::thread::Builder::new()
            .name("corral-pool".into())
            .spawn(move || refill(s, tx))
            .map_err(|e| Error::Sys {
                id: String::new(),
                what: format!("starting the pool's thread: {e}"),
                errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)),
            })?;
        let mut pool = Pool {
            shared,
            refill: Some(refill),
        };
        match rx.recv() {
            Ok(Ok(())) => Ok(pool),
            Ok(Err(e)) => {
                pool.stop();
                Err(e)
            }
            Err(_) => {
                pool.stop();
                Err(Error::Sys {
                    id: String::new(),
                    what: "the pool's thread ended".into(),
                    errno: nix::errno::Errno::EPIPE,
                })
            }
        }
    }

    /// Containers ready now.
    pub fn ready(&self) -> usize {
        self.shared.lock().containers.len()
    }

    /// A container started with `args`, the template's environment plus `env`, and `stdio` as
    /// its stdin, stdout and stderr (`-1`: the template's): running when this returns, the
    /// caller's to wait for and delete (dropping it removes it). Taken from the ready ones, or
    /// made on the spot when none is ready.
    pub fn take(
        &self,
        args: &[String],
        env: &[(String, String)],
        stdio: [std::os::fd::RawFd; 3],
    ) -> Result<Container> {
        // The refill is woken only once the taken one runs: making the next container would
        // compete with this start for the CPUs.
        let popped = self.shared.lock().containers.pop_front();
        let mut c = match popped {
            Some(c) => c,
            None => {
                self.shared.changed.notify_all();
                self.shared.make()?
            }
        };
        let r = c.start_with(args, env, stdio);
        self.shared.changed.notify_all();
        r?;
        Ok(c)
    }

    /// Like [`Pool::take`], but waits until a container is ready rather than making one here
    /// (for callers whose threads may end while the container waits: a pooled container's
    /// process dies with the thread that made it until it is started).
    pub fn take_ready(
        &self,
        args: &[String],
        env: &[(String, String)],
        stdio: [std::os::fd::RawFd; 3],
    ) -> Result<Container> {
        let mut c = {
            let mut r = self.shared.lock();
            loop {
                if let Some(c) = r.containers.pop_front() {
                    break c;
                }
                if r.stop {
                    return Err(Error::State {
                        id: self.shared.prefix.clone(),
                        status: "stopped",
                        want: "a running pool",
                    });
                }
                r = self
                    .shared
                    .changed
                    .wait(r)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        let started = c.start_with(args, env, stdio);
        // Refill now that the taken one runs (see `take`).
        self.shared.changed.notify_all();
        started?;
        Ok(c)
    }

    /// The last error the refill thread met making a container, if any.
    pub fn last_error(&self) -> Option<String> {
        self.shared.lock().error.clone()
    }

    fn stop(&mut self) {
        {
            let mut r = self.shared.lock();
            r.stop = true;
            self.shared.changed.notify_all();
        }
        if let Some(t) = self.refill.take() {
            let _ = t.join();
        }
        // Every container still waiting: removed (Container's drop).
        let left: Vec<Container> = self.shared.lock().containers.drain(..).collect();
        drop(left);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The refill thread: keeps `size` containers ready until the pool stops. The first result
/// goes to `Pool::new`.
fn refill(s: Arc<Shared>, first: std::sync::mpsc::Sender<Result<()>>) {
    let mut first = Some(first);
    let mut backoff = std::time::Duration::from_millis(10);
    loop {
        {
            let mut r = s.lock();
            while !r.stop && r.containers.len() >= s.size {
                r = s.changed.wait(r).unwrap_or_else(|p| p.into_inner());
            }
            if r.stop {
                // Containers made by this thread die with it: the pool removes them now.
                return;
            }
        }
        match s.make() {
            Ok(c) => {
                backoff = std::time::Duration::from_millis(10);
                let mut r = s.lock();
                r.containers.push_back(c);
                r.error = None;
                s.changed.notify_all();
                drop(r);
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
            }
            Err(e) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
                tracing::warn!("pool {}: {e}", s.prefix);
                s.lock().error = Some(e.to_string());
                // Do not spin on a failure that lasts (a full disk, a pids limit).
                let r = s.lock();
                let _ = s.changed.wait_timeout(r, backoff);
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
            }
        }
    }
}

/// Removes what a pool with this prefix left when its process was killed: containers still
/// recorded as `created` whose process is gone.
fn sweep(root: &std::path::Path, prefix: &str) {
    let Ok(ids) = crate::state::list_ids(root) else {
        return;
    };
    let lead = format!("{prefix}-");
    for id in ids.iter().filter(|i| i.starts_with(&lead)) {
        // A container locked by another process is in use (a live pool's): not ours.
        let Ok(Some(c)) = Container::try_load(root, id) else {
            continue;
        };
        if c.state().status == Status::Created && c.status() == Status::Stopped {
            drop(c);
            if let Err(e) = Container::force_delete(root, id) {
                tracing::warn!("pool {prefix}: removing the leftover {id}: {e}");
            }
        }
    }
}
