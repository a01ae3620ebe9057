//! A content-addressed store of unpacked layers.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::ops::Deref;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::layer::{decompress, unpack_plain, Compression, UnpackOptions};

/// A layer digest, always `sha256:<64 lower-case hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parse and validate a `sha256:<hex>` string.
    pub fn parse(s: &str) -> Result<Self> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| Error::InvalidDigest(s.into()))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::InvalidDigest(s.into()));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(data);
        Digest::of_hasher(h)
    }

    fn of_hasher(h: Sha256) -> Self {
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Digest(format!("sha256:{hex}"))
    }

    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Only the hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Deref for Digest {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Layers unpacked in overlay format under `<root>/sha256/<hex>/`, keyed by
/// the sha256 of the uncompressed tar stream (the OCI "diff ID").
///
/// Imports unpack into `<root>/tmp/` and are renamed into place atomically,
/// so a layer directory is either absent or complete. Layer directories are
/// meant to be used read-only (as overlay lowers). Stale `tmp/` entries left by
/// a crash are removed by [`LayerStore::clean_tmp`] (`corral image prune`).
#[derive(Debug, Clone)]
pub struct LayerStore {
    root: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl LayerStore {
    /// Open (creating if needed) a store rooted at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        for d in [root.to_path_buf(), root.join("sha256"), root.join("tmp")] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .map_err(|e| Error::io("mkdir", &d, e))?;
        }
        Ok(LayerStore {
            root: root.to_path_buf(),
        })
    }

    /// A store rooted at `root` as it is, for reading: nothing is created (a missing
    /// directory lists no layers only where the caller treats that as empty).
    pub fn at(root: &Path) -> Self {
        LayerStore {
            root: root.to_path_buf(),
        }
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn temp_dir(&self, what: &str) -> Result<PathBuf> {
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let p = self
                .root
                .join("tmp")
                .join(format!("{what}-{}-{n}-{nanos}", std::process::id()));
            match fs::DirBuilder::new().mode(0o755).create(&p) {
                Ok(()) => return Ok(p),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("mkdir", &p, e)),
            }
        }
    }

    /// Unpack a layer tar (plain, gzip or zstd) into the store and return its diff ID
    /// (the sha256 of the uncompressed tar). Importing content that is already present
    /// keeps the existing copy.
    pub fn import<R: Read>(&self, tar: R) -> Result<Digest> {
        Ok(self.import_layer(tar, UnpackOptions::default())?.diff_id)
    }

    /// Unpack a layer tar (plain, gzip or zstd) into the store: into a directory under
    /// `tmp/`, renamed to `sha256/<diff id>` only once complete, so that a layer is
    /// either absent or whole, whoever is killed when. On any error (an unsafe or broken
    /// entry, named in the error) the half-written directory is removed.
    pub fn import_layer<R: Read>(&self, tar: R, opts: UnpackOptions) -> Result<LayerImport> {
        let tmp = self.temp_dir("import")?;
        let mut raw = HashingReader::new(tar);
        let res = (|| -> Result<(Compression, Digest)> {
            let (compression, plain) = decompress(io::BufReader::new(&mut raw))?;
            let mut hr = HashingReader::new(plain);
            unpack_plain(&mut hr, &tmp, opts)?;
            // Hash the trailer and any padding after the end-of-archive marker too.
            io::copy(&mut hr, &mut io::sink()).map_err(|source| Error::Tar {
                op: "reading",
                source,
            })?;
            Ok((compression, hr.digest()))
        })();
        let (compression, diff_id) = match res {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        // The rest of the compressed stream (a decoder may stop at its end marker).
        if let Err(e) = io::copy(&mut raw, &mut io::sink()) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::Tar {
                op: "reading",
                source: e,
            });
        }
        let size = raw.count;
        let digest = raw.digest();
        let new = self.publish(&tmp, &diff_id)?;
        Ok(LayerImport {
            diff_id,
            digest,
            size,
            compression,
            new,
        })
    }

    /// Rename a complete temporary layer dir to `sha256/<diff id>` (or drop it when that
    /// layer is already there).
    /// Whether it is new.
    fn publish(&self, tmp: &Path, diff_id: &Digest) -> Result<bool> {
        let dst = self.root.join("sha256").join(diff_id.hex());
        match fs::rename(tmp, &dst) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
                fs::remove_dir_all(tmp)
                    .map(|()| false)
                    .map_err(|e| Error::io("remove", tmp, e))
            }
            Err(e) => {
                let _ = fs::remove_dir_all(tmp);
                Err(Error::io("rename", &dst, e))
            }
        }
    }

    /// Remove every leftover of an import or removal that was killed halfway (`tmp/*`).
    /// Only safe while no other command uses the store (the caller holds its exclusive
    /// lock). Returns how many were removed.
    pub fn clean_tmp(&self) -> Result<usize> {
        let dir = self.root.join("tmp");
        let mut n = 0;
        for e in fs::read_dir(&dir).map_err(|e| Error::io("readdir", &dir, e))? {
            let e = e.map_err(|e| Error::io("readdir", &dir, e))?;
            let p = e.path();
            fs::remove_dir_all(&p).map_err(|e| Error::io("remove", &p, e))?;
            n += 1;
        }
        Ok(n)
    }

    fn dir_of(&self, digest: &str) -> Result<PathBuf> {
        let d = Digest::parse(digest)?;
        Ok(self.root.join("sha256").join(d.hex()))
    }

    /// The unpacked directory of a stored layer.
    pub fn path(&self, digest: &str) -> Result<PathBuf> {
        let p = self.dir_of(digest)?;
        if p.is_dir() {
            Ok(p)
        } else {
            Err(Error::LayerNotFound(digest.into()))
        }
    }

    /// Is the layer in the store? (False for malformed digests.)
    pub fn contains(&self, digest: &str) -> bool {
        self.dir_of(digest).map(|p| p.is_dir()).unwrap_or(false)
    }

    /// All stored layer digests, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let dir = self.root.join("sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(|e| Error::io("readdir", &dir, e))? {
            let e = e.map_err(|e| Error::io("readdir", &dir, e))?;
            if let Some(name) = e.file_name().to_str() {
                let d = format!("sha256:{name}");
                if Digest::parse(&d).is_ok() {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Remove a layer. It first moves out of `sha256/` atomically, then is deleted.
    pub fn remove(&self, digest: &str) -> Result<()> {
        let p = self.path(digest)?;
        let trash = self.temp_dir("remove")?;
        let dst = trash.join("layer");
        fs::rename(&p, &dst).map_err(|e| Error::io("rename", &p, e))?;
        fs::remove_dir_all(&trash).map_err(|e| Error::io("remove", &trash, e))
    }
}

/// What [`LayerStore::import_layer`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerImport {
    /// sha256 of the uncompressed tar: the layer's name in the store and in image configs.
    pub diff_id: Digest,
    /// sha256 of the bytes as given (compressed or not): the manifest's layer digest.
    pub digest: Digest,
    /// Size of the bytes as given.
    pub size: u64,
    /// How they were compressed.
    pub compression: Compression,
    /// Whether this import put the layer there (false: it was already in the store).
    pub new: bool,
}

/// A reader that hashes (sha256) and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R> HashingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest of what was read.
    pub fn digest(self) -> Digest {
        Digest::of_hasher(self.hasher)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
