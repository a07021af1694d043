//! Image archives in both formats, against the tools of the OCI world:
//! what berthd saves (a docker-archive and an OCI image layout in one)
//! is read by skopeo and unpacked by umoci; OCI layouts skopeo and umoci
//! write load into berthd with the image IDs they had; damaged layouts
//! are refused and store nothing. Each test runs a berthd of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tests::{ok, text, Berthd};
use serde_json::{json, Value};

/// Runs `c`, which must fail; what it printed.
fn fails(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(!o.status.success(), "{c:?} succeeded: {}", text(&o));
    text(&o)
}

/// Root, skopeo and umoci (scripts/install-deps installs them).
fn require_tools(test: &str) -> bool {
    let found = berth_tests::has_program;
    berth_tests::require_root(test) && berth_tests::require(test, found("skopeo") && found("umoci"), "skopeo and umoci")
}

/// The image-spec architecture of this machine.
fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// The busybox test image as a docker-archive tagged `tag` at `path`,
/// its configuration's fields in the order of the image-spec's Go types;
/// its ID. skopeo, turning a docker-archive into an OCI layout, encodes
/// the configuration again in that order: only such a configuration
/// keeps its digest, hence the image its ID, through skopeo.
fn busybox_archive_skopeo_keeps(path: &Path, tag: &str) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let plain = scratch.path().join("plain.tar");
    berth_tests::busybox_docker_archive(&plain, &[tag]).unwrap();
    let unpacked = scratch.path().join("unpacked");
    untar(&plain, &unpacked);
    let entry = read_json(&unpacked.join("manifest.json"))[0].clone();
    let old = read_json(&unpacked.join(entry["Config"].as_str().unwrap()));
    let j = |v: &Value| serde_json::to_string(v).unwrap();
    let c = &old["config"];
    let config = format!(
        r#"{{"created":{},"architecture":{},"os":{},"config":{{"Env":{},"Cmd":{},"Labels":{}}},"rootfs":{{"type":"layers","diff_ids":{}}},"history":{}}}"#,
        j(&old["created"]),
        j(&old["architecture"]),
        j(&old["os"]),
        j(&c["Env"]),
        j(&c["Cmd"]),
        j(&c["Labels"]),
        j(&old["rootfs"]["diff_ids"]),
        j(&old["history"])
    );
    assert_eq!(
        serde_json::from_str::<Value>(&config).unwrap(),
        old,
        "the same configuration, reordered"
    );
    let id = berth_fs::digest::Digest::of(config.as_bytes());
    std::fs::remove_file(unpacked.join(entry["Config"].as_str().unwrap())).unwrap();
    std::fs::write(unpacked.join(format!("{}.json", id.hex())), &config).unwrap();
    let manifest = json!([{ "Config": format!("{}.json", id.hex()), "RepoTags": [tag], "Layers": entry["Layers"] }]);
    std::fs::write(unpacked.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    tar_dir(&unpacked, path);
    id.to_string()
}

/// What a berthd saved of the busybox test image.
struct Saved {
    id: String,
    /// `berth save -o` of the image by its name.
    archive: PathBuf,
    /// That archive unpacked.
    layout: PathBuf,
}

/// A berthd with the busybox test image loaded as `tag` and saved in `dir`.
fn saved_busybox(dir: &Path, tag: &str) -> Saved {
    let daemon = Berthd::start().unwrap();
    let loaded = dir.join("busybox-docker-archive.tar");
    let id = busybox_archive_skopeo_keeps(&loaded, tag);
    ok(daemon.berth().arg("load").arg("-i").arg(&loaded));
    let archive = dir.join("saved.tar");
    ok(daemon.berth().args(["save", "-o"]).arg(&archive).arg(tag));
    let layout = dir.join("saved");
    untar(&archive, &layout);
    Saved { id, archive, layout }
}

/// The manifest of the first image `index.json` lists.
fn first_manifest(layout: &Path) -> Value {
    let index = read_json(&layout.join("index.json"));
    read_json(&blob_path(layout, index["manifests"][0]["digest"].as_str().unwrap()))
}

