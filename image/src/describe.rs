//! A container of an image, described: the image's config (Entrypoint, Cmd, Env,
//! WorkingDir, User) merged into the caller's [`Description`], under what the caller set
//! (`corral run --image`, a build's RUN step, Python's `Container(image=...)`, C's
//! `corral_spec_from_image`).
//!
//! An image is code its user did not write, so its container starts from
//! [`Baseline::Docker`]: docker's default seccomp profile, capabilities, deny-all device
//! rules plus the standard devices, masked and read-only paths, `noNewPrivileges` false (as
//! docker: setuid programs of the image work; the seccomp profile still refuses new user
//! namespaces and mounts). Opting out is explicit and named as in docker, in
//! [`runtime::describe::Security`].

use std::fs;
use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;
use runtime::describe::{Description, Root, UserSpec};

use crate::error::{invalid, ImageError, Result};

/// The default `PATH` of a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn described(e: runtime::Error) -> ImageError {
    ImageError::Invalid(e.to_string())
}

/// Resolve `user[:group]` against the image's /etc/passwd and /etc/group.
pub fn resolve_user(layers: &[PathBuf], spec: &str) -> Result<(u32, u32)> {
    let find = |rel: &str| find_in_layers(layers, rel);
    runtime::describe::user::resolve(&find, "the image's", spec).map_err(described)
}

