//! Graph drivers on real mounts: layers stacked, written through, counted.

use berth_fs::graph::overlay::OverlayDriver;
use berth_plugin::graph::CreateRequest;
use berth_plugin::GraphDriver;
use berth_tests::require_root;

fn req(id: &str, parent: &str) -> CreateRequest {
    CreateRequest {
        id: id.into(),
        parent: parent.into(),
        mount_label: String::new(),
    }
}

#[test]
fn overlay_driver_stacks_layers_and_counts_mounts() {
    if !require_root("overlay_driver_stacks_layers_and_counts_mounts") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    stacks_layers_and_counts_mounts(&OverlayDriver::new(home.path()).unwrap());
}

#[test]
fn fuse_union_driver_stacks_layers_and_counts_mounts() {
    if !require_root("fuse_union_driver_stacks_layers_and_counts_mounts") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let mounter = berth_fs::graph::overlay::Mounter::Fuse(berth_tests::bin("berth-unionfs"));
    stacks_layers_and_counts_mounts(&OverlayDriver::with_mounter(home.path(), mounter).unwrap());
}

/// The graph-driver contract on real mounts, for either mounter.
fn stacks_layers_and_counts_mounts(d: &OverlayDriver) {
    d.create(&req("base", "")).unwrap();
    std::fs::write(d.diff_dir("base").join("a"), "base a").unwrap();
    std::fs::write(d.diff_dir("base").join("b"), "base b").unwrap();
    d.create(&req("mid", "base")).unwrap();
    std::fs::write(d.diff_dir("mid").join("a"), "mid a").unwrap();
    d.create_read_write(&req("ctr", "mid")).unwrap();
    assert!(d.create(&req("ctr", "mid")).is_err(), "ids are unique");
    assert!(d.create(&req("orphan", "missing")).is_err(), "parents must exist");

    let merged = d.get("ctr", "").unwrap();
    assert_eq!(std::fs::read_to_string(merged.join("a")).unwrap(), "mid a", "upper layers win");
    assert_eq!(std::fs::read_to_string(merged.join("b")).unwrap(), "base b");
    std::fs::write(merged.join("new"), "written").unwrap();
    std::fs::remove_file(merged.join("b")).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.diff_dir("ctr").join("new")).unwrap(),
        "written",
        "writes land in the container layer"
    );
    let wh = std::fs::symlink_metadata(d.diff_dir("ctr").join("b")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()),
        "deletion leaves a whiteout"
    );
    assert!(d.diff_dir("base").join("b").exists(), "lower layers are untouched");

    // Mounts are counted: the second get shares the mount, the last put unmounts.
    assert_eq!(d.get("ctr", "").unwrap(), merged);
    assert!(d.remove("ctr").is_err(), "a mounted layer cannot be removed");
    d.put("ctr").unwrap();
    assert!(merged.join("new").exists());
    d.put("ctr").unwrap();
    assert!(!merged.join("new").exists(), "unmounted after the last put");
    assert!(d.put("ctr").is_err());

    // A read-only layer with parents mounts without an upper.
    let ro = d.get("mid", "").unwrap();
    assert_eq!(std::fs::read_to_string(ro.join("b")).unwrap(), "base b");
    assert!(std::fs::write(ro.join("x"), "no").is_err());
    d.put("mid").unwrap();
    for id in ["ctr", "mid", "base"] {
        d.remove(id).unwrap();
        assert!(!d.exists(id));
    }
}

