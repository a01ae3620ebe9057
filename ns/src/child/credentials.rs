//! Who the process is: its security-module labels, its session keyring, its capability sets
//! (bounding, effective/permitted/inheritable, ambient), its ids and groups, no_new_privs,
//! and its seccomp filter.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::string_slice
)]

use libc::{c_int, c_ulong};

use super::{check, fail, indexed, raw, sync, Fd, R};
use crate::plan::{Caps, Keyring, LsmAttr, Plan, Process};
use crate::proto::{msg, ChildArgs};
use crate::sys::{self, errno};
use crate::Step;

/// `CAP_SYS_ADMIN`, which installing a filter without no_new_privs needs.
const CAP_SYS_ADMIN: u32 = 21;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;

/// The host's /proc (`Plan::attr_root`), for the security-module attribute files; -1 without.
pub(super) fn open_attr_root(plan: &Plan) -> R<Fd> {
    let Some(p) = &plan.attr_root else {
        return Ok(Fd(-1));
    };
    let fd = raw::open(p, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC, 0);
    if fd < 0 {
        return fail(
            Step::SecurityLabel,
            plan.process.exec_labels.len().saturating_add(1),
        );
    }
    Ok(Fd(fd))
}

/// Opens the exec label files (at most two) of this thread, under `attr_root`.
pub(super) fn open_exec_labels(plan: &Plan, attr_root: c_int) -> R<[Fd; 2]> {
    let mut labels = [Fd(-1), Fd(-1)];
    for (i, a) in indexed(&plan.process.exec_labels) {
        match labels.get_mut(i) {
            Some(l) => *l = open_attr(attr_root, a, i)?,
            None => return Err((Step::SecurityLabel, libc::E2BIG, i as u32)),
        }
    }
    Ok(labels)
}

fn open_attr(root: c_int, a: &LsmAttr, idx: usize) -> R<Fd> {
    let fd = raw::openat(
        root,
        &a.file,
        libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        0,
    );
    if fd < 0 {
        return fail(Step::SecurityLabel, idx);
    }
    Ok(Fd(fd))
}

fn write_attr(fd: c_int, a: &LsmAttr, idx: usize) -> R {
    let b = a.value.to_bytes();
    let n = raw::write(fd, b);
    if n < 0 {
        return fail(Step::SecurityLabel, idx);
    }
    if n as usize != b.len() {
        return Err((Step::SecurityLabel, libc::EIO, idx as u32));
    }
    Ok(())
}

/// Writes the labels of the program to exec, through the files [`open_exec_labels`] opened.
pub(super) fn write_exec_labels(p: &Process, labels: &[Fd; 2]) -> R {
    for (i, (a, fd)) in (0..labels.len()).zip(p.exec_labels.iter().zip(labels.iter())) {
        write_attr(fd.0, a, i)?;
    }
    Ok(())
}

/// Joins (or makes) the container's session keyring, so that the process does not share the
/// caller's keys. Kernels without keyrings (ENOSYS) are let be, as runc does.
pub(super) fn session_keyring(k: &Keyring, attr_root: c_int, label_idx: usize) -> R {
    // Possessor: everything; owner: view, read, search, link.
    const PERM: u32 = 0x3f00_0000 | 0x0001_0000 | 0x0002_0000 | 0x0008_0000 | 0x0010_0000;
    if let Some(l) = &k.label {
        let fd = open_attr(attr_root, l, label_idx)?;
        write_attr(fd.0, l, label_idx)?;
    }
    let id = raw::keyctl_join(&k.name);
    if id < 0 {
        if errno() == libc::ENOSYS {
            return Ok(());
        }
        return fail(Step::Keyring, 0);
    }
    if raw::keyctl_setperm(id, PERM) < 0 {
        return fail(Step::Keyring, 1);
    }
    Ok(())
}

/// Whether the process installs its seccomp filter right before `execve` (and each
/// startContainer hook its own, right before the hook's `execve`): always, but for a filter
/// with a notify listener, which goes in before the start gate.
pub(super) fn seccomp_late(plan: &Plan) -> bool {
    plan.seccomp
        .as_ref()
        .is_some_and(|sc| sc.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER == 0)
}

pub(super) fn install_seccomp(plan: &Plan, args: &ChildArgs, sock: c_int) -> R {
    if let Some(sc) = &plan.seccomp {
        let r = raw::seccomp_filter(&args.filter, sc.flags);
        if r < 0 {
            return fail(Step::Seccomp, 0);
        }
        if sc.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
            // The notify listener goes to the parent, which hands it to the spec's listener.
            let fd = Fd(r as c_int);
            sync::send_fd(sock, msg::SECCOMP, fd.0, Step::Seccomp)?;
        }
    }
    Ok(())
}