/// The image ID `reference` has in `d`.
fn image_id(d: &Berthd, reference: &str) -> String {
    ok(d.docker().args(["image", "inspect", "--format", "{{.Id}}", reference]))
}

/// Unpacks the tarball `archive` into the new directory `dir`.
fn untar(archive: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    tar::Archive::new(std::fs::File::open(archive).unwrap()).unpack(dir).unwrap();
}

/// A tarball of the directory `dir` (symlinks kept as symlinks).
fn tar_dir(dir: &Path, archive: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(archive).unwrap());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// Writes `value` as a blob of the layout; its descriptor.
fn write_blob(layout: &Path, media_type: &str, value: &Value) -> Value {
    let bytes = serde_json::to_vec(value).unwrap();
    let digest = berth_fs::digest::Digest::of(&bytes).to_string();
    std::fs::write(blob_path(layout, &digest), &bytes).unwrap();
    json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() })
}

#[test]
fn berth_save_is_read_by_skopeo_both_ways() {
    if !require_tools("berth_save_is_read_by_skopeo_both_ways") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Saved {
        id,
        archive: saved,
        layout,
        ..
    } = saved_busybox(dir.path(), "busybox:latest");

    // One tarball, two formats, sharing their blobs.
    assert_eq!(read_json(&layout.join("oci-layout")), json!({ "imageLayoutVersion": "1.0.0" }));
    let index = read_json(&layout.join("index.json"));
    let entry = &index["manifests"][0];
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(entry["annotations"]["org.opencontainers.image.ref.name"], "latest");
    assert_eq!(entry["annotations"]["io.containerd.image.name"], "docker.io/library/busybox:latest");
    let manifest = first_manifest(&layout);
    assert_eq!(manifest["config"]["digest"], id.as_str(), "the configuration is the image ID's");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    let docker = read_json(&layout.join("manifest.json"));
    assert_eq!(docker[0]["Config"], format!("blobs/sha256/{}", &id[7..]));
    assert_eq!(docker[0]["RepoTags"], json!(["busybox:latest"]));
    assert_eq!(
        docker[0]["Layers"][0],
        format!("blobs/sha256/{}", &manifest["layers"][0]["digest"].as_str().unwrap()[7..])
    );
    let blobs = std::fs::read_dir(layout.join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 3, "configuration, layer and manifest, each once");

    // skopeo reads it as an OCI archive and as a docker-archive.
    let file = saved.to_str().unwrap();
    let inspect: Value = serde_json::from_str(&ok(Command::new("skopeo").args(["inspect", &format!("oci-archive:{file}")]))).unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1, "{inspect}");
    assert_eq!(inspect["Os"], "linux");
    let out2 = dir.path().join("out2.tar");
    ok(Command::new("skopeo")
        .args(["copy", "-q", &format!("oci-archive:{file}")])
        .arg(format!("docker-archive:{}", out2.display())));
    let oci_dir = dir.path().join("oci-dir");
    ok(Command::new("skopeo")
        .args(["copy", "-q", &format!("docker-archive:{file}")])
        .arg(format!("oci:{}", oci_dir.display())));
    assert!(oci_dir.join("index.json").is_file());

    // What skopeo made of it loads back with the same ID.
    let other = Berthd::start().unwrap();
    let out = ok(other.berth().arg("load").arg("-i").arg(&out2));
    assert!(out.contains(&id), "skopeo's docker-archive has no name: {out}");
    let relaid = dir.path().join("oci-dir.tar");
    tar_dir(&oci_dir, &relaid);
    let third = Berthd::start().unwrap();
    ok(third.berth().arg("load").arg("-i").arg(&relaid));
    assert_eq!(ok(third.docker().args(["images", "-q", "--no-trunc"])), id);
}

#[test]
fn berth_save_unpacks_with_umoci() {
    if !require_tools("berth_save_unpacks_with_umoci") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = saved_busybox(dir.path(), "busybox:1.36").layout;
    let bundle = dir.path().join("bundle");
    ok(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:1.36", layout.display()))
        .arg(&bundle));
    assert_eq!(
        std::fs::read(bundle.join("rootfs/bin/busybox")).unwrap(),
        std::fs::read(berth_tests::BUSYBOX).unwrap(),
        "umoci unpacked busybox byte for byte"
    );
    assert!(bundle.join("config.json").is_file());
}