/// The image's Env with `over` set by name (in place when the image has it, else after);
/// the default `PATH` first when neither has one.
pub fn merge_env(image: &[String], over: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = image
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in over {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    env
}

/// The description of container `id` of an image whose config is `config` and whose layers
/// are `layers` (bottom first): `d` (its root the image) with the image's Entrypoint, Cmd,
/// Env, WorkingDir and User where `d` leaves them unset, the hostname the id's first 12
/// characters unless `d` names one, and the root the bundle's `rootfs` (where the store
/// mounts the layers).
pub fn describe_image(
    id: &str,
    config: &ImageConfiguration,
    layers: &[PathBuf],
    d: &Description,
) -> Result<Description> {
    let ic = config.config().clone().unwrap_or_default();
    let mut args: Vec<String> = match &d.entrypoint {
        Some(e) => e.clone(),
        None => ic.entrypoint().clone().unwrap_or_default(),
    };
    if !d.args.is_empty() {
        args.extend(d.args.iter().cloned());
    } else if d.entrypoint.is_none() {
        args.extend(ic.cmd().clone().unwrap_or_default());
    }
    if args.is_empty() {
        return Err(invalid(
            "no command: the image has no Entrypoint or Cmd; give one after --",
        ));
    }
    let cwd = d
        .cwd
        .clone()
        .or_else(|| ic.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(invalid(format!(
            "working directory {cwd:?} is not absolute"
        )));
    }
    let user = match &d.user {
        Some(UserSpec::Ids { uid, gid }) => (*uid, *gid),
        Some(UserSpec::Name(u)) => resolve_user(layers, u)?,
        None => match ic.user().as_deref().filter(|u| !u.is_empty()) {
            Some(u) => resolve_user(layers, u)?,
            None => (0, 0),
        },
    };
    let mut out = d.clone();
    out.root = Root::Dir(PathBuf::from("rootfs"));
    out.args = args;
    out.entrypoint = None;
    out.env = merge_env(&ic.env().clone().unwrap_or_default(), &d.env);
    out.cwd = Some(cwd);
    out.user = Some(UserSpec::Ids {
        uid: user.0,
        gid: user.1,
    });
    if out.hostname.is_none() {
        out.hostname = Some(id.chars().take(12).collect());
    }
    Ok(out)
}

/// A path inside an image's layers (bottom first), found as overlay would: the topmost
/// layer that has it wins, a whiteout hides it; no component may be a symlink (so nothing
/// outside the layers is ever read). Only regular files are returned.
pub fn find_in_layers(layers: &[PathBuf], rel: &str) -> Option<PathBuf> {
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    for l in layers.iter().rev() {
        let mut p = l.clone();
        let mut hidden = false;
        for (i, c) in comps.iter().enumerate() {
            p.push(c);
            match fs::symlink_metadata(&p) {
                Ok(md) => {
                    if unionfs::is_whiteout(&md) {
                        hidden = true;
                        break;
                    }
                    let last = i + 1 == comps.len();
                    if last && md.is_file() {
                        return Some(p);
                    }
                    if !last && !md.is_dir() {
                        hidden = true;
                        break;
                    }
                    if !last && unionfs::is_opaque(&p).unwrap_or(false) {
                        // Below this layer the dir's content is hidden: look only here.
                        let rest: PathBuf = comps[i + 1..].iter().collect();
                        let full = p.join(&rest);
                        return fs::symlink_metadata(&full)
                            .ok()
                            .filter(|m| m.is_file())
                            .map(|_| full);
                    }
                }
                Err(_) => break,
            }
        }
        if hidden {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::describe::{Limits, IMAGE_CAPS};
    use std::path::Path;

    fn image_desc(args: &[&str]) -> Description {
        let mut d = Description::new(Root::Image("img".into()));
        d.args = args.iter().map(|s| s.to_string()).collect();
        d
    }

    #[test]
    fn the_image_path_keeps_swap_and_cpu_shares() {
        let mut d = image_desc(&["/bin/true"]);
        d.limits = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            cpu_shares: Some(512),
            ..Limits::default()
        };
        let s = describe_image("c1", &ImageConfiguration::default(), &[], &d)
            .unwrap()
            .to_spec()
            .unwrap();
        let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
        // And the docker baseline's device rules are still there.
        assert!(!r.devices().as_ref().unwrap()[0].allow());
    }

    #[test]
    fn the_image_spec_is_dockers() {
        let d = image_desc(&["/bin/true"]);
        let s = describe_image("0123456789abcdef", &ImageConfiguration::default(), &[], &d)
            .unwrap()
            .to_spec()
            .unwrap();
        assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
        let p = s.process().as_ref().unwrap();
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), IMAGE_CAPS.len());
        assert!(caps.ambient().is_none() && caps.inheritable().is_none());
        assert_eq!(p.no_new_privileges(), Some(false));
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(false));
        let l = s.linux().as_ref().unwrap();
        assert!(l.seccomp().is_some());
        assert!(l
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/interrupts".to_string()));
        let bundle = runtime::Bundle::from_spec(PathBuf::from("/b"), s).unwrap();
        assert_eq!(bundle.dir, Path::new("/b"));
    }

    #[test]
    fn env_is_set_by_name_over_the_images() {
        let img = vec!["A=1".to_string(), "PATH=/img".into(), "B=2".into()];
        let over = vec![("B".to_string(), "3".to_string()), ("C".into(), "4".into())];
        let env = merge_env(&img, &over);
        let flat: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(flat, ["A=1", "PATH=/img", "B=3", "C=4"]);
        let env = merge_env(&[], &[]);
        assert_eq!(env, [("PATH".to_string(), DEFAULT_PATH.to_string())]);
    }

    #[test]
    fn a_command_is_needed() {
        let d = image_desc(&[]);
        let e = describe_image("c", &ImageConfiguration::default(), &[], &d).unwrap_err();
        assert!(e.to_string().contains("no command"), "{e}");
    }

    #[test]
    fn files_are_found_in_layers_as_overlay_shows_them() {
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, l3) = (t.path().join("1"), t.path().join("2"), t.path().join("3"));
        for l in [&l1, &l2, &l3] {
            fs::create_dir_all(l.join("etc")).unwrap();
        }
        fs::write(l1.join("etc/passwd"), "bottom").unwrap();
        fs::write(l1.join("etc/group"), "bottom").unwrap();
        fs::write(l2.join("etc/passwd"), "middle").unwrap();
        // A symlinked dir in the top layer is never followed.
        std::os::unix::fs::symlink("/etc", l3.join("host")).unwrap();
        let layers = vec![l1.clone(), l2.clone(), l3.clone()];
        assert_eq!(
            find_in_layers(&layers, "etc/passwd"),
            Some(l2.join("etc/passwd"))
        );
        assert_eq!(
            find_in_layers(&layers, "/etc/group"),
            Some(l1.join("etc/group"))
        );
        assert_eq!(find_in_layers(&layers, "host/passwd"), None);
        assert_eq!(find_in_layers(&layers, "etc/nothing"), None);
    }
}
