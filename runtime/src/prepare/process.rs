//! The process of a plan: arguments, environment, user, rlimits, capabilities, scheduling,
//! I/O priority, personality, memory policy and CPU affinity.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::CString;

use ns::{CStringArray, Caps, Process, Rlimit};
use oci_spec::runtime::{Linux, Spec};

use super::{cfg, cstr, Inputs, DEFAULT_PATH};
use crate::names::cap_number;
use crate::Result;

/// The container's own process: `process`, with its security labels, and the linux fields
/// that hold for every process of the container (personality, memory policy).
pub(super) fn of_container(
    spec: &Spec,
    linux: &Linux,
    userns: bool,
    inp: &Inputs<'_>,
) -> Result<Process> {
    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| cfg("process", "missing"))?;
    let mut process = process_of(p, userns, inp.preserve_fds, inp.stdio)?;
    process.exec_labels = inp.security.exec_labels(
        "process",
        p.apparmor_profile().as_deref(),
        p.selinux_label().as_deref(),
    )?;
    if let Some(pers) = linux.personality() {
        process.personality = Some(personality(pers)?);
    }
    if let Some(mp) = linux.memory_policy() {
        process.mempolicy = Some(mempolicy(mp)?);
    }
    Ok(process)
}

/// `process.oomScoreAdj` as the text written to `/proc/self/oom_score_adj`.
pub(super) fn oom_score_adj(spec: &Spec) -> Result<Option<CString>> {
    spec.process()
        .as_ref()
        .and_then(|p| p.oom_score_adj())
        .map(|v| cstr("process.oomScoreAdj", v.to_string()))
        .transpose()
}

/// The paths `execve` tries for `arg0`: itself when it holds a `/`, else each directory of
/// the `PATH` in `env` (the default `PATH` when it has none) joined with it, in order.
pub fn exec_candidates(arg0: &str, env: &[String]) -> Result<Vec<CString>> {
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    if arg0.contains('/') {
        return Ok(vec![cstr("process.args[0]", arg0)?]);
    }
    path_var
        .split(':')
        .map(|d| {
            let d = if d.is_empty() { "." } else { d };
            cstr(
                "process.env PATH",
                format!("{}/{arg0}", d.trim_end_matches('/')),
            )
        })
        .collect()
}