#[test]
fn skopeo_layouts_load_with_the_same_image_id() {
    if !require_tools("skopeo_layouts_load_with_the_same_image_id") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("busybox.tar");
    let id = busybox_archive_skopeo_keeps(&archive, "busybox:latest");
    let source = format!("docker-archive:{}", archive.display());
    // skopeo compresses layers for OCI (gzip by default); its uncompressed
    // layers are tested here by content, as skopeo 1.9 labels them +gzip.
    let variants: [(&str, &[&str], &[u8]); 3] = [
        ("gzip", &[], &[0x1f, 0x8b]),
        ("zstd", &["--dest-compress-format", "zstd"], &[0x28, 0xb5, 0x2f, 0xfd]),
        ("none", &["--dest-oci-accept-uncompressed-layers"], b""),
    ];
    for (compression, flags, magic) in variants {
        let layout = dir.path().join(format!("{compression}.tar"));
        ok(Command::new("skopeo")
            .args(["copy", "-q"])
            .args(flags)
            .arg(&source)
            .arg(format!("oci-archive:{}:1.0", layout.display())));
        let unpacked = dir.path().join(compression);
        untar(&layout, &unpacked);
        assert!(!unpacked.join("manifest.json").exists(), "an OCI layout only");
        let manifest = first_manifest(&unpacked);
        let layer = std::fs::read(blob_path(&unpacked, manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
        if magic.is_empty() {
            assert_eq!(&layer[257..262], b"ustar", "{compression}: a plain tar");
        } else {
            assert!(layer.starts_with(magic), "{compression}: compressed as asked");
        }

        // A fresh daemon, so the layer is unpacked from this very blob.
        let d = Berthd::start().unwrap();
        let out = ok(d.berth().arg("load").arg("-i").arg(&layout));
        assert_eq!(out, format!("Loaded image ID: {id}"), "{compression}: a bare tag names no image");
        assert_eq!(ok(d.docker().args(["images", "-q", "--no-trunc"])), id);
        let chain = ok(d.docker().args(["image", "inspect", "--format", "{{index .RootFS.Layers 0}}", &id]));
        let busybox = d
            .data_root()
            .join("fuse-union")
            .join(chain.trim_start_matches("sha256:"))
            .join("diff/bin/busybox");
        assert_eq!(std::fs::read(&busybox).unwrap(), std::fs::read(berth_tests::BUSYBOX).unwrap());
        // And it saves again, uncompressed, with its ID.
        ok(d.berth().args(["tag", &id, "again:v1"]));
        let resaved = dir.path().join(format!("{compression}-again.tar"));
        ok(d.berth().args(["save", "-o"]).arg(&resaved).arg("again:v1"));
        let again = Berthd::start().unwrap();
        assert_eq!(ok(again.berth().arg("load").arg("-i").arg(&resaved)), "Loaded image: again:v1");
        assert_eq!(image_id(&again, "again:v1"), id);
    }

    // A full name as the reference name is the image's name.
    let named = dir.path().join("named.tar");
    ok(Command::new("skopeo")
        .args(["copy", "-q", &source])
        .arg(format!("oci-archive:{}:example.com/team/app:v1", named.display())));
    let d = Berthd::start().unwrap();
    assert_eq!(
        ok(d.berth().arg("load").arg("-i").arg(&named)),
        "Loaded image: example.com/team/app:v1"
    );
    assert_eq!(image_id(&d, "example.com/team/app:v1"), id);

    // A configuration skopeo encodes anew is loaded as the layout has it.
    let plain = dir.path().join("plain.tar");
    let plain_id = berth_tests::busybox_docker_archive(&plain, &["busybox:latest"]).unwrap();
    let converted = dir.path().join("converted");
    ok(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("docker-archive:{}", plain.display()))
        .arg(format!("oci:{}:latest", converted.display())));
    let layout_id = first_manifest(&converted)["config"]["digest"].as_str().unwrap().to_string();
    assert_ne!(layout_id, plain_id, "skopeo changed the configuration's bytes");
    let relaid = dir.path().join("converted.tar");
    tar_dir(&converted, &relaid);
    let d = Berthd::start().unwrap();
    assert_eq!(
        ok(d.berth().arg("load").arg("-i").arg(&relaid)),
        format!("Loaded image ID: {layout_id}")
    );
}

#[test]
fn umoci_layouts_load_with_their_layers() {
    if !require_tools("umoci_layouts_load_with_their_layers") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let image = format!("{}:t", layout.display());
    let bundle = dir.path().join("bundle");
    let umoci = |args: &[&str]| ok(Command::new("umoci").args(args));
    umoci(&["init", "--layout", layout.to_str().unwrap()]);
    umoci(&["new", "--image", &image]);
    // Two layers: each repack adds what changed in the bundle.
    for (file, content) in [("greeting", "hello\n"), ("farewell", "bye\n")] {
        let _ = std::fs::remove_dir_all(&bundle);
        umoci(&["unpack", "--image", &image, bundle.to_str().unwrap()]);
        std::fs::write(bundle.join("rootfs").join(file), content).unwrap();
        umoci(&["repack", "--image", &image, bundle.to_str().unwrap()]);
    }
    umoci(&["config", "--image", &image, "--config.cmd", "/greeting"]);

    // Only umoci's bare tag: loaded untagged.
    let bare = dir.path().join("bare.tar");
    tar_dir(&layout, &bare);
    let d = Berthd::start().unwrap();
    let out = ok(d.berth().arg("load").arg("-i").arg(&bare));
    let id = out.strip_prefix("Loaded image ID: ").unwrap_or_else(|| panic!("{out}")).to_string();
    assert_eq!(
        ok(d.docker()
            .args(["image", "inspect", "--format", "{{len .RootFS.Layers}} {{json .Config.Cmd}}", &id])),
        r#"2 ["/greeting"]"#
    );
    let first = ok(d.docker().args(["image", "inspect", "--format", "{{index .RootFS.Layers 0}}", &id]));
    let diff = d
        .data_root()
        .join("fuse-union")
        .join(first.trim_start_matches("sha256:"))
        .join("diff");
    assert_eq!(std::fs::read_to_string(diff.join("greeting")).unwrap(), "hello\n");

    // With a full name as a second tag of the same manifest: one image, named.
    umoci(&["tag", "--image", &image, "berth.test/umoci:v1"]);
    let named = dir.path().join("named.tar");
    tar_dir(&layout, &named);
    let d = Berthd::start().unwrap();
    assert_eq!(ok(d.berth().arg("load").arg("-i").arg(&named)), "Loaded image: berth.test/umoci:v1");
    assert_eq!(image_id(&d, "berth.test/umoci:v1"), id);
    assert_eq!(
        ok(d.docker()
            .args(["image", "inspect", "--format", "{{len .RootFS.Layers}}", "berth.test/umoci:v1"])),
        "2"
    );
    assert_eq!(ok(d.docker().args(["images", "-q"])).lines().count(), 1);
}

#[test]
fn image_indexes_load_the_entry_for_this_platform() {
    if !require_tools("image_indexes_load_the_entry_for_this_platform") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Saved { id, layout, .. } = saved_busybox(dir.path(), "busybox:latest");
    for f in ["manifest.json", "repositories"] {
        std::fs::remove_file(layout.join(f)).unwrap();
    }
    // index.json -> an image index whose other platform's manifest is not
    // even in the archive: only this platform's is read.
    let mut ours = read_json(&layout.join("index.json"))["manifests"][0].clone();
    ours.as_object_mut().unwrap().remove("annotations");
    ours["platform"] = json!({ "os": "linux", "architecture": goarch() });
    let elsewhere = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", "0".repeat(64)),
        "size": 1,
        "platform": { "os": "linux", "architecture": "s390x" },
    });
    let mut entry = write_blob(
        &layout,
        "application/vnd.oci.image.index.v1+json",
        &json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [elsewhere, ours] }),
    );
    entry["annotations"] = json!({ "io.containerd.image.name": "registry.test/multi:v2", "org.opencontainers.image.ref.name": "v2" });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": [entry] })).unwrap(),
    )
    .unwrap();
    let archive = dir.path().join("multi.tar");
    tar_dir(&layout, &archive);
    let other = Berthd::start().unwrap();
    assert_eq!(
        ok(other.berth().arg("load").arg("-i").arg(&archive)),
        "Loaded image: registry.test/multi:v2"
    );
    assert_eq!(image_id(&other, "registry.test/multi:v2"), id);
}

