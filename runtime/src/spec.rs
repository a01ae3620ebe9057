//! The default config.json, as `runc spec` writes it.

use serde_json::{json, Value};

use crate::config::OCI_VERSION;

/// The default spec: mount, pid, network, ipc and uts namespaces; the standard mounts; masked
/// and read-only paths; the default capabilities; `sh` on a terminal in `rootfs`.
pub fn default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "corral",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// The default spec for a container run by the non-root user `uid`/`gid`: a user namespace
/// mapping them to root, no network namespace, and no cgroup limits (as `runc spec --rootless`).
pub fn rootless_spec(uid: u32, gid: u32) -> Value {
    let mut s = default_spec();
    let ns = &mut s["linux"]["namespaces"];
    if let Some(a) = ns.as_array_mut() {
        a.retain(|n| n["type"] != "network" && n["type"] != "cgroup");
        a.push(json!({"type": "user"}));
    }
    s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(o) = s["linux"].as_object_mut() {
        o.remove("resources");
    }
    if let Some(m) = s["mounts"].as_array_mut() {
        for mount in m.iter_mut() {
            // No gid 5 in a single-id map: devpts would refuse gid=5.
            if mount["destination"] == "/dev/pts" {
                if let Some(o) = mount["options"].as_array_mut() {
                    o.retain(|x| x != "gid=5");
                }
            }
            if mount["destination"] == "/sys" {
                *mount = json!({"destination": "/sys", "type": "none", "source": "/sys",
                                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_spec_parses() {
        let text = serde_json::to_string_pretty(&super::default_spec()).unwrap();
        crate::config::parse(std::path::Path::new("config.json"), &text).unwrap();
    }
}
