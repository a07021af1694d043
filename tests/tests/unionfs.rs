//! berth-unionfs against kernel overlayfs: random layer stacks, mounted by
//! both, must show the same tree (names, types, modes, owners, sizes,
//! contents, symlink targets, xattrs); random sequences of changes must
//! give the same results, the same merged view and the same upper
//! directory (whiteouts and opaque marks included). The seed of a failing
//! case is printed; UNION_SEEDS and UNION_WRITE_SEEDS run more.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_fs::layer::whiteout::{make_whiteout, OVERLAY_OPAQUE_XATTR};
use berth_tests::{bin, mount_overlay, require_root, Mounted};

/// A small deterministic generator (xorshift), so a seed replays a case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: [&str; 6] = ["a", "b", "c", "dir", "sub", "x"];

/// Fills `root/rel` with a random tree of depth at most 3. Whiteouts are
/// only made where a layer below (`lowers`) has the name, as a real layer
/// only deletes what exists under it; any directory may become opaque.
fn random_tree(rng: &mut Rng, root: &Path, rel: &Path, lowers: &[PathBuf], depth: u32) {
    for name in NAMES {
        let r = rel.join(name);
        let p = root.join(&r);
        let below = lowers.iter().any(|l| std::fs::symlink_metadata(l.join(&r)).is_ok());
        match rng.below(10) {
            0..=2 => {
                let content = format!("{name}-{}", rng.next());
                std::fs::write(&p, content).unwrap();
                let mode = [0o644, 0o600, 0o755][rng.below(3) as usize];
                std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
                if rng.below(4) == 0 {
                    xattr::set(&p, "user.tag", format!("{}", rng.below(100)).as_bytes()).unwrap();
                }
            }
            3..=5 if depth < 3 => {
                std::fs::create_dir(&p).unwrap();
                let opaque = !lowers.is_empty() && rng.below(5) == 0;
                if opaque {
                    xattr::set(&p, OVERLAY_OPAQUE_XATTR, b"y").unwrap();
                }
                let visible = if opaque { Vec::new() } else { merged_below(lowers, &r) };
                random_tree(rng, root, &r, &visible, depth + 1);
            }
            6 => std::os::unix::fs::symlink(format!("target-{}", rng.below(5)), &p).unwrap(),
            7 | 8 if below => make_whiteout(&p).unwrap(),
            _ => {}
        }
    }
}

/// Makes `n` random layers `root/l0` (top) .. `root/l{n-1}`, bottom first so
/// each layer knows what lies below it; returns them as a lowerdir= list.
fn random_stack(rng: &mut Rng, root: &Path, n: usize) -> String {
    let layers: Vec<PathBuf> = (0..n).map(|i| root.join(format!("l{i}"))).collect();
    for (i, l) in layers.iter().enumerate().rev() {
        std::fs::create_dir(l).unwrap();
        random_tree(rng, l, Path::new(""), &layers[i + 1..], 0);
    }
    layers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":")
}

/// The lower layers in which directory `rel` continues the merge: down to
/// the first layer where it is opaque, or hidden by a whiteout or a
/// non-directory.
fn merged_below(lowers: &[PathBuf], rel: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for l in lowers {
        match std::fs::symlink_metadata(l.join(rel)) {
            Ok(m) if m.is_dir() => {
                out.push(l.clone());
                if xattr::get(l.join(rel), OVERLAY_OPAQUE_XATTR).ok().flatten().is_some() {
                    break;
                }
            }
            Ok(_) => break,
            Err(_) => {}
        }
    }
    out
}

/// Everything a user can see of a tree, by relative path.
fn snapshot(root: &Path, seed: u64) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, String>, seed: u64) {
        let mut names: Vec<_> = std::fs::read_dir(root.join(rel)).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let p = root.join(&r);
            let m = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("seed {seed}: {}: listed but {e}", p.display()));
            let mut desc = format!("mode={:o} uid={} gid={}", m.mode(), m.uid(), m.gid());
            if m.is_file() {
                desc += &format!(" size={} content={}", m.len(), std::fs::read_to_string(&p).unwrap());
                desc += &format!(" tag={:?}", xattr::get(&p, "user.tag").unwrap());
            } else if m.file_type().is_symlink() {
                desc += &format!(" -> {}", std::fs::read_link(&p).unwrap().display());
            }
            out.insert(r.clone(), desc);
            if m.is_dir() {
                walk(root, &r, out, seed);
            }
        }
    }
    walk(root, Path::new(""), &mut out, seed);
    out
}