#[test]
fn damaged_layouts_are_refused_and_nothing_is_stored() {
    if !require_tools("damaged_layouts_are_refused_and_nothing_is_stored") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let saved = saved_busybox(dir.path(), "busybox:latest");
    let layer = first_manifest(&saved.layout)["layers"][0]["digest"].as_str().unwrap().to_string();
    let size = std::fs::metadata(blob_path(&saved.layout, &layer)).unwrap().len();
    // The daemon refusing them holds another image (not busybox, whose
    // layer it would then have already and not need to read).
    let target = Berthd::start().unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("kept"), "yes").unwrap();
    let other_archive = dir.path().join("other.tar");
    tar_dir(&other, &other_archive);
    ok(target.docker().arg("import").arg(&other_archive).arg("kept:v1"));
    let listed = || {
        ok(target
            .docker()
            .args(["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]))
    };
    let before = listed();

    // Each case: the saved layout damaged by `damage`, as an OCI layout
    // only, or with manifest.json kept when `combined`.
    let case = |name: &str, combined: bool, damage: &dyn Fn(&Path), expected: &[&str]| {
        let layout = dir.path().join(name);
        untar(&saved.archive, &layout);
        if !combined {
            std::fs::remove_file(layout.join("manifest.json")).unwrap();
        }
        damage(&layout);
        let archive = dir.path().join(format!("{name}.tar"));
        tar_dir(&layout, &archive);
        let err = fails(target.berth().arg("load").arg("-i").arg(&archive));
        for e in expected {
            assert!(err.contains(e), "{name}: {err:?} should say {e:?}");
        }
        assert_eq!(listed(), before, "{name}: nothing stored");
    };
    let layer_blob = |l: &Path| blob_path(l, &layer);
    // Same size, one byte changed amid busybox's: the tar stays a tar.
    let flip = |l: &Path| {
        let mut bytes = std::fs::read(layer_blob(l)).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(layer_blob(l), bytes).unwrap();
    };
    case("flipped", false, &flip, &[&format!("blob {layer} does not match its digest")]);
    let grow = |l: &Path| {
        let mut f = std::fs::OpenOptions::new().append(true).open(layer_blob(l)).unwrap();
        std::io::Write::write_all(&mut f, &[0; 512]).unwrap();
    };
    let grown = format!("blob {layer} size {} does not match the descriptor's {size}", size + 512);
    case("grown", false, &grow, &[&grown]);
    let remove = |l: &Path| std::fs::remove_file(layer_blob(l)).unwrap();
    case("missing", false, &remove, &[&format!("blob {layer} is not in the archive")]);
    let escape = |l: &Path| {
        std::fs::remove_file(layer_blob(l)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", layer_blob(l)).unwrap();
    };
    case("escaping", false, &escape, &["not a file inside the archive"]);
    let garble = |l: &Path| std::fs::write(l.join("index.json"), "{").unwrap();
    case("index-not-json", false, &garble, &["index.json"]);
    // With manifest.json kept, the docker-archive side is read; the
    // damaged layer is caught against the configuration's diffID.
    case("flipped-combined", true, &flip, &["layer 0", &layer]);
    // Neither format.
    let neither = |l: &Path| {
        for f in ["index.json", "oci-layout", "repositories"] {
            std::fs::remove_file(l.join(f)).unwrap();
        }
    };
    case("neither", false, &neither, &["neither manifest.json", "index.json"]);
    // The undamaged archive still loads.
    assert_eq!(
        ok(target.berth().arg("load").arg("-i").arg(&saved.archive)),
        "Loaded image: busybox:latest"
    );
    assert_eq!(image_id(&target, "busybox:latest"), saved.id);
}
