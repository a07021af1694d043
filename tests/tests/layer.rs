//! Layers: applying OCI layer tarballs (plain, gzip, zstd) with every entry
//! type and both whiteout forms, refusing traversal, and diffing back.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use berth_fs::digest::Digest;
use berth_fs::layer::apply::apply_layer;
use berth_fs::layer::diff::diff_layer;
use berth_fs::layer::whiteout::{is_opaque, WhiteoutFormat};
use berth_fs::layer::LayerError;
use berth_tests::require_root;

fn header(kind: tar::EntryType, mode: u32, uid: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

/// A layer with one entry of every kind, xattrs, a whiteout and an opaque dir.
fn sample_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Directory, 0o755, 0, 1000);
    b.append_data(&mut h, "etc/", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o4755, 1000, 2000);
    h.set_size(5);
    b.append_pax_extensions([("SCHILY.xattr.user.color", &b"blue"[..])]).unwrap();
    b.append_data(&mut h, "etc/file", &b"hello"[..]).unwrap();
    let mut h = header(tar::EntryType::Link, 0o644, 0, 2000);
    b.append_link(&mut h, "etc/hardlink", "etc/file").unwrap();
    let mut h = header(tar::EntryType::Symlink, 0o777, 0, 3000);
    b.append_link(&mut h, "etc/link", "/etc/file").unwrap();
    let mut h = header(tar::EntryType::Fifo, 0o600, 0, 3000);
    b.append_data(&mut h, "run/fifo", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Char, 0o666, 0, 3000);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "dev/null", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o644, 0, 3000);
    b.append_data(&mut h, "var/.wh.gone", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Directory, 0o700, 0, 4000);
    b.append_data(&mut h, "opaque/", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o644, 0, 4000);
    b.append_data(&mut h, "opaque/.wh..wh..opq", std::io::empty()).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn apply_every_entry_kind_in_overlay_format() {
    if !require_root("apply_every_entry_kind_in_overlay_format") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    let tarball = sample_layer();
    let applied = apply_layer(&tarball[..], &dest, WhiteoutFormat::Overlay).unwrap();
    assert_eq!(applied.diff_id, Digest::of(&tarball));
    assert_eq!(applied.size, tarball.len() as u64);

    let file = std::fs::metadata(dest.join("etc/file")).unwrap();
    assert_eq!(std::fs::read_to_string(dest.join("etc/file")).unwrap(), "hello");
    assert_eq!(file.permissions().mode() & 0o7777, 0o4755, "set-uid survives the chown");
    assert_eq!((file.uid(), file.gid()), (1000, 1000));
    assert_eq!(file.mtime(), 2000);
    assert_eq!(file.nlink(), 2, "hard link shares the inode");
    assert_eq!(
        xattr::get(dest.join("etc/file"), "user.color").unwrap().as_deref(),
        Some(&b"blue"[..])
    );
    assert_eq!(std::fs::read_link(dest.join("etc/link")).unwrap(), Path::new("/etc/file"));
    assert!(std::fs::symlink_metadata(dest.join("run/fifo")).unwrap().file_type().is_fifo());
    let null = std::fs::metadata(dest.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device() && null.rdev() == libc::makedev(1, 3));
    let gone = std::fs::symlink_metadata(dest.join("var/gone")).unwrap();
    assert!(
        gone.file_type().is_char_device() && gone.rdev() == 0,
        "whiteout is a 0:0 char device"
    );
    assert!(!dest.join("var/.wh.gone").exists());
    assert!(is_opaque(&dest.join("opaque")));
    assert_eq!(
        std::fs::metadata(dest.join("etc")).unwrap().mtime(),
        1000,
        "directory times set last"
    );
    assert!(!dir.path().join("layer.partial").exists());
}

#[test]
fn compressed_layers_have_the_same_diff_id() {
    if !require_root("compressed_layers_have_the_same_diff_id") {
        return;
    }
    let tarball = sample_layer();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tarball).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tarball[..], 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in [("plain", &tarball), ("gzip", &gz), ("zstd", &zst)] {
        let applied = apply_layer(&data[..], &dir.path().join(name), WhiteoutFormat::Files).unwrap();
        assert_eq!(applied.diff_id, Digest::of(&tarball), "{name}");
        assert!(
            dir.path().join(name).join("var/.wh.gone").is_file(),
            "{name}: files format keeps .wh. entries"
        );
        assert!(dir.path().join(name).join("opaque/.wh..wh..opq").is_file());
    }
}

