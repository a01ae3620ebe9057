//! Linux security modules: the AppArmor profile and SELinux labels of a container.
//!
//! corral applies them the way the kernel expects from a runtime: the container's process
//! writes the label its program gets at exec to its own `/proc/thread-self/attr/...` file
//! (`exec <profile>` to `attr/apparmor/exec` for AppArmor, the label to `attr/exec` for
//! SELinux), and the SELinux label of its session keyring to `attr/keycreate` before it makes
//! that keyring. `linux.mountLabel` becomes a `context="..."` option of the container's own
//! filesystems (tmpfs, devpts and the like; not proc, sysfs, mqueue, cgroup or binds).
//!
//! A spec that asks for a module the host does not run is refused, naming the field.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use ns::LsmAttr;

use crate::error::{Error, Result};

/// The security modules of a host, and where a process finds its own attribute files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// AppArmor is enabled (`/sys/module/apparmor/parameters/enabled` says `Y`).
    pub apparmor: bool,
    /// SELinux is enabled (selinuxfs is mounted: `/sys/fs/selinux/enforce` exists).
    pub selinux: bool,
    /// The host's procfs, where the container's process finds its own attribute files
    /// (`thread-self/attr/...`): `/proc`. It opens it before it joins any namespace.
    pub proc_dir: PathBuf,
}

impl Default for Security {
    fn default() -> Self {
        Security::detect()
    }
}

impl Security {
    /// This host's modules (read once per process).
    pub fn detect() -> Security {
        static HOST: std::sync::OnceLock<Security> = std::sync::OnceLock::new();
        HOST.get_or_init(|| Security::detect_in(Path::new("/sys"), Path::new("/proc")))
            .clone()
    }

    /// The modules as seen through a sysfs mounted at `sys` and a procfs at `proc`.
    pub fn detect_in(sys: &Path, proc: &Path) -> Security {
        let apparmor = std::fs::read_to_string(sys.join("module/apparmor/parameters/enabled"))
            .map(|s| s.trim_start().starts_with('Y'))
            .unwrap_or(false);
        let selinux = sys.join("fs/selinux/enforce").exists();
        Security {
            apparmor,
            selinux,
            proc_dir: proc.to_path_buf(),
        }
    }

    /// No module at all (what a host without AppArmor and SELinux looks like).
    pub fn none() -> Security {
        Security {
            apparmor: false,
            selinux: false,
            proc_dir: PathBuf::from("/proc"),
        }
    }

    fn attr(&self, field: &str, file: &str, value: String) -> Result<LsmAttr> {
        let bad = || Error::Config {
            field: field.into(),
            reason: "contains a NUL byte".into(),
        };
        Ok(LsmAttr {
            file: CString::new(format!("thread-self/attr/{file}")).map_err(|_| bad())?,
            value: CString::new(value).map_err(|_| bad())?,
        })
    }

    fn missing(field: &str, module: &str, how: &str) -> Error {
        Error::Config {
            field: field.into(),
            reason: format!("this host has no {module} ({how})"),
        }
    }

    /// The labels a process gets at exec: its AppArmor profile (`field_prefix.apparmorProfile`)
    /// and SELinux label (`field_prefix.selinuxLabel`). Empty strings mean none.
    pub fn exec_labels(
        &self,
        field_prefix: &str,
        apparmor: Option<&str>,
        selinux: Option<&str>,
    ) -> Result<Vec<LsmAttr>> {
        let mut out = Vec::new();
        if let Some(p) = apparmor.filter(|s| !s.is_empty()) {
            let field = format!("{field_prefix}.apparmorProfile");
            if !self.apparmor {
                return Err(Self::missing(
                    &field,
                    "AppArmor",
                    "/sys/module/apparmor/parameters/enabled is not Y",
                ));
            }
            // Kernels since 5.8 give each module its own directory; older ones share attr/exec.
            let file = if self.proc_dir.join("thread-self/attr/apparmor").is_dir() {
                "apparmor/exec"
            } else {
                "exec"
            };
            out.push(self.attr(&field, file, format!("exec {p}"))?);
        }
        if let Some(l) = selinux.filter(|s| !s.is_empty()) {
            let field = format!("{field_prefix}.selinuxLabel");
            if self.selinux {
                out.push(self.attr(&field, "exec", l.to_string())?);
            } else {
                // runc's choice: SELinux labels mean nothing where SELinux is off.
                tracing::warn!(
                    "{field}: SELinux is not enabled on this host; the label is ignored"
                );
            }
        }
        Ok(out)
    }

    /// The SELinux label of the session keyring: the process label, on an SELinux host.
    pub fn key_label(&self, field: &str, selinux: Option<&str>) -> Result<Option<LsmAttr>> {
        match selinux.filter(|s| !s.is_empty()) {
            Some(l) if self.selinux => Ok(Some(self.attr(field, "keycreate", l.to_string())?)),
            _ => Ok(None),
        }
    }