#[test]
fn random_stacks_match_kernel_overlayfs() {
    if !require_root("random_stacks_match_kernel_overlayfs") {
        return;
    }
    let seeds: u64 = std::env::var("UNION_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    for seed in 1..=seeds {
        let tmp = tempfile::tempdir().unwrap();
        // UNION_KEEP=1 keeps the layers of every seed for inspection.
        let (_guard, root) = if std::env::var_os("UNION_KEEP").is_some() {
            let p = tmp.keep();
            eprintln!("seed {seed}: {}", p.display());
            (None, p)
        } else {
            let p = tmp.path().to_path_buf();
            (Some(tmp), p)
        };
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let n = 2 + rng.below(3) as usize;
        let lowerdir = random_stack(&mut rng, &root, n);
        let (kernel, ours) = (root.join("kernel"), root.join("ours"));
        std::fs::create_dir(&kernel).unwrap();
        std::fs::create_dir(&ours).unwrap();
        let _k = mount_overlay(&kernel, &format!("lowerdir={lowerdir}"), true);
        mount_unionfs(&format!("lowerdir={lowerdir}"), &ours);
        let _o = Mounted(ours.clone());
        let (a, b) = (snapshot(&kernel, seed), snapshot(&ours, seed));
        for (path, desc) in &a {
            assert_eq!(b.get(path), Some(desc), "seed {seed}: {} differs (kernel: {desc})", path.display());
        }
        assert_eq!(
            a.len(),
            b.len(),
            "seed {seed}: extra entries in berth-unionfs: {:?}",
            b.keys().filter(|k| !a.contains_key(*k)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn mount_program_command_line_and_unmount() {
    if !require_root("mount_program_command_line_and_unmount") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (l1, l2, mnt) = (dir.path().join("l1"), dir.path().join("l2"), dir.path().join("mnt"));
    for d in [&l1, &l2, &mnt] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(l2.join("f"), "lower").unwrap();
    let o = Command::new(bin("berth-unionfs"))
        .arg("-o")
        .arg(format!("lowerdir={}:{}", l1.display(), dir.path().join("missing").display()))
        .arg(&mnt)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing"), "{o:?}");
    let o = Command::new(bin("berth-unionfs")).arg(&mnt).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("lowerdir"), "{o:?}");
    let o = Command::new(bin("berth-unionfs"))
        .arg("-o")
        .arg(format!("lowerdir={},passthrough=maybe", l1.display()))
        .arg(&mnt)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("passthrough=maybe"), "{o:?}");
    let o = Command::new(bin("berth-unionfs"))
        .arg("-o")
        .arg(format!("lowerdir={},threads=0", l1.display()))
        .arg(&mnt)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("threads=0"), "{o:?}");

    // volatile: copy-ups and fsync work, without flushing.
    let (up, work) = (dir.path().join("up"), dir.path().join("work"));
    std::fs::create_dir(&up).unwrap();
    std::fs::create_dir(&work).unwrap();
    mount_unionfs(&opts(&l2, &up, &work, "volatile"), &mnt);
    {
        let _m = Mounted(mnt.clone());
        let mut f = std::fs::OpenOptions::new().append(true).open(mnt.join("f")).unwrap();
        std::io::Write::write_all(&mut f, b"+").unwrap();
        f.sync_all().unwrap();
        assert_eq!(std::fs::read_to_string(up.join("f")).unwrap(), "lower+");
    }

    // The form mount(8) uses for a fuse.berth-unionfs helper: SOURCE MOUNTPOINT -o OPTIONS.
    let status = Command::new(bin("berth-unionfs"))
        .arg("berth")
        .arg(&mnt)
        .arg("-o")
        .arg(format!("rw,lowerdir={}:{}", l1.display(), l2.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let _m = Mounted(mnt.clone());
    assert_eq!(std::fs::read_to_string(mnt.join("f")).unwrap(), "lower");
    let err = std::fs::write(mnt.join("new"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "without an upper, writes are refused");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mountinfo.lines().find(|l| l.split(' ').nth(4) == mnt.to_str()).expect("mounted");
    assert!(
        line.contains(" - fuse.berth-unionfs berth-unionfs "),
        "a mount of type fuse.berth-unionfs named berth-unionfs: {line}"
    );
    let status = Command::new("fusermount3").arg("-u").arg(&mnt).status().unwrap();
    assert!(status.success(), "fusermount3 -u unmounts");
    assert!(!mnt.join("f").exists());

    // Through mount(8) and its FUSE helper (mount.fuse3 runs PROGRAM#SOURCE).
    let status = Command::new("mount")
        .args(["-t", "fuse"])
        .arg(format!("{}#berth", bin("berth-unionfs").display()))
        .arg(&mnt)
        .arg("-o")
        .arg(format!("lowerdir={}:{}", l1.display(), l2.display()))
        .status()
        .unwrap();
    assert!(status.success(), "mount -t fuse PROGRAM#SOURCE");
    assert_eq!(std::fs::read_to_string(mnt.join("f")).unwrap(), "lower");
    let status = Command::new("umount").arg(&mnt).status().unwrap();
    assert!(status.success(), "umount unmounts");
    assert!(!mnt.join("f").exists());
}

/// The shape of an upper directory: names, types, whiteouts and opaque marks.
fn upper_shape(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let mut names: Vec<_> = std::fs::read_dir(root.join(rel)).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let p = root.join(&r);
            let m = std::fs::symlink_metadata(&p).unwrap();
            let desc = if berth_fs::layer::whiteout::is_whiteout(&m) {
                "whiteout".to_string()
            } else if m.is_dir() {
                format!("dir opaque={}", berth_fs::layer::whiteout::is_opaque(&p))
            } else if m.is_file() {
                format!("file {}", std::fs::read_to_string(&p).unwrap_or_default())
            } else {
                format!("{:?}", m.file_type())
            };
            out.insert(r.clone(), desc);
            if m.is_dir() {
                walk(root, &r, out);
            }
        }
    }
    walk(root, Path::new(""), &mut out);
    out
}

/// One random change, applied the same way to `root` (a mount); returns
/// what the system call said, so both mounts can be compared on errors too.
fn random_change(rng: &mut Rng, root: &Path, visible: &[PathBuf], dir_renames: bool) -> String {
    let pick = |rng: &mut Rng| -> PathBuf {
        if visible.is_empty() || rng.below(4) == 0 {
            PathBuf::from(NAMES[rng.below(NAMES.len() as u64) as usize])
        } else {
            visible[rng.below(visible.len() as u64) as usize].clone()
        }
    };
    let target = pick(rng);
    let p = root.join(&target);
    let value = rng.below(1000);
    let op = rng.below(11);
    let r: std::io::Result<()> = match op {
        0 => std::fs::write(&p, format!("w{value}")),
        1 => std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("+{value}").as_bytes())),
        2 => std::fs::remove_file(&p),
        3 => std::fs::create_dir(&p),
        4 => std::fs::remove_dir(&p),
        5 => {
            let dest = pick(rng).with_file_name(NAMES[rng.below(NAMES.len() as u64) as usize]);
            if !dir_renames && std::fs::symlink_metadata(&p).map(|m| m.is_dir()).unwrap_or(true) {
                // Kernel overlayfs without redirect_dir refuses (EXDEV).
                Ok(())
            } else {
                std::fs::rename(&p, root.join(&dest)).map_err(|e| std::io::Error::new(e.kind(), format!("to {}: {e}", dest.display())))
            }
        }
        6 => std::fs::set_permissions(
            &p,
            std::os::unix::fs::PermissionsExt::from_mode([0o600, 0o644, 0o755][(value % 3) as usize]),
        ),
        7 => std::fs::OpenOptions::new().write(true).open(&p).and_then(|f| f.set_len(value % 7)),
        8 => std::os::unix::fs::symlink(format!("t{value}"), &p),
        9 => std::fs::hard_link(&p, root.join(pick(rng).with_file_name(format!("h{}", value % 3)))),
        _ => xattr::set(&p, "user.tag", format!("{value}").as_bytes()),
    };
    let result = match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{:?} {e}", e.kind()),
    };
    format!("op {op} on {}: {result}", target.display())
}

