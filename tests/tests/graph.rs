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
    let d = OverlayDriver::new(home.path()).unwrap();
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
