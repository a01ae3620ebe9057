mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use sha2::{Digest as _, Sha256};
use unionfs::{is_whiteout, Compression, Digest, Error, LayerStore, UnpackOptions};

fn sample_layer() -> Vec<u8> {
    let mut tb = RawTar::new();
    tb.dir("etc/")
        .file("etc/hostname", "corral\n")
        .file(".wh.gone", "");
    tb.finish()
}

#[test]
fn import_twice_keeps_one_copy() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let store = LayerStore::open(&tmp.path().join("store")).unwrap();
    let data = sample_layer();
    let want: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    let d1 = store.import(&data[..]).unwrap();
    assert_eq!(d1.as_str(), format!("sha256:{want}"));
    assert_eq!(d1.hex(), want);
    let d2 = store.import(&data[..]).unwrap();
    assert_eq!(d1, d2);
    assert_eq!(store.list().unwrap(), vec![d1.to_string()]);
    assert!(store.contains(&d1));

    let p = store.path(&d1).unwrap();
    assert_eq!(p, tmp.path().join("store/sha256").join(&want));
    assert_eq!(read(&p.join("etc/hostname")), "corral\n");
    assert!(is_whiteout(&fs::symlink_metadata(p.join("gone")).unwrap()));
    assert!(
        names(&tmp.path().join("store/tmp")).is_empty(),
        "no temp leftovers"
    );

    // A second, different layer.
    let mut tb = RawTar::new();
    tb.file("other", "x");
    let d3 = store.import(&tb.finish()[..]).unwrap();
    let mut want_list = vec![d1.to_string(), d3.to_string()];
    want_list.sort();
    assert_eq!(store.list().unwrap(), want_list);

    store.remove(&d1).unwrap();
    assert!(!store.contains(&d1));
    assert!(!p.exists());
    assert_eq!(store.list().unwrap(), vec![d3.to_string()]);
    assert!(matches!(store.path(&d1), Err(Error::LayerNotFound(_))));
    assert!(matches!(store.remove(&d1), Err(Error::LayerNotFound(_))));
    assert!(names(&tmp.path().join("store/tmp")).is_empty());
}

#[test]
fn concurrent_imports_of_the_same_layer() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(LayerStore::open(tmp.path()).unwrap());
    let data = Arc::new(sample_layer());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (s, d) = (store.clone(), data.clone());
            std::thread::spawn(move || s.import(&d[..]).unwrap())
        })
        .collect();
    let digests: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(names(&tmp.path().join("tmp")).is_empty());
}

#[test]
fn bad_digests_and_failed_imports() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let store = LayerStore::open(tmp.path()).unwrap();
    for bad in [
        "",
        "sha256:",
        "sha256:../../etc",
        "md5:abc",
        &format!("sha256:{}", "A".repeat(64)),
    ] {
        assert!(
            matches!(store.path(bad), Err(Error::InvalidDigest(_))),
            "{bad}"
        );
        assert!(!store.contains(bad));
    }
    let mut tb = RawTar::new();
    tb.file("ok", "fine").file("../evil", "pwned");
    let err = store.import(&tb.finish()[..]).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(names(&tmp.path().join("tmp")).is_empty());
    assert!(!tmp.path().join("evil").exists());
}

#[test]
fn compressed_layers_keep_both_digests() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let store = LayerStore::open(tmp.path()).unwrap();
    let plain = sample_layer();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let gz = gz.finish().unwrap();
    let li = store
        .import_layer(&gz[..], UnpackOptions::default())
        .unwrap();
    assert_eq!(li.diff_id, Digest::of(&plain));
    assert_eq!(li.digest, Digest::of(&gz));
    assert_eq!(li.size, gz.len() as u64);
    assert_eq!(li.compression, Compression::Gzip);
    // The same content in zstd is the same layer.
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let lz = store
        .import_layer(&zst[..], UnpackOptions::default())
        .unwrap();
    assert_eq!(lz.diff_id, li.diff_id);
    assert_eq!(lz.compression, Compression::Zstd);
    assert_eq!(store.list().unwrap().len(), 1);
    // A half-written layer is removed: a tar broken after its first entries.
    let mut tb = RawTar::new();
    tb.file("a", "1").file("b", &"y".repeat(4000));
    let bad = tb.finish();
    let err = store
        .import_layer(&bad[..1536 + 100], UnpackOptions::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("after entry a") || err.to_string().contains("b"),
        "{err}"
    );
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(names(&tmp.path().join("tmp")).is_empty());
    // A stale temp dir (an import killed halfway) is removed by clean_tmp.
    fs::create_dir(tmp.path().join("tmp/import-stale")).unwrap();
    assert_eq!(store.clean_tmp().unwrap(), 1);
    assert!(names(&tmp.path().join("tmp")).is_empty());
}
