//! `commit`: a container's writable layer on top of the image it was made from, as a new
//! image (docker's `commit [-m] [-a] [-c] CONTAINER [REPO[:TAG]]`).

use crate::error::invalid;
use crate::reference::Reference;
use crate::store::{Image, ImageStore};

/// What `commit` adds besides the layer: docker's `-m`, `-a` and `-c`.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// A comment kept in the image's history (`-m`).
    pub message: Option<String>,
    /// The image's author (`-a`).
    pub author: Option<String>,
    /// Dockerfile instructions that change the config (`-c 'CMD ...'`), in order: see
    /// [`crate::build::apply_change`].
    pub changes: Vec<String>,
}

impl ImageStore {
    /// `commit`: container `id`'s writable layer on top of the image it was made from, as a
    /// new image named `target` (its history says `corral commit ID`, with `message`). A
    /// running container is frozen while its layer is read (as docker pauses it), so the
    /// layer is one moment of it.
    pub fn commit(
        &self,
        id: &str,
        target: &Reference,
        message: Option<&str>,
    ) -> std::result::Result<Image, crate::Error> {
        let opts = CommitOptions {
            message: message.map(str::to_string),
            ..CommitOptions::default()
        };
        self.commit_with(id, Some(target), &opts)
    }

    /// [`ImageStore::commit`] with docker's options; without `target` the image is kept
    /// untagged (docker's `<none>:<none>`). Every change is checked before anything is
    /// written.
    pub fn commit_with(
        &self,
        id: &str,
        target: Option<&Reference>,
        opts: &CommitOptions,
    ) -> std::result::Result<Image, crate::Error> {
        let _l = self.lock_shared()?;
        let rec = self.container(id)?.ok_or_else(|| {
            invalid(format!(
                "container {id:?} was not made from an image of {} (corral run --image)",
                self.root.display()
            ))
        })?;
        let upper = rec.upper_dir();
        if !upper.is_dir() {
            return Err(invalid(format!(
                "container {id:?} has no writable layer at {} (was it deleted?)",
                upper.display()
            ))
            .into());
        }
        let mid = unionfs::Digest::parse(&rec.manifest).map_err(|e| invalid(e.to_string()))?;
        let parent = self.image_by_manifest(&mid)?;
        let mut config = parent.config.clone();
        let mut cfg = config.config().clone().unwrap_or_default();
        for c in &opts.changes {
            crate::build::apply_change(c, &mut cfg)?;
        }
        config.set_config(Some(cfg));
        if let Some(a) = &opts.author {
            config.set_author(Some(a.clone()));
        }
        let mut frozen = match runtime::Container::load(&rec.state_root, id) {
            Ok(mut c) if c.status() == runtime::Status::Running => {
                c.pause()?;
                Some(c)
            }
            _ => None,
        };
        let layer = self.add_layer_from_upper(&upper);
        if let Some(c) = frozen.as_mut() {
            c.resume()?;
        }
        let layer = layer?;
        let now = crate::store::now_rfc3339();
        config.set_created(Some(now.clone()));
        let mut hist = config.history().clone().unwrap_or_default();
        let mut h = oci_spec::image::History::default();
        h.set_created(Some(now));
        h.set_created_by(Some(format!("corral commit {id}")));
        h.set_comment(opts.message.clone());
        h.set_author(opts.author.clone());
        hist.push(h);
        config.set_history(Some(hist));
        let mut layers = parent.layers()?;
        layers.push(layer);
        let img = self.write_image(config, &layers)?;
        match target {
            Some(t) => self.tag(&img, t)?,
            None => self.keep_untagged(&img)?,
        }
        Ok(img)
    }
}