/// The capability the process keeps effective until its seccomp filter is in: CAP_SYS_ADMIN
/// when a filter goes in without no_new_privs (see [`credentials`]), else none.
fn admin_cap(plan: &Plan) -> u64 {
    if plan.seccomp.is_some() && !plan.process.no_new_privs {
        1u64 << CAP_SYS_ADMIN
    } else {
        0
    }
}

/// The process's capabilities, groups and ids, and no_new_privs.
///
/// The seccomp filter goes in as late as it can (see [`seccomp_late`]): nothing of corral's
/// own runs under the container's profile but `execve`. Without no_new_privs installing it
/// needs CAP_SYS_ADMIN, which the process keeps in its effective and permitted sets until
/// then (`admin`); `execve` computes the new sets from the bounding, inheritable and ambient
/// sets alone, so the extra capability never reaches the container's program.
pub(super) fn credentials(plan: &Plan) -> R {
    let p = &plan.process;
    let admin = admin_cap(plan);
    if p.caps.is_some() || admin != 0 {
        raw::prctl(libc::PR_SET_KEEPCAPS, 1, 0);
    }
    if let Some(c) = &p.caps {
        drop_bounding(c)?;
    }
    if !plan.deny_setgroups {
        check(raw::setgroups(&p.additional_gids), Step::Setgroups, 0)?;
    }
    check(raw::setresgid(p.gid), Step::Setgid, 0)?;
    check(raw::setresuid(p.uid), Step::Setuid, 0)?;
    if let Some(c) = &p.caps {
        raw::prctl(libc::PR_SET_KEEPCAPS, 0, 0);
        set_caps(c, admin)?;
    }
    if p.caps.is_none() && admin != 0 {
        // No capabilities of the config's: the process keeps what it has (the permitted set
        // survived the uid change through keep-caps); CAP_SYS_ADMIN effective until the filter.
        raw::prctl(libc::PR_SET_KEEPCAPS, 0, 0);
        let mut hdr = sys::CapHeader {
            version: sys::CAP_V3,
            pid: 0,
        };
        let mut data = [sys::CapData::default(), sys::CapData::default()];
        if sys::capget(&mut hdr, &mut data) == 0 {
            let [lo, _] = &mut data;
            lo.effective |= lo.permitted & (admin as u32);
            check(sys::capset(&mut hdr, &data), Step::Capset, 0)?;
        }
    }
    if p.no_new_privs {
        check(
            raw::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0),
            Step::NoNewPrivs,
            0,
        )?;
    }
    Ok(())
}

/// Drops every capability outside the bounding set (EINVAL: one the kernel lacks).
fn drop_bounding(c: &Caps) -> R {
    let mut cap = 0u32;
    while cap <= c.last_cap && cap < 64 {
        if c.bounding & (1u64 << cap) == 0
            && raw::prctl(libc::PR_CAPBSET_DROP, cap as c_ulong, 0) < 0
            && errno() != libc::EINVAL
        {
            return fail(Step::CapBounding, cap as usize);
        }
        cap = cap.saturating_add(1);
    }
    Ok(())
}

/// The effective, permitted and inheritable sets (with `admin` kept effective and permitted),
/// then the ambient set.
fn set_caps(c: &Caps, admin: u64) -> R {
    let mut hdr = sys::CapHeader {
        version: sys::CAP_V3,
        pid: 0,
    };
    let lo = |v: u64| v as u32;
    let hi = |v: u64| (v >> 32) as u32;
    let (eff, perm) = (c.effective | admin, c.permitted | admin);
    let data = [
        sys::CapData {
            effective: lo(eff),
            permitted: lo(perm),
            inheritable: lo(c.inheritable),
        },
        sys::CapData {
            effective: hi(eff),
            permitted: hi(perm),
            inheritable: hi(c.inheritable),
        },
    ];
    check(sys::capset(&mut hdr, &data), Step::Capset, 0)?;
    raw::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as c_ulong,
        0,
    );
    let mut cap = 0u32;
    while cap <= c.last_cap && cap < 64 {
        if c.ambient & (1u64 << cap) != 0 {
            check(
                raw::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as c_ulong,
                    cap as c_ulong,
                ),
                Step::CapAmbient,
                cap as usize,
            )?;
        }
        cap = cap.saturating_add(1);
    }
    Ok(())
}