#[test]
fn random_changes_match_kernel_overlayfs() {
    if !require_root("random_changes_match_kernel_overlayfs") {
        return;
    }
    let seeds: u64 = std::env::var("UNION_WRITE_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    differential(1..=seeds, false);
}

/// With directory renames: kernel overlayfs records them as redirects,
/// berth-unionfs copies the whole tree up, so the results and merged views
/// must match, and berth's upper must read the same under kernel overlayfs
/// without redirects.
#[test]
fn random_changes_with_directory_renames_match_kernel_overlayfs() {
    if !require_root("random_changes_with_directory_renames_match_kernel_overlayfs") {
        return;
    }
    let seeds: u64 = std::env::var("UNION_WRITE_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    differential(1001..=1000 + seeds, true);
}

/// Applies seeded random change sequences through kernel overlayfs and
/// berth-unionfs (odd seeds with FUSE passthrough, even ones with the
/// writeback cache; every third over /dev/fuse alone, the others over
/// io_uring) and compares every result, the merged views and the upper
/// directories.
fn differential(seeds: std::ops::RangeInclusive<u64>, dir_renames: bool) {
    // UNION_SEED=N reruns just the sequence with that seed.
    let only: Option<u64> = std::env::var("UNION_SEED").ok().and_then(|s| s.parse().ok());
    for seed in seeds.filter(|s| only.is_none_or(|o| o == *s)) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        let n = 1 + rng.below(3) as usize;
        let lowerdir = random_stack(&mut rng, &root, n);
        for d in ["ku", "kw", "k", "bu", "bw", "b", "cw", "c"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        let kopts = format!(
            "lowerdir={lowerdir},upperdir={},workdir={},redirect_dir={},index=off,metacopy=off",
            root.join("ku").display(),
            root.join("kw").display(),
            if dir_renames { "on" } else { "off" }
        );
        let _k = mount_overlay(&root.join("k"), &kopts, false);
        let bopts = format!(
            "lowerdir={lowerdir},upperdir={},workdir={},passthrough={},uring={}",
            root.join("bu").display(),
            root.join("bw").display(),
            if seed % 2 == 1 { "on" } else { "off" },
            if seed % 3 == 0 { "off" } else { "on" }
        );
        mount_unionfs(&bopts, &root.join("b"));
        let _b = Mounted(root.join("b"));
        for step in 0..25 {
            let visible: Vec<PathBuf> = snapshot(&root.join("k"), seed).keys().cloned().collect();
            let state = rng.0;
            let k = random_change(&mut rng, &root.join("k"), &visible, dir_renames);
            rng.0 = state;
            let before = snapshot(&root.join("b"), seed);
            let b = random_change(&mut rng, &root.join("b"), &visible, dir_renames);
            if k != b {
                eprintln!("berth view before: {before:#?}");
                eprintln!("kernel view now: {:#?}", snapshot(&root.join("k"), seed));
                eprintln!("berth upper: {:#?}", upper_shape(&root.join("bu")));
            }
            assert_eq!(k, b, "seed {seed} step {step}: results differ");
        }
        let (a, b) = (snapshot(&root.join("k"), seed), snapshot(&root.join("b"), seed));
        assert_eq!(a, b, "seed {seed}: merged views differ");
        drop(_k);
        drop(_b);
        if dir_renames {
            let copts = format!(
                "lowerdir={lowerdir},upperdir={},workdir={},redirect_dir=off,index=off,metacopy=off",
                root.join("bu").display(),
                root.join("cw").display()
            );
            let _c = mount_overlay(&root.join("c"), &copts, false);
            if only.is_some() {
                eprintln!("berth upper: {:#?}", upper_shape(&root.join("bu")));
            }
            assert_eq!(
                b,
                snapshot(&root.join("c"), seed),
                "seed {seed}: berth's upper reads differently under overlayfs"
            );
        } else {
            assert_eq!(
                upper_shape(&root.join("ku")),
                upper_shape(&root.join("bu")),
                "seed {seed}: upper directories differ"
            );
        }
    }
}

/// A temporary directory holding empty `l` (lower), `u` (upper), `w`
/// (work) and `m` (mount point) directories.
fn union_dirs() -> (tempfile::TempDir, [PathBuf; 4]) {
    let dir = tempfile::tempdir().unwrap();
    let paths = ["l", "u", "w", "m"].map(|n| dir.path().join(n));
    for p in &paths {
        std::fs::create_dir(p).unwrap();
    }
    (dir, paths)
}

/// berth-unionfs options for lower `l`, upper `u` and work `w`, with
/// `extra` options after them.
fn opts(l: &Path, u: &Path, w: &Path, extra: &str) -> String {
    let base = format!("lowerdir={},upperdir={},workdir={}", l.display(), u.display(), w.display());
    if extra.is_empty() {
        base
    } else {
        format!("{base},{extra}")
    }
}

/// Pins the calling thread to CPU 0.
fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is valid; it is ours.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Mounts berth-unionfs with `-o opts` at `mnt` (it detaches once mounted).
fn mount_unionfs(opts: &str, mnt: &Path) {
    let status = Command::new(bin("berth-unionfs")).arg("-o").arg(opts).arg(mnt).status().unwrap();
    assert!(status.success(), "berth-unionfs -o {opts} {}", mnt.display());
}

/// The pid of the berth-unionfs serving `mnt`, from /proc.
fn daemon_pid(mnt: &Path) -> Option<i32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"berth-unionfs")) && args.contains(&mnt.as_os_str().as_encoded_bytes()) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn kill_9_during_copy_up_loses_nothing() {
    if !require_root("kill_9_during_copy_up_loses_nothing") {
        return;
    }
    let (_dir, [l, u, w, m]) = union_dirs();
    // Big enough that the copy-up is still running when the kill lands.
    let big: Vec<u8> = (0..64u32 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(l.join("big"), &big).unwrap();
    std::fs::write(l.join("small"), "small").unwrap();
    let opts = opts(&l, &u, &w, "");
    for round in 0..3 {
        mount_unionfs(&opts, &m);
        let pid = daemon_pid(&m).expect("daemon running");
        let mp = m.clone();
        let writer = std::thread::spawn(move || {
            // Opening for append starts the copy-up; the kill interrupts it.
            let _ = std::fs::OpenOptions::new()
                .append(true)
                .open(mp.join("big"))
                .and_then(|mut f| std::io::Write::write_all(&mut f, b"tail"));
        });
        std::thread::sleep(std::time::Duration::from_millis(5 + 20 * round));
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = writer.join();
        let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        // The upper holds either nothing of big or a complete copy.
        if let Ok(copied) = std::fs::read(u.join("big")) {
            assert!(
                copied.len() >= big.len() && copied[..big.len()] == big[..],
                "round {round}: a half-copied file is visible in the upper"
            );
        }
        assert_eq!(std::fs::read(l.join("big")).unwrap(), big, "the lower is never touched");
    }
    // After a clean remount the leftovers in the work directory are gone
    // and the file reads whole.
    mount_unionfs(&opts, &m);
    let _mounted = Mounted(m.clone());
    let seen = std::fs::read(m.join("big")).unwrap();
    assert_eq!(&seen[..big.len()], &big[..]);
    assert_eq!(std::fs::read_to_string(m.join("small")).unwrap(), "small");
    assert_eq!(std::fs::read_dir(&w).unwrap().count(), 0, "work directory cleaned at mount");
}

#[test]
fn rm_rf_of_a_large_lower_tree() {
    if !require_root("rm_rf_of_a_large_lower_tree") {
        return;
    }
    // Removing entries while reading the directory must not miss any:
    // each open directory keeps the listing it started with.
    let (_dir, [l, u, w, m]) = union_dirs();
    std::fs::create_dir_all(l.join("tree/sub")).unwrap();
    for i in 0..1500 {
        std::fs::write(l.join(format!("tree/f{i}")), "x").unwrap();
    }
    std::fs::write(l.join("tree/sub/leaf"), "y").unwrap();
    mount_unionfs(&opts(&l, &u, &w, ""), &m);
    let _m = Mounted(m.clone());
    std::fs::remove_dir_all(m.join("tree")).unwrap();
    assert!(!m.join("tree").exists());
    let wh = std::fs::symlink_metadata(u.join("tree")).unwrap();
    assert!(berth_fs::layer::whiteout::is_whiteout(&wh), "the upper hides the whole lower tree");
    assert_eq!(std::fs::read_dir(l.join("tree")).unwrap().count(), 1501, "the lower is untouched");
}

/// Whether the running kernel has FUSE passthrough (Linux 6.9).
fn kernel_has_passthrough() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 9)
}