fn traversal(entries: &[(&str, tar::EntryType, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let mut h = header(*kind, 0o644, 0, 0);
        // Set the raw name so the builder does not clean it for us.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn traversal_is_refused_and_leaves_no_half_layer() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("../escape", traversal(&[("../escape", tar::EntryType::Regular, None)])),
        ("/abs", traversal(&[("/abs", tar::EntryType::Regular, None)])),
        (
            "link/passwd",
            traversal(&[
                ("link", tar::EntryType::Symlink, Some(outside.to_str().unwrap())),
                ("link/passwd", tar::EntryType::Regular, None),
            ]),
        ),
        ("hard", traversal(&[("hard", tar::EntryType::Link, Some("../../etc/passwd"))])),
    ];
    for (i, (entry, data)) in cases.into_iter().enumerate() {
        let dest = dir.path().join(format!("layer{i}"));
        let err = apply_layer(&data[..], &dest, WhiteoutFormat::Files).unwrap_err();
        match &err {
            LayerError::Unsafe { entry: e, .. } => assert_eq!(e, entry, "{err}"),
            other => panic!("{entry}: expected a refusal, got {other}"),
        }
        assert!(
            !dest.exists() && !dir.path().join(format!("layer{i}.partial")).exists(),
            "{entry}: half layer left"
        );
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn diff_is_reproducible_and_round_trips() {
    if !require_root("diff_is_reproducible_and_round_trips") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    apply_layer(&sample_layer()[..], &first, WhiteoutFormat::Overlay).unwrap();
    let mut a = Vec::new();
    let (id_a, size_a) = diff_layer(&first, &mut a).unwrap();
    let mut b = Vec::new();
    let (id_b, _) = diff_layer(&first, &mut b).unwrap();
    assert_eq!(a, b, "same tree, same bytes");
    assert_eq!((id_a.clone(), size_a), (Digest::of(&a), a.len() as u64));

    let second = dir.path().join("second");
    let applied = apply_layer(&a[..], &second, WhiteoutFormat::Overlay).unwrap();
    assert_eq!(applied.diff_id, id_b);
    let mut c = Vec::new();
    diff_layer(&second, &mut c).unwrap();
    assert_eq!(a, c, "apply(diff(tree)) is the same tree");

    let names: Vec<String> = tar::Archive::new(&a[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"var/.wh.gone".to_string()), "{names:?}");
    assert!(names.contains(&"opaque/.wh..wh..opq".to_string()), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries in name order");
    let kinds: Vec<tar::EntryType> = tar::Archive::new(&a[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().header().entry_type())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == tar::EntryType::Link).count(),
        1,
        "the second name of a file is a hard link"
    );
}

/// Mounts kernel overlayfs with an upper; unmounted on drop.
fn overlay(lower: &Path, upper: &Path, work: &Path, target: &Path) -> berth_tests::Mounted {
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    berth_tests::mount_overlay(target, &options, false)
}

#[test]
fn applied_upper_and_kernel_overlay_agree_both_ways() {
    if !require_root("applied_upper_and_kernel_overlay_agree_both_ways") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (lower, work, merged) = (dir.path().join("lower"), dir.path().join("work"), dir.path().join("merged"));
    for d in [&lower, &work, &merged] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::create_dir_all(lower.join("var")).unwrap();
    std::fs::write(lower.join("var/gone"), "lower").unwrap();
    std::fs::write(lower.join("var/kept"), "lower").unwrap();
    std::fs::create_dir_all(lower.join("opaque")).unwrap();
    std::fs::write(lower.join("opaque/hidden"), "lower").unwrap();

    // A layer applied by berth, used as an overlayfs upper.
    let upper = dir.path().join("upper");
    apply_layer(&sample_layer()[..], &upper, WhiteoutFormat::Overlay).unwrap();
    {
        let _m = overlay(&lower, &upper, &work, &merged);
        assert!(!merged.join("var/gone").exists(), "the whiteout hides the lower file");
        assert!(merged.join("var/kept").exists());
        assert!(!merged.join("opaque/hidden").exists(), "the opaque directory hides the lower one");
        assert_eq!(std::fs::read_to_string(merged.join("etc/file")).unwrap(), "hello");
    }

    // An upper written by kernel overlayfs, turned into a layer by berth.
    let upper2 = dir.path().join("upper2");
    let work2 = dir.path().join("work2");
    std::fs::create_dir_all(&upper2).unwrap();
    std::fs::create_dir_all(&work2).unwrap();
    {
        let _m = overlay(&lower, &upper2, &work2, &merged);
        std::fs::remove_file(merged.join("var/gone")).unwrap();
        std::fs::remove_dir_all(merged.join("opaque")).unwrap();
        std::fs::create_dir(merged.join("opaque")).unwrap();
        std::fs::write(merged.join("opaque/new"), "new").unwrap();
    }
    let mut tarball = Vec::new();
    diff_layer(&upper2, &mut tarball).unwrap();
    let names: Vec<String> = tar::Archive::new(&tarball[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"var/.wh.gone".to_string()), "{names:?}");
    assert!(names.contains(&"opaque/.wh..wh..opq".to_string()), "{names:?}");
    assert!(names.contains(&"opaque/new".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with("/hidden")), "{names:?}");
}
