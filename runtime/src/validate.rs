//! One validator for every container, whatever made its spec (a bundle's `config.json`, a
//! [`crate::describe::Description`], a face's update): values the runtime-spec rules out
//! that the typed spec still accepts ("Runtimes MUST generate an error when invalid or
//! unsupported values are encountered"), and limits the kernel would take wrongly. Each
//! error names the field. runc's `libcontainer/configs/validate` is the model: one pass over
//! the whole config at create, the resources part again at update.
//!
//! What needs the host (a namespace path that exists, a module that is loaded, a device
//! that is there) is checked where it is used, when the container is made.

use oci_spec::runtime::{LinuxResources, Spec};

use crate::{Error, Result};

fn bad(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks a whole spec: `ociVersion`, annotations, the seccomp section and the resources
/// ([`resources`]). Called for every bundle ([`crate::Bundle::load`],
/// [`crate::Bundle::from_spec`]).
pub fn spec(spec: &Spec) -> Result<()> {
    crate::config::check_version(spec.version())?;
    if let Some(a) = spec.annotations() {
        if a.contains_key("") {
            return Err(bad("annotations", "a key is empty"));
        }
    }
    let Some(l) = spec.linux() else {
        return Ok(());
    };
    if let Some(s) = l.seccomp() {
        if s.listener_metadata().is_some() && s.listener_path().is_none() {
            return Err(bad(
                "linux.seccomp.listenerMetadata",
                "set without linux.seccomp.listenerPath",
            ));
        }
    }
    if let Some(r) = l.resources() {
        resources(r)?;
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
                if v < -1 || v == 0 && name == "limit" {
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
    if res.network().is_some() {
        return Err(bad(
            format!("{R}.network"),
            "net_cls/net_prio limits are not supported",
        ));
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
        for (v, ok) in [(0, false), (-2, false), (-1, true), (1 << 20, true)] {
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
}