/// Resumes a stopped process when dropped, so a failing test cannot leave
/// a mount hanging.
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// Runs `f` on another thread; None if it did not finish in time (the
/// thread is left behind, blocked on the stopped mount until it resumes).
fn finishes<T: Send + 'static>(secs: f64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs_f64(secs)).ok()
}

#[test]
fn open_files_are_passed_through_to_the_backing_file() {
    if !require_root("open_files_are_passed_through_to_the_backing_file") {
        return;
    }
    assert!(kernel_has_passthrough(), "this kernel lacks FUSE passthrough (Linux 6.9)");
    let (_dir, [l, u, w, m]) = union_dirs();
    std::fs::write(l.join("lower"), "from the lower layer").unwrap();
    mount_unionfs(&opts(&l, &u, &w, ""), &m);
    let _m = Mounted(m.clone());
    // The files stay open until the daemon resumes: a close may wait for it.
    let reader = std::sync::Arc::new(std::fs::File::open(m.join("lower")).unwrap());
    let writer = std::sync::Arc::new(std::fs::File::create(m.join("new")).unwrap());
    let (r, w2) = (reader.clone(), writer.clone());
    // An inode's first write asks for security.capability; later ones do
    // not (set-id bits are the daemon's to clear).
    std::os::unix::fs::FileExt::write_all_at(&*writer, b"first", 0).unwrap();
    // With the daemon stopped, only passthrough I/O can complete.
    let pid = daemon_pid(&m).expect("daemon running");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let resume = Resume(pid);
    let read = finishes(5.0, move || {
        let mut buf = [0u8; 64];
        let n = std::os::unix::fs::FileExt::read_at(&*r, &mut buf, 0).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    assert_eq!(read.as_deref(), Some("from the lower layer"), "a read waited for the daemon");
    let wrote = finishes(5.0, move || {
        std::os::unix::fs::FileExt::write_all_at(&*w2, b"written while stopped", 0).is_ok()
    });
    assert_eq!(wrote, Some(true), "a write waited for the daemon");
    drop(resume);
    drop((reader, writer));
    assert_eq!(std::fs::read_to_string(u.join("new")).unwrap(), "written while stopped");
    assert_eq!(std::fs::read_to_string(m.join("new")).unwrap(), "written while stopped");
    // Without passthrough the same read needs the daemon.
    let (_dir2, [l2, u2, w2, m2]) = union_dirs();
    std::fs::write(l2.join("lower"), "x").unwrap();
    mount_unionfs(&opts(&l2, &u2, &w2, "passthrough=off"), &m2);
    let _m2 = Mounted(m2.clone());
    let reader = std::sync::Arc::new(std::fs::File::open(m2.join("lower")).unwrap());
    let r = reader.clone();
    let pid = daemon_pid(&m2).expect("daemon running");
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let resume = Resume(pid);
    let read = finishes(0.5, move || {
        let mut buf = [0u8; 8];
        std::os::unix::fs::FileExt::read_at(&*r, &mut buf, 0).unwrap()
    });
    assert_eq!(read, None, "passthrough=off still passed the file through");
    drop(resume);
}

#[test]
fn without_privilege_whiteouts_are_files_and_io_uses_the_writeback_cache() {
    if !require_root("without_privilege_whiteouts_are_files_and_io_uses_the_writeback_cache") {
        return;
    }
    // In a user namespace of its own berth-unionfs has no CAP_MKNOD or
    // CAP_SYS_ADMIN outside it: whiteouts become `.wh.` files, opaque
    // directories get `.wh..wh..opq`, and file I/O goes through the
    // writeback cache instead of passthrough.
    let (_dir, [l, u, w, m]) = union_dirs();
    std::fs::create_dir_all(l.join("gone")).unwrap();
    std::fs::write(l.join("gone/inner"), "x").unwrap();
    std::fs::create_dir_all(l.join("remade")).unwrap();
    std::fs::write(l.join("remade/old"), "old").unwrap();
    std::fs::write(l.join("file"), "lower").unwrap();
    std::fs::write(l.join("appended"), "first").unwrap();
    let script = format!(
        "set -e
        {bin} -o lowerdir={l},upperdir={u},workdir={w} {m}
        cd {m}
        rm file
        rm -r gone
        rm -r remade
        mkdir remade
        echo new > remade/n
        printf ' second' >> appended
        dd if=/dev/zero of=big bs=64k count=16 status=none
        ls -A {m}
        cat appended
        cd /
        umount {m}",
        bin = bin("berth-unionfs").display(),
        l = l.display(),
        u = u.display(),
        w = w.display(),
        m = m.display()
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "script failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<&str> = stdout.lines().take_while(|l| !l.starts_with("first")).collect();
    assert_eq!(listed, ["appended", "big", "remade"]);
    assert!(stdout.contains("first second"), "{stdout}");
    for wh in [".wh.file", ".wh.gone"] {
        let m = std::fs::symlink_metadata(u.join(wh)).unwrap_or_else(|e| panic!("{wh}: {e}"));
        assert!(m.is_file() && m.len() == 0, "{wh} is an empty file");
    }
    assert!(u.join("remade/.wh..wh..opq").exists(), "the remade directory is opaque");
    assert!(!u.join("remade/old").exists());
    assert_eq!(std::fs::metadata(u.join("big")).unwrap().len(), 16 * 65536);
    // The same upper, mounted by berth-unionfs as root, reads the same.
    mount_unionfs(&opts(&l, &u, &w, ""), &m);
    let _m = Mounted(m.clone());
    let mut names: Vec<String> = std::fs::read_dir(&m)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["appended", "big", "remade"]);
    let remade: Vec<String> = std::fs::read_dir(m.join("remade"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(remade, ["n"]);
    assert_eq!(std::fs::read_to_string(m.join("appended")).unwrap(), "first second");
}

#[test]
fn an_unprivileged_write_clears_set_id_bits() {
    if !require_root("an_unprivileged_write_clears_set_id_bits") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    for passthrough in ["on", "off"] {
        let (dir, [l, u, w, m]) = union_dirs();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for name in ["suid", "untouched"] {
            std::fs::write(l.join(name), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(l.join(name), std::fs::Permissions::from_mode(0o6777)).unwrap();
        }
        mount_unionfs(&opts(&l, &u, &w, &format!("passthrough={passthrough}")), &m);
        let _m = Mounted(m.clone());
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c"])
            .arg(format!(
                "echo more >> {} && echo again >> {}",
                m.join("suid").display(),
                m.join("suid").display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mode = std::fs::metadata(m.join("suid")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o777, "passthrough={passthrough}: set-id bits survive a write by nobody");
        assert_eq!(std::fs::read_to_string(m.join("suid")).unwrap(), "#!/bin/sh\nmore\nagain\n");
        let mode = std::fs::metadata(m.join("untouched")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o6777, "an unwritten file keeps its bits");
        // A symlink in the union pointing at a set-id file outside it: a
        // chown of the link must not reach the file it names.
        let outside = dir.path().join("outside-suid");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let shared = m.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c"])
            .arg(format!(
                "ln -s {} {link} && chgrp -h 65534 {link}",
                outside.display(),
                link = shared.join("link").display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mode = std::fs::metadata(&outside).unwrap().permissions().mode() & 0o7777;
        assert_eq!(
            mode, 0o4755,
            "passthrough={passthrough}: a chown through a symlink changed the file outside"
        );
    }
}

/// The pjdfstest binary (crates.io `pjdfstest`, installed by
/// scripts/install-deps): PJDFSTEST, else PATH, else ~/.cargo/bin.
fn pjdfstest() -> PathBuf {
    if let Some(p) = std::env::var_os("PJDFSTEST") {
        return p.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("pjdfstest"))
        .find(|p| p.is_file());
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    on_path
        .or_else(|| home.map(|h| h.join("bin/pjdfstest")))
        .filter(|p| p.is_file())
        .expect("pjdfstest is not installed: run scripts/install-deps (cargo install pjdfstest --version 0.2.2)")
}

/// Runs pjdfstest in `dir`; returns (passed, failed test names).
fn run_pjdfstest(dir: &Path, config: &Path) -> (u32, std::collections::BTreeSet<String>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(pjdfstest())
        .arg("-c")
        .arg(config)
        .arg("-p")
        .arg(dir)
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("Summary:"))
        .unwrap_or_else(|| panic!("no summary: {stdout}"));
    let passed = summary
        .split(", ")
        .find_map(|p| p.strip_suffix(" passed"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable summary: {summary}"));
    let failed = stdout
        .lines()
        .filter(|l| l.trim_end().ends_with("FAILED"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    (passed, failed)
}

#[test]
fn posix_conformance_with_pjdfstest() {
    if !require_root("posix_conformance_with_pjdfstest") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pjdfstest.toml");
    // naptime above the kernel's coarse clock tick, so time changes show;
    // the two switched-to users exist on every Debian system.
    std::fs::write(
        &config,
        "[features]\nposix_fallocate = {}\n[settings]\nnaptime = 0.02\nallow_remount = false\n\
         [dummy_auth]\nentries = [[\"nobody\", \"nogroup\"], [\"daemon\", \"daemon\"]]\n",
    )
    .unwrap();
    let names = ["l", "ku", "kw", "k", "bu", "bw", "b"].map(|n| dir.path().join(n));
    for p in &names {
        std::fs::create_dir(p).unwrap();
    }
    let [l, ku, kw, k, bu, bw, b] = names;
    let kernel = {
        let _k = mount_overlay(&k, &opts(&l, &ku, &kw, ""), false);
        run_pjdfstest(&k, &config)
    };
    for (passthrough, uring) in [("on", "on"), ("off", "on"), ("on", "off")] {
        for d in [&bu, &bw] {
            std::fs::remove_dir_all(d).unwrap();
            std::fs::create_dir(d).unwrap();
        }
        mount_unionfs(&opts(&l, &bu, &bw, &format!("passthrough={passthrough},uring={uring}")), &b);
        let _b = Mounted(b.clone());
        let berth = run_pjdfstest(&b, &config);
        println!(
            "pjdfstest: berth-unionfs (passthrough={passthrough}, uring={uring}) passed {} (failed {}), kernel overlayfs passed {} (failed {})",
            berth.0,
            berth.1.len(),
            kernel.0,
            kernel.1.len()
        );
        // A 0:0 character device is a whiteout in overlayfs' format: making
        // one through either union makes it vanish.
        let unexplained: Vec<&String> = berth
            .1
            .iter()
            .filter(|t| !t.ends_with("::char") && !kernel.1.contains(*t))
            .collect();
        assert!(
            unexplained.is_empty(),
            "passthrough={passthrough}: fail on berth-unionfs only: {unexplained:?}"
        );
        assert!(
            berth.0 >= kernel.0,
            "berth-unionfs passes {} tests, kernel overlayfs {}",
            berth.0,
            kernel.0
        );
    }
}

/// Voluntary context switches of each thread of `pid`, by thread name.
fn switches_by_thread(pid: i32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let n = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        out.push((comm, n));
    }
    out
}

#[test]
fn requests_are_served_over_io_uring_on_the_callers_cpu() {
    if !require_root("requests_are_served_over_io_uring_on_the_callers_cpu") {
        return;
    }
    let (_dir, [l, u, w, m]) = union_dirs();
    std::fs::write(l.join("f"), "x").unwrap();
    mount_unionfs(&opts(&l, &u, &w, ""), &m);
    let _m = Mounted(m.clone());
    let pid = daemon_pid(&m).expect("daemon running");
    // Pinned to CPU 0, each request lands on queue 0.
    pin_to_cpu0();
    let f = m.join("f");
    // The first requests may come before every queue is registered.
    for _ in 0..20 {
        let _ = xattr::get(&f, "user.none");
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let before = switches_by_thread(pid);
    for _ in 0..300 {
        assert_eq!(xattr::get(&f, "user.none").unwrap(), None);
    }
    let after = switches_by_thread(pid);
    let grew = |name: &str| -> u64 {
        let sum = |v: &[(String, u64)]| v.iter().filter(|(n, _)| n == name).map(|(_, c)| c).sum::<u64>();
        sum(&after) - sum(&before)
    };
    assert!(
        grew("fuse-uring-0") >= 250,
        "queue 0 served {} of 300 requests: {after:?}",
        grew("fuse-uring-0")
    );
    let classic: u64 = after
        .iter()
        .filter(|(n, _)| !n.starts_with("fuse-uring"))
        .map(|(_, c)| c)
        .sum::<u64>()
        - before
            .iter()
            .filter(|(n, _)| !n.starts_with("fuse-uring"))
            .map(|(_, c)| c)
            .sum::<u64>();
    assert!(classic < 50, "/dev/fuse readers woke {classic} times");
}

#[test]
fn a_long_copy_up_does_not_hold_up_other_requests_from_its_cpu() {
    if !require_root("a_long_copy_up_does_not_hold_up_other_requests_from_its_cpu") {
        return;
    }
    let (_dir, [l, u, w, m]) = union_dirs();
    let big = vec![5u8; 256 << 20];
    std::fs::write(l.join("big"), &big).unwrap();
    std::fs::write(l.join("small"), "x").unwrap();
    mount_unionfs(&opts(&l, &u, &w, ""), &m);
    let _m = Mounted(m.clone());
    let (mb, ms) = (m.join("big"), m.join("small"));
    let copier = std::thread::spawn(move || {
        pin_to_cpu0();
        // Opening for append copies 256 MiB up and flushes it.
        let _f = std::fs::OpenOptions::new().append(true).open(&mb).unwrap();
        std::time::Instant::now()
    });
    std::thread::sleep(std::time::Duration::from_millis(30));
    let reader = std::thread::spawn(move || {
        pin_to_cpu0();
        for _ in 0..20 {
            assert_eq!(xattr::get(&ms, "user.none").unwrap(), None);
            std::fs::metadata(&ms).unwrap();
        }
        std::time::Instant::now()
    });
    let (copied, read) = (copier.join().unwrap(), reader.join().unwrap());
    assert!(read < copied, "requests from the same CPU waited for the copy-up to finish");
    assert_eq!(std::fs::metadata(u.join("big")).unwrap().len(), big.len() as u64);
}

#[test]
fn mmap_writes_reach_the_upper_and_inode_numbers_hold() {
    if !require_root("mmap_writes_reach_the_upper_and_inode_numbers_hold") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    for passthrough in ["on", "off"] {
        let (_dir, [l, u, w, m]) = union_dirs();
        std::fs::write(l.join("mapped"), vec![b'a'; 8192]).unwrap();
        mount_unionfs(&opts(&l, &u, &w, &format!("passthrough={passthrough}")), &m);
        let _m = Mounted(m.clone());
        let ino = std::fs::metadata(m.join("mapped")).unwrap().ino();
        let f = std::fs::OpenOptions::new().read(true).write(true).open(m.join("mapped")).unwrap();
        // SAFETY: a shared mapping of 8 KiB of an open file, unmapped below.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
            );
            assert_ne!(p, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
            assert_eq!(*(p as *const u8), b'a', "the mapping shows the lower data");
            std::ptr::copy_nonoverlapping(b"mapped!".as_ptr(), (p as *mut u8).add(4096), 7);
            assert_eq!(libc::msync(p, 8192, libc::MS_SYNC), 0);
            libc::munmap(p, 8192);
        }
        drop(f);
        let seen = std::fs::read(m.join("mapped")).unwrap();
        assert_eq!(
            &seen[4096..4103],
            b"mapped!",
            "passthrough={passthrough}: read sees the mapped write"
        );
        assert_eq!(
            &std::fs::read(u.join("mapped")).unwrap()[4096..4103],
            b"mapped!",
            "the write is in the upper"
        );
        assert_eq!(std::fs::read(l.join("mapped")).unwrap(), vec![b'a'; 8192], "the lower is untouched");
        // The inode number holds across the copy-up and a rename.
        assert_eq!(std::fs::metadata(m.join("mapped")).unwrap().ino(), ino);
        std::fs::rename(m.join("mapped"), m.join("moved")).unwrap();
        assert_eq!(std::fs::metadata(m.join("moved")).unwrap().ino(), ino);
    }
}

#[test]
fn copy_ups_skip_the_wait_for_the_disk_only_on_ordered_ext4() {
    if !require_root("copy_ups_skip_the_wait_for_the_disk_only_on_ordered_ext4") {
        return;
    }
    // The shortcut is only safe where the journal orders data before
    // metadata: journalled ext4 in data=ordered mode.
    let dir = tempfile::tempdir().unwrap();
    for (mkfs_args, mount_opts, expect) in [
        (vec![], "", true),
        (vec!["-O", "^has_journal"], "", false),
        (vec![], "data=writeback", false),
    ] {
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image).unwrap().set_len(64 << 20).unwrap();
        let out = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .args(&mkfs_args)
            .arg(&image)
            .output()
            .unwrap();
        assert!(out.status.success(), "mkfs.ext4: {}", String::from_utf8_lossy(&out.stderr));
        let mnt = dir.path().join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let mut mount = Command::new("mount");
        mount
            .args(["-o", &format!("loop{}{mount_opts}", if mount_opts.is_empty() { "" } else { "," })])
            .arg(&image)
            .arg(&mnt);
        let out = mount.output().unwrap();
        assert!(out.status.success(), "mount: {}", String::from_utf8_lossy(&out.stderr));
        let ordered = berth_fs::union::copy_up::ordered_ext4(&mnt);
        let _ = Command::new("umount").arg(&mnt).status();
        assert_eq!(ordered, expect, "mkfs {mkfs_args:?}, mount {mount_opts:?}");
        std::fs::remove_file(&image).unwrap();
    }
    let tmpfs = dir.path().join("tmpfs");
    std::fs::create_dir(&tmpfs).unwrap();
    let _t = mount_tmpfs(&tmpfs);
    assert!(!berth_fs::union::copy_up::ordered_ext4(&tmpfs), "tmpfs has no journal");
}

/// Mounts a tmpfs at `dir` (unmounted when dropped).
fn mount_tmpfs(dir: &Path) -> Mounted {
    nix::mount::mount(Some("tmpfs"), dir, Some("tmpfs"), nix::mount::MsFlags::empty(), None::<&str>).unwrap();
    Mounted(dir.to_path_buf())
}
