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