#[test]
fn vfs_driver_copies_layers_and_applies_deletions() {
    if !require_root("vfs_driver_copies_layers_and_applies_deletions") {
        return;
    }
    use berth_fs::graph::vfs::VfsDriver;
    use berth_fs::layer::apply::apply_onto;
    use berth_fs::layer::whiteout::WhiteoutFormat;
    use std::os::unix::fs::MetadataExt;

    let home = tempfile::tempdir().unwrap();
    let d = VfsDriver::new(home.path()).unwrap();
    d.create(&req("base", "")).unwrap();
    let base = d.get("base", "").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data, mode) in [
        ("keep", &b"k"[..], 0o4755),
        ("gone", &b"g"[..], 0o644),
        ("dir/old", &b"o"[..], 0o600),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1234);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    apply_onto(&b.into_inner().unwrap()[..], &base, WhiteoutFormat::Remove).unwrap();
    std::fs::hard_link(base.join("keep"), base.join("keep-link")).unwrap();
    xattr::set(base.join("keep"), "user.k", b"v").unwrap();
    d.put("base").unwrap();

    d.create_read_write(&req("top", "base")).unwrap();
    let top = d.get("top", "").unwrap();
    let keep = std::fs::metadata(top.join("keep")).unwrap();
    assert_eq!(
        (keep.mode() & 0o7777, keep.uid(), keep.mtime(), keep.nlink()),
        (0o4755, 1000, 1234, 2),
        "the copy keeps metadata and links"
    );
    assert_eq!(xattr::get(top.join("keep"), "user.k").unwrap().as_deref(), Some(&b"v"[..]));

    // A layer that deletes `gone` and makes `dir` opaque, then adds dir/new.
    let mut b = tar::Builder::new(Vec::new());
    for name in [".wh.gone", "dir/.wh..wh..opq", "dir/new"] {
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    }
    apply_onto(&b.into_inner().unwrap()[..], &top, WhiteoutFormat::Remove).unwrap();
    assert!(!top.join("gone").exists() && !top.join(".wh.gone").exists());
    assert!(!top.join("dir/old").exists() && top.join("dir/new").exists());
    assert!(
        base.join("gone").exists() && base.join("dir/old").exists(),
        "the parent is untouched"
    );
    assert!(d.remove("top").is_err(), "in use");
    d.put("top").unwrap();
    d.remove("top").unwrap();
    d.remove("base").unwrap();
    assert!(d.create(&req(".hidden", "")).is_err());
}

/// A layer tarball of `(path, Some(content) | None for a directory)`.
fn layer_tar(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match content {
            Some(c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(c.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, path, c.as_bytes()).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// ApplyDiff through a driver: layers from tarballs, whiteouts and opaque
/// directories honoured in the merged view, diffIDs as sha256 of the
/// tarballs, a bad tarball refused with the layer left usable.
fn applies_layer_tarballs(d: &dyn GraphDriver) {
    let base = layer_tar(&[("a", Some("base a")), ("d/", None), ("d/x", Some("x")), ("keep", Some("kept"))]);
    let child = layer_tar(&[(".wh.a", Some("")), ("d/", None), ("d/.wh..wh..opq", Some("")), ("d/y", Some("y"))]);
    d.create(&req("base", "")).unwrap();
    let applied = d.apply_diff("base", &mut base.as_slice()).unwrap();
    assert_eq!(applied.diff_id, berth_fs::digest::Digest::of(&base).to_string());
    assert_eq!(applied.size, base.len() as u64);
    d.create(&req("child", "base")).unwrap();
    // gzip works too, with the diffID of the uncompressed stream.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &child).unwrap();
    let applied = d.apply_diff("child", &mut gz.finish().unwrap().as_slice()).unwrap();
    assert_eq!(applied.diff_id, berth_fs::digest::Digest::of(&child).to_string());
    d.create_read_write(&req("ctr", "child")).unwrap();
    let merged = d.get("ctr", "").unwrap();
    let names = |p: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&merged), ["d", "keep"], "the whiteout hides a");
    assert_eq!(names(&merged.join("d")), ["y"], "the opaque directory hides d/x");
    assert_eq!(std::fs::read_to_string(merged.join("keep")).unwrap(), "kept");
    d.put("ctr").unwrap();
    // Refused: a missing layer, and a tarball that climbs out.
    assert!(d.apply_diff("missing", &mut base.as_slice()).is_err());
    d.create(&req("bad", "")).unwrap();
    let evil = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        b.append(&h, &b"e"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let err = d.apply_diff("bad", &mut evil.as_slice()).unwrap_err();
    assert!(err.to_string().contains("escape"), "the error names the entry: {err}");
    let merged = d.get("bad", "").unwrap();
    assert!(names(&merged).is_empty(), "nothing of the bad tarball is visible");
    d.put("bad").unwrap();
}

#[test]
fn fuse_union_driver_applies_layer_tarballs() {
    if !require_root("fuse_union_driver_applies_layer_tarballs") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let mounter = berth_fs::graph::overlay::Mounter::Fuse(berth_tests::bin("berth-unionfs"));
    applies_layer_tarballs(&OverlayDriver::with_mounter(home.path(), mounter).unwrap());
}

#[test]
fn overlay_driver_applies_layer_tarballs() {
    if !require_root("overlay_driver_applies_layer_tarballs") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    applies_layer_tarballs(&OverlayDriver::new(home.path()).unwrap());
}

#[test]
fn vfs_driver_applies_layer_tarballs() {
    if !require_root("vfs_driver_applies_layer_tarballs") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    applies_layer_tarballs(&berth_fs::graph::vfs::VfsDriver::new(home.path()).unwrap());
}