    /// Where the container's process finds the attribute files of `plan`'s labels, if it has any.
    pub fn attr_root(&self, plan: &ns::Plan) -> Result<Option<CString>> {
        let labelled = !plan.process.exec_labels.is_empty()
            || plan.keyring.as_ref().is_some_and(|k| k.label.is_some());
        if !labelled {
            return Ok(None);
        }
        CString::new(self.proc_dir.as_os_str().as_encoded_bytes())
            .map(Some)
            .map_err(|_| Error::Config {
                field: "procfs".into(),
                reason: "path contains a NUL byte".into(),
            })
    }

    /// The `context=` mount option for `linux.mountLabel` (none on a host without SELinux, where
    /// the label is ignored with a warning, as runc does).
    pub fn mount_context(&self, label: Option<&str>) -> Result<Option<String>> {
        match label.filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(_) if !self.selinux => {
                // runc's choice: SELinux labels mean nothing where SELinux is off.
                tracing::warn!(
                    "linux.mountLabel: SELinux is not enabled on this host; the label is ignored"
                );
                Ok(None)
            }
            Some(l) if l.contains('"') => Err(Error::Config {
                field: "linux.mountLabel".into(),
                reason: format!("{l:?} contains a double quote"),
            }),
            Some(l) => Ok(Some(format!("context=\"{l}\""))),
        }
    }
}

/// Whether a filesystem of type `fstype` takes the mount label (runc's rule: the container's
/// own filesystems do, the kernel's views and binds do not).
pub fn takes_mount_label(fstype: &str) -> bool {
    !matches!(
        fstype,
        "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2" | "bind"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(apparmor: Option<&str>, selinux: bool, per_module_dir: bool) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let sys = d.path().join("sys");
        if let Some(v) = apparmor {
            std::fs::create_dir_all(sys.join("module/apparmor/parameters")).unwrap();
            std::fs::write(sys.join("module/apparmor/parameters/enabled"), v).unwrap();
        }
        if selinux {
            std::fs::create_dir_all(sys.join("fs/selinux")).unwrap();
            std::fs::write(sys.join("fs/selinux/enforce"), "1").unwrap();
        }
        let attr = d.path().join("proc/thread-self/attr");
        std::fs::create_dir_all(&attr).unwrap();
        if per_module_dir {
            std::fs::create_dir_all(attr.join("apparmor")).unwrap();
        }
        d
    }

    fn detect(d: &tempfile::TempDir) -> Security {
        Security::detect_in(&d.path().join("sys"), &d.path().join("proc"))
    }

    #[test]
    fn detects_modules_from_sysfs() {
        let d = fixture(Some("Y\n"), false, true);
        let s = detect(&d);
        assert!(s.apparmor && !s.selinux);
        let d = fixture(Some("N\n"), true, false);
        let s = detect(&d);
        assert!(!s.apparmor && s.selinux);
        let d = fixture(None, false, false);
        assert!(!detect(&d).apparmor);
    }

    #[test]
    fn apparmor_profile_goes_to_the_module_exec_file() {
        let d = fixture(Some("Y"), false, true);
        let s = detect(&d);
        let v = s.exec_labels("process", Some("corral-test"), None).unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0]
            .file
            .to_str()
            .unwrap()
            .ends_with("thread-self/attr/apparmor/exec"));
        assert_eq!(v[0].value.to_str().unwrap(), "exec corral-test");
        // Before per-module directories, the shared exec file.
        let d = fixture(Some("Y"), false, false);
        let v = detect(&d).exec_labels("process", Some("p"), None).unwrap();
        assert!(v[0].file.to_str().unwrap().ends_with("attr/exec"));
        // An empty profile is none.
        assert!(s.exec_labels("process", Some(""), None).unwrap().is_empty());
    }

    #[test]
    fn selinux_labels_exec_keyring_and_mounts() {
        let d = fixture(None, true, false);
        let s = detect(&d);
        let l = "system_u:system_r:container_t:s0:c1,c2";
        let v = s.exec_labels("process", None, Some(l)).unwrap();
        assert!(v[0].file.to_str().unwrap().ends_with("attr/exec"));
        assert_eq!(v[0].value.to_str().unwrap(), l);
        let k = s
            .key_label("process.selinuxLabel", Some(l))
            .unwrap()
            .unwrap();
        assert!(k.file.to_str().unwrap().ends_with("attr/keycreate"));
        let m = "system_u:object_r:container_file_t:s0:c1,c2";
        assert_eq!(
            s.mount_context(Some(m)).unwrap().unwrap(),
            format!("context=\"{m}\"")
        );
        assert!(s.mount_context(Some("a\"b")).is_err());
        assert!(takes_mount_label("tmpfs") && takes_mount_label("devpts"));
        assert!(!takes_mount_label("proc") && !takes_mount_label("mqueue"));
    }

    #[test]
    fn a_module_the_host_lacks_is_refused_by_field() {
        let s = Security::none();
        let e = s.exec_labels("process", Some("p"), None).unwrap_err();
        assert!(
            e.to_string().contains("process.apparmorProfile")
                && e.to_string().contains("no AppArmor"),
            "{e}"
        );
        // SELinux labels are ignored where SELinux is off, as runc does.
        assert!(s.exec_labels("exec", None, Some("l")).unwrap().is_empty());
        assert!(s.mount_context(Some("l")).unwrap().is_none());
        // Without SELinux there is no keyring label either.
        assert!(s.key_label("f", Some("l")).unwrap().is_none());
    }
}
