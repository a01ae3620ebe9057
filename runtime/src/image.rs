//! What `image_spec` needs of images: the error type and [`find_in_layers`]. The image
//! store itself is the `corral-image` crate; this module goes with `image_spec` when that
//! moves there.

use std::fs;
use std::io;
use std::path::PathBuf;

/// What can go wrong with images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A layer could not be stored or read (the error names the tar entry or path).
    #[error("{context}: {source}")]
    Layer {
        context: String,
        #[source]
        source: unionfs::Error,
    },
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A JSON document is not what it should be.
    #[error("{}: {reason}", path.display())]
    Json { path: PathBuf, reason: String },
    /// No such image.
    #[error("image {0:?} not found in the store")]
    NotFound(String),
    /// Anything else the caller got wrong.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of this module.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

impl ImageError {
    /// The errno that best says what went wrong (positive), as [`crate::Error::errno`].
    pub fn errno(&self) -> i32 {
        match self {
            ImageError::Layer { source, .. } => {
                source.errno().map(|e| e as i32).unwrap_or(libc::EIO)
            }
            ImageError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            ImageError::Json { .. } | ImageError::Invalid(_) => libc::EINVAL,
            ImageError::NotFound(_) => libc::ENOENT,
        }
    }
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
