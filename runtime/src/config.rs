//! Loading and checking a bundle's `config.json`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::{Error, Result};

/// The OCI runtime-spec version this build writes and the newest it reads.
pub const OCI_VERSION: &str = "1.2.0";

/// A bundle: its directory and its parsed config.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    /// `mounts[i].uidMappings` / `gidMappings` (runtime-spec 1.1 idmapped mounts), by mount
    /// index; the typed spec has no place for them.
    pub mount_idmaps: Vec<Option<MountIdmap>>,
}

/// One `(containerID, hostID, size)` line of a mount's id mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

/// The id mappings of an idmapped mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountIdmap {
    pub uid: Vec<IdMapping>,
    pub gid: Vec<IdMapping>,
}

impl Bundle {
    /// Reads `DIR/config.json`. Errors name the bundle, or the file with line and column.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::Bundle {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !dir.is_dir() {
            return Err(Error::Bundle {
                path: dir,
                reason: "not a directory".into(),
            });
        }
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Bundle {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Bundle::from_text(dir, &text)
    }

    /// A bundle in `dir` whose `config.json` holds `text`: parsed and checked
    /// ([`crate::validate::spec`]) as [`Bundle::load`] does, without reading the file (the config fuzz target uses it).
    pub fn from_text(dir: PathBuf, text: &str) -> Result<Bundle> {
        let spec = parse(&dir.join("config.json"), text)?;
        let mount_idmaps = mount_idmaps(text)?;
        Ok(Bundle {
            dir,
            spec,
            mount_idmaps,
        })
    }

    /// A bundle in `dir` whose config is `spec` (made by a
    /// [`crate::describe::Description`]): checked as [`Bundle::load`] checks a
    /// `config.json` ([`crate::validate::spec`]), with no text on the way.
    pub fn from_spec(dir: PathBuf, spec: Spec) -> Result<Bundle> {
        crate::validate::spec(&spec)?;
        let mounts = spec.mounts().as_ref().map_or(0, Vec::len);
        Ok(Bundle {
            dir,
            spec,
            mount_idmaps: vec![None; mounts],
        })
    }

    /// The host path of the root filesystem (`root.path`, relative to the bundle).
    pub fn rootfs(&self) -> Result<PathBuf> {
        let root = self.spec.root().as_ref().ok_or_else(|| Error::Config {
            field: "root".into(),
            reason: "missing".into(),
        })?;
        let p = root.path();
        Ok(if p.is_absolute() {
            p.clone()
        } else {
            self.dir.join(p)
        })
    }
}

/// Parses config.json text and checks its `ociVersion`.
pub fn parse(path: &Path, text: &str) -> Result<Spec> {
    let spec: Spec = serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let reason = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        Error::ConfigParse {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            reason,
        }
    })?;
    crate::validate::spec(&spec)?;
    let input: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let known = serde_json::to_value(&spec).unwrap_or_default();
    // The spec: a runtime MUST NOT error on a property it does not know; it ignores it.
    for field in ignored_fields(&input, &known, "") {
        tracing::debug!("config {field}: not a property corral knows; ignored");
    }
    Ok(spec)
}

/// The idmapped-mount mappings of each mount, from the raw JSON.
fn mount_idmaps(text: &str) -> Result<Vec<Option<MountIdmap>>> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let mut out = Vec::new();
    for (i, m) in v["mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let get = |key: &str| -> Result<Vec<IdMapping>> {
            match m.get(key) {
                None | Some(serde_json::Value::Null) => Ok(Vec::new()),
                Some(x) => serde_json::from_value(x.clone()).map_err(|e| Error::Config {
                    field: format!("mounts[{i}].{key}"),
                    reason: e.to_string(),
                }),
            }
        };
        let (uid, gid) = (get("uidMappings")?, get("gidMappings")?);
        out.push(if uid.is_empty() && gid.is_empty() {
            None
        } else {
            Some(MountIdmap { uid, gid })
        });
    }
    Ok(out)
}

/// Fields of `input` with a value that did not survive parsing into the typed spec: unknown
/// names (a typo, or a newer spec field) that would otherwise be silently ignored.
fn ignored_fields(input: &serde_json::Value, known: &serde_json::Value, at: &str) -> Vec<String> {
    use serde_json::Value;
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    let mut out = Vec::new();
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, v) in i {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                // Read separately (Bundle::mount_idmaps).
                let idmap =
                    at.starts_with("mounts[") && (key == "uidMappings" || key == "gidMappings");
                match k.get(key) {
                    _ if idmap => {}
                    Some(kv) => out.extend(ignored_fields(v, kv, &path)),
                    None if !empty(v) => out.push(path),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(k)) if i.len() == k.len() => {
            for (n, (a, b)) in i.iter().zip(k).enumerate() {
                out.extend(ignored_fields(a, b, &format!("{at}[{n}]")));
            }
        }
        _ => {}
    }
    out
}

/// Accepts runtime-spec versions 1.0.0 up to 1.x (the spec keeps 1.x backward compatible).
pub fn check_version(v: &str) -> Result<()> {
    let bad = |reason: String| Error::Config {
        field: "ociVersion".into(),
        reason,
    };
    if v.is_empty() {
        return Err(bad("missing".into()));
    }
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || p.parse::<u64>().is_err())
    {
        return Err(bad(format!(
            "{v:?} is not a version (want MAJOR.MINOR.PATCH)"
        )));
    }
    if parts[0] != "1" {
        return Err(bad(format!(
            "unsupported version {v:?}: corral supports 1.0.0 to 1.x (writes {OCI_VERSION})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(check_version("1.0.2").is_ok());
        assert!(check_version("1.2.0").is_ok());
        assert!(check_version("1.0.0-rc1").is_ok());
        assert!(check_version("2.0.0")
            .unwrap_err()
            .to_string()
            .contains("unsupported"));
        assert!(check_version("banana")
            .unwrap_err()
            .to_string()
            .contains("not a version"));
        assert!(check_version("").is_err());
    }

    #[test]
    fn unknown_properties_are_ignored() {
        // The spec: a runtime MUST NOT error on a property it does not know.
        let spec = parse(
            Path::new("config.json"),
            r#"{"ociVersion": "1.0.0", "hostnmae": "x", "process": {"args": ["a"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "futureField": {"a": 1}}}"#,
        )
        .unwrap();
        assert_eq!(
            spec.process().as_ref().unwrap().args().as_ref().unwrap()[0],
            "a"
        );
        let text = r#"{"ociVersion": "1.0.0", "hostnmae": "x", "mounts": [{"destination": "/x", "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}], "extra": {}}"#;
        let known = serde_json::to_value(parse(Path::new("config.json"), text).unwrap()).unwrap();
        let input: serde_json::Value = serde_json::from_str(text).unwrap();
        // What is logged: the unknown name, not the idmaps (read apart) nor empty values.
        assert_eq!(
            ignored_fields(&input, &known, ""),
            vec!["hostnmae".to_string()]
        );
    }

    #[test]
    fn parse_error_has_line_and_column() {
        let e = parse(
            Path::new("/b/config.json"),
            "{\n  \"ociVersion\": \"1.0.0\",\n  oops\n}",
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("/b/config.json:3:3: "), "{s}");
    }
}
