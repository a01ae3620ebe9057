//! The opaque handles C holds and their registry: a handle is an id never reused (the
//! maker's pid, a serial number and a tag, see [`handle_for`]), looked up before use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::container::ContainerObj;
use crate::error::{invalid, Fail};
use crate::exec::ProcessObj;
use crate::spec::SpecObj;

/// A container's description: built field by field, or from a bundle or a config JSON.
/// Opaque; made by corral_spec_new(), corral_spec_from_bundle() or corral_spec_from_json(),
/// freed by corral_spec_free().
pub struct corral_spec {
    _opaque: [u8; 0],
}

/// A container. Opaque; made by corral_create(), corral_run() or corral_open(), freed by
/// corral_container_free().
pub struct corral_container {
    _opaque: [u8; 0],
}

/// A process started by corral_exec(). Opaque; freed by corral_process_free().
pub struct corral_process {
    _opaque: [u8; 0],
}

/// A warm pool of containers made ahead from one spec. Opaque; made by corral_pool_new(),
/// freed by corral_pool_free().
pub struct corral_pool {
    _opaque: [u8; 0],
}

/// Live handles of one kind. A handle is an id, never an address, and never reused in a
/// process (see [`handle_for`]), so a freed handle stays invalid whatever is made after it;
/// it is looked up before use. Each process has its own map: a child after `fork()` starts
/// with an empty one and leaves the copy of its parent's as it is (never locked, since a
/// parent thread may have held the lock at the fork, and never dropped, since the objects in
/// it are the parent's).
pub(crate) struct Registry<T> {
    live: AtomicPtr<Live<T>>,
}

pub(crate) struct Live<T> {
    pid: i32,
    map: Mutex<HashMap<usize, Arc<T>>>,
}

/// The low bits of every handle: a real address (of an 8-byte aligned object) never has
/// them, so a made-up pointer is not taken for another process's handle.
pub(crate) const HANDLE_TAG: usize = 0xa;
/// Bits of a handle's serial number (between the tag and the pid).
pub(crate) const SERIAL_BITS: u32 = 38;
/// Where the pid of the process that made a handle starts (pids are below 2^22).
pub(crate) const PID_SHIFT: u32 = SERIAL_BITS + 4;

/// The next handle's serial number, shared by every kind of handle.
pub(crate) static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

#[cfg(not(target_pointer_width = "64"))]
compile_error!("corral's C handles carry a 64-bit id");

pub(crate) fn my_pid() -> i32 {
    // SAFETY: plain getter (a real syscall: glibc caches no pid since 2.25).
    unsafe { libc::getpid() }
}

/// A new handle of process `pid`: `pid << 42 | serial << 4 | 0xa`; an error once the
/// process has made 2^38 handles (rather than reuse one).
pub(crate) fn handle_for(pid: i32) -> Result<usize, Fail> {
    let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
    if serial >= 1 << SERIAL_BITS {
        return Err(Fail {
            code: libc::EMFILE,
            message: "this process has made every handle it may (2^38); ids are never reused"
                .into(),
            step: Some("argument".into()),
            path: None,
        });
    }
    Ok(((pid as usize) << PID_SHIFT) | ((serial as usize) << 4) | HANDLE_TAG)
}

/// The process that made handle `h`, if `h` has the shape of a handle.
pub(crate) fn handle_pid(h: usize) -> Option<i32> {
    (h & 0xf == HANDLE_TAG).then_some((h >> PID_SHIFT) as i32)
}

/// The error for a handle made by another process (a parent, before `fork()`).
pub(crate) fn foreign(what: &str, owner: i32, me: i32) -> Fail {
    Fail {
        code: libc::EXDEV,
        message: format!(
            "{what}: a handle of process {owner}, used in process {me}: handles belong to \
             the process that made them and do not cross fork()"
        ),
        step: Some("argument".into()),
        path: Some(what.into()),
    }
}

impl<T> Registry<T> {
    pub(crate) const fn new() -> Self {
        Registry {
            live: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// This process's map (made at its first use, or after a fork).
    fn live(&self, me: i32) -> &Live<T> {
        let cur = self.live.load(Ordering::Acquire);
        // SAFETY: a non-null pointer here came from Box::into_raw below and is never freed.
        if let Some(l) = unsafe { cur.as_ref() } {
            if l.pid == me {
                return l;
            }
        }
        let fresh = Box::into_raw(Box::new(Live {
            pid: me,
            map: Mutex::new(HashMap::new()),
        }));
        match self
            .live
            .compare_exchange(cur, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // SAFETY: just made, never freed.
            Ok(_) => unsafe { &*fresh },
            Err(other) => {
                // Another thread of this process made it first.
                // SAFETY: `fresh` was never shared; `other` is never freed.
                unsafe {
                    drop(Box::from_raw(fresh));
                    &*other
                }
            }
        }
    }

    fn map(&self, me: i32) -> MutexGuard<'_, HashMap<usize, Arc<T>>> {
        // A panic while the map was locked cannot leave it inconsistent (one insert or remove).
        self.live(me).map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add(&self, obj: T) -> Result<usize, Fail> {
        let me = my_pid();
        let key = handle_for(me)?;
        self.map(me).insert(key, Arc::new(obj));
        Ok(key)
    }

    pub(crate) fn get(&self, what: &str, h: usize) -> Result<Arc<T>, Fail> {
        if h == 0 {
            return Err(invalid(what, "NULL handle"));
        }
        let me = my_pid();
        match handle_pid(h) {
            Some(owner) if owner != me => return Err(foreign(what, owner, me)),
            _ => {}
        }
        self.map(me).get(&h).cloned().ok_or_else(|| Fail {
            code: libc::EBADF,
            message: format!(
                "{what}: not a live handle (freed already, or never made by this library)"
            ),
            step: Some("argument".into()),
            path: Some(what.into()),
        })
    }

    /// Takes the handle out of the registry: `None` for NULL, a freed or a made-up handle
    /// (a free function ignores them); an error for another process's handle, which is left
    /// as it is.
    pub(crate) fn remove(&self, what: &str, h: usize) -> Result<Option<Arc<T>>, Fail> {
        if h == 0 {
            return Ok(None);
        }
        let me = my_pid();
        match handle_pid(h) {
            Some(owner) if owner != me => Err(foreign(what, owner, me)),
            _ => Ok(self.map(me).remove(&h)),
        }
    }
}

pub(crate) static SPECS: Registry<SpecObj> = Registry::new();
pub(crate) static CONTAINERS: Registry<ContainerObj> = Registry::new();
pub(crate) static PROCESSES: Registry<ProcessObj> = Registry::new();
pub(crate) static POOLS: Registry<runtime::Pool> = Registry::new();

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