/// The process part of a plan, from an OCI process (the spec's, or `exec`'s), checked first
/// ([`crate::validate::process`]).
pub fn process_of(
    p: &oci_spec::runtime::Process,
    userns: bool,
    preserve_fds: u32,
    stdio: [libc::c_int; 3],
) -> Result<Process> {
    crate::validate::process(p)?;
    let args = p.args().clone().unwrap_or_default();
    let env = p.env().clone().unwrap_or_default();
    let exec_candidates = exec_candidates(args.first().map_or("", String::as_str), &env)?;
    let cwd = p.cwd().to_string_lossy().into_owned();
    let user = p.user();
    let mut rlimits = Vec::new();
    for r in p.rlimits().iter().flatten() {
        rlimits.push(Rlimit {
            resource: rlimit_resource(r.typ()),
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    let caps = match p.capabilities() {
        None => None,
        Some(c) => {
            let set = |field: &str, v: &Option<oci_spec::runtime::Capabilities>| -> Result<u64> {
                let mut bits = 0u64;
                for cap in v.clone().unwrap_or_default() {
                    // The enum's own name (`NET_BIND_SERVICE`), which `cap_number` knows.
                    let name = cap.to_string();
                    let n = cap_number(&name).ok_or_else(|| {
                        cfg(
                            format!("process.capabilities.{field}"),
                            format!("unknown capability {name:?}"),
                        )
                    })?;
                    bits |= 1 << n;
                }
                Ok(bits)
            };
            let mut caps = Caps {
                bounding: set("bounding", c.bounding())?,
                effective: set("effective", c.effective())?,
                permitted: set("permitted", c.permitted())?,
                inheritable: set("inheritable", c.inheritable())?,
                ambient: set("ambient", c.ambient())?,
                last_cap: ns::last_cap(),
            };
            // The kernel raises an ambient capability only if it is permitted and
            // inheritable; like runc, leave out the others with a warning.
            let dropped = caps.ambient & !(caps.permitted & caps.inheritable);
            if dropped != 0 {
                tracing::debug!(
                    "process.capabilities.ambient: {dropped:#x} not raised (ambient capabilities must also be permitted and inheritable)"
                );
                caps.ambient &= caps.permitted & caps.inheritable;
            }
            // What we do not hold ourselves we cannot give (the bounding set of this host may
            // lack some, e.g. CAP_SYS_RESOURCE). Name the first such capability.
            let held = held_caps();
            let wanted = caps.permitted | caps.effective | caps.ambient;
            if !userns && wanted & !held != 0 {
                let n = (0..64)
                    .find(|b| wanted & !held & (1 << b) != 0)
                    .unwrap_or(0);
                return Err(cfg(
                    "process.capabilities",
                    format!(
                        "{} is not in this runtime's own permitted set, so it cannot be granted",
                        crate::names::CAPS.get(n).copied().unwrap_or("?")
                    ),
                ));
            }
            Some(caps)
        }
    };
    let umask = user.umask().unwrap_or(0o022);
    Ok(Process {
        argv: CStringArray::new("process.args", args.clone())
            .map_err(|e| cfg("process.args", e.to_string()))?,
        envp: CStringArray::new("process.env", env)
            .map_err(|e| cfg("process.env", e.to_string()))?,
        exec_candidates,
        cwd: cstr("process.cwd", cwd)?,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask,
        rlimits,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        caps,
        preserve_fds,
        setsid: true,
        stdio,
        terminal: p.terminal().unwrap_or(false),
        personality: None,
        sched: p.scheduler().as_ref().map(sched_attr).transpose()?,
        ioprio: p.io_priority().as_ref().map(ioprio).transpose()?,
        mempolicy: None,
        exec_labels: Vec::new(),
        affinity_initial: None,
        affinity_final: None,
    })
}

/// This thread's permitted set (one `capget`, not a read of `/proc/self/status`).
fn held_caps() -> u64 {
    ns::permitted_caps().unwrap_or(u64::MAX)
}

fn sched_attr(s: &oci_spec::runtime::Scheduler) -> Result<ns::SchedAttr> {
    use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
    // The kernel's SCHED_* numbers (sched(7)).
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for fl in s.flags().clone().unwrap_or_default() {
        // The kernel's SCHED_FLAG_* bits (include/uapi/linux/sched.h).
        flags |= match fl {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    // Ranges: crate::validate::process.
    let nice = s.nice().unwrap_or(0);
    let priority = s.priority().unwrap_or(0);
    Ok(ns::SchedAttr {
        size: std::mem::size_of::<ns::SchedAttr>() as u32,
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

fn ioprio(p: &oci_spec::runtime::LinuxIOPriority) -> Result<libc::c_int> {
    use oci_spec::runtime::IOPriorityClass as C;
    let class = match p.class() {
        C::IoprioClassRt => 1,
        C::IoprioClassBe => 2,
        C::IoprioClassIdle => 3,
    };
    // 0..7: crate::validate::process.
    Ok((class << 13) | p.priority() as libc::c_int)
}

pub(crate) fn personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<u64> {
    // Flags are refused by crate::validate::spec.
    use oci_spec::runtime::LinuxPersonalityDomain as D;
    // PER_LINUX and PER_LINUX32 (include/uapi/linux/personality.h).
    Ok(match p.domain() {
        D::PerLinux => 0,
        D::PerLinux32 => 8,
    })
}

/// Parses a list such as "0-3,7" of ids below `limit` into mask words (empty for "").
fn bit_mask(field: &str, list: &str, what: &str, limit: u64) -> Result<Vec<libc::c_ulong>> {
    let mut set = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) else {
            return Err(cfg(
                field,
                format!("{list:?} is not a {what} list like 0-3,7"),
            ));
        };
        if a > b || b >= limit {
            return Err(cfg(field, format!("{list:?}: bad range {part}")));
        }
        set.extend(a..=b);
    }
    let Some(max) = set.iter().max() else {
        return Ok(Vec::new());
    };
    let mut mask = vec![0 as libc::c_ulong; (max / 64 + 1) as usize];
    for n in set {
        mask[(n / 64) as usize] |= 1 << (n % 64);
    }
    Ok(mask)
}

/// Parses a node list such as "0-3,7" into mask words and the maxnode of set_mempolicy.
pub(crate) fn node_mask(field: &str, nodes: &str) -> Result<(Vec<libc::c_ulong>, libc::c_ulong)> {
    let mask = bit_mask(field, nodes, "node", 1024)?;
    let maxnode = if mask.is_empty() {
        0
    } else {
        (mask.len() * 64) as libc::c_ulong + 1
    };
    Ok((mask, maxnode))
}

/// A CPU mask in `sched_setaffinity` words.
pub type CpuMask = Vec<libc::c_ulong>;

/// `process.execCPUAffinity` of an exec'd process: the initial and final CPU masks (an
/// omitted or empty list leaves the affinity alone).
pub fn exec_cpu_affinity(
    field: &str,
    a: &oci_spec::runtime::ExecCPUAffinity,
) -> Result<(Option<CpuMask>, Option<CpuMask>)> {
    let one = |name: &str, v: &Option<String>| -> Result<Option<CpuMask>> {
        let m = bit_mask(
            &format!("{field}.{name}"),
            v.as_deref().unwrap_or(""),
            "CPU",
            1 << 16,
        )?;
        Ok((!m.is_empty()).then_some(m))
    };
    Ok((
        one("initial", a.initial())?,
        one("final", a.cpu_affinity_final())?,
    ))
}

fn mempolicy(
    m: &oci_spec::runtime::LinuxMemoryPolicy,
) -> Result<(libc::c_int, Vec<libc::c_ulong>, libc::c_ulong)> {
    let f = "linux.memoryPolicy";
    use oci_spec::runtime::{MemoryPolicyFlagType as Fl, MemoryPolicyModeType as M};
    // The kernel's MPOL_* modes and mode flags (include/uapi/linux/mempolicy.h).
    let mut mode = match m.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    for fl in m.flags().clone().unwrap_or_default() {
        mode |= match fl {
            Fl::MpolFNumaBalancing => 1 << 13,
            Fl::MpolFRelativeNodes => 1 << 14,
            Fl::MpolFStaticNodes => 1 << 15,
        };
    }
    let (mask, maxnode) = node_mask(&format!("{f}.nodes"), m.nodes().as_deref().unwrap_or(""))?;
    Ok((mode, mask, maxnode))
}

/// The `RLIMIT_*` resource number of an rlimit type.
fn rlimit_resource(t: oci_spec::runtime::PosixRlimitType) -> libc::c_int {
    use oci_spec::runtime::PosixRlimitType as R;
    (match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every capability the spec can name reaches its number through the enum's own name.
    #[test]
    fn every_capability_name_has_its_number() {
        let mut known = 0;
        for (n, name) in crate::names::CAPS.iter().enumerate() {
            let Ok(cap) = serde_json::from_value::<oci_spec::runtime::Capability>(
                serde_json::Value::String(name.to_string()),
            ) else {
                continue;
            };
            assert_eq!(cap_number(&cap.to_string()), Some(n as u32), "{name}");
            known += 1;
        }
        // oci-spec knows CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40).
        assert!(known >= 41, "{known}");
    }

    /// Every scheduler flag oci-spec parses is a kernel bit. (Matched by serialized name,
    /// `SCHED_RESET_ON_FORK` and `SCHED_FLAG_D_L_OVERRUN`, oci-spec's spellings, were refused
    /// as unknown.)
    #[test]
    fn every_scheduler_flag_is_a_kernel_bit() {
        let s: oci_spec::runtime::Scheduler = serde_json::from_value(serde_json::json!({
            "policy": "SCHED_OTHER",
            "flags": [
                "SCHED_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_D_L_OVERRUN",
                "SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS",
                "SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MAX"
            ]
        }))
        .unwrap();
        assert_eq!(sched_attr(&s).unwrap().flags, 0x7f);
    }

    /// Each rlimit type maps to the resource its spec name says.
    #[test]
    fn rlimit_types_map_to_their_resources() {
        for name in [
            "RLIMIT_CPU",
            "RLIMIT_FSIZE",
            "RLIMIT_DATA",
            "RLIMIT_STACK",
            "RLIMIT_CORE",
            "RLIMIT_RSS",
            "RLIMIT_NPROC",
            "RLIMIT_NOFILE",
            "RLIMIT_MEMLOCK",
            "RLIMIT_AS",
            "RLIMIT_LOCKS",
            "RLIMIT_SIGPENDING",
            "RLIMIT_MSGQUEUE",
            "RLIMIT_NICE",
            "RLIMIT_RTPRIO",
            "RLIMIT_RTTIME",
        ] {
            let t: oci_spec::runtime::PosixRlimitType =
                serde_json::from_value(serde_json::Value::String(name.into())).unwrap();
            assert_eq!(
                Some(rlimit_resource(t)),
                crate::names::rlimit_number(name),
                "{name}"
            );
        }
    }
}
