//! berth-unionfs: a FUSE union filesystem over image layers, in kernel
//! overlayfs' on-disk format.
//!
//! It serves the merged view of its layers (lookup through the layers,
//! merged readdir hiding whiteouts, reads, symlinks, xattrs, statfs) with
//! inode numbers stable for the life of the mount. With an upper
//! directory, changes go there: files and directories are copied up first
//! ([`copy_up`]), deletions leave whiteouts (0:0 character devices, or
//! `.wh.` files where device nodes cannot be made), a directory made over a
//! deleted one is opaque. A directory that draws on lower layers is
//! renamed by copying its whole merged tree up first (no redirects, so the
//! upper stays readable by any overlayfs). Without an upper every change
//! is refused with EROFS.
//!
//! Speed: each inode remembers where it lives ([`nodes`]), so a lookup
//! costs a stat or two per layer of its directory; the kernel caches
//! entries (negative ones too), attributes, symlinks and directory
//! listings, since nothing changes the layers except through this mount;
//! readdirplus answers a listing with attributes. Open files are served by
//! FUSE passthrough where this process may register backing files
//! (CAP_SYS_ADMIN in the initial user namespace), else through the
//! kernel's writeback cache (the two exclude each other).

pub mod copy_up;
pub mod layers;
pub mod nodes;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use crate::fuse::abi::{fopen, init};
use crate::fuse::{Attr, Backing, BackingId, Ctx, DirBuf, Entry, Filesystem, InitConfig, Opened, SetAttr, Statfs, TimeOrNow, Xattr};

use crate::layer::whiteout::{WhiteoutFormat, OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIX};
use layers::{At, Layers, Lookup};
use nodes::Nodes;

/// How long the kernel may cache entries and attributes: nothing changes
/// the layers except through this mount, and every change through it
/// updates the kernel's caches as it happens.
const TTL: Duration = Duration::from_secs(3600);

/// An errno, with the conversions the operations need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Errno(i32);

impl Errno {
    const ENOENT: Errno = Errno(libc::ENOENT);
    const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    const EISDIR: Errno = Errno(libc::EISDIR);
    const EEXIST: Errno = Errno(libc::EEXIST);
    const ENOTEMPTY: Errno = Errno(libc::ENOTEMPTY);
    const EROFS: Errno = Errno(libc::EROFS);
    const EINVAL: Errno = Errno(libc::EINVAL);
    const EBADF: Errno = Errno(libc::EBADF);
    const EIO: Errno = Errno(libc::EIO);
    const NO_XATTR: Errno = Errno(libc::ENODATA);
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Errno {
        Errno(crate::fuse::errno(&e))
    }
}

impl From<nix::Error> for Errno {
    fn from(e: nix::Error) -> Errno {
        Errno(e as i32)
    }
}

/// A directory entry as readdir hands it out.
struct DirEntry {
    ino: u64,
    /// The file type bits of st_mode.
    kind: u32,
    name: std::ffi::OsString,
    layer: usize,
}

/// Whether `m` is an overlayfs whiteout.
pub(crate) fn is_whiteout_meta(m: &std::fs::Metadata) -> bool {
    crate::layer::whiteout::is_whiteout(m)
}

/// How an open file's I/O reaches its backing file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Served {
    /// The kernel reads and writes the backing file itself.
    Passthrough,
    /// Through this process, with the kernel's page cache.
    Cached,
    /// Through this process, uncached: for an open that may use neither
    /// (the inode is passed through to another backing file).
    Direct,
}

/// An inode's I/O mode while it has open files: the kernel refuses to
/// mix passthrough and cached opens of one inode, or two backing files.
enum IoMode {
    Passthrough { id: BackingId, file: (u64, u64), opens: usize },
    Cached { opens: usize },
}

struct Handle {
    file: Arc<std::fs::File>,
    ino: u64,
    served: Served,
}

/// Proof that the caller holds the lock under which the layers change.
struct Changing<'a>(#[allow(dead_code)] MutexGuard<'a, ()>);

/// The union filesystem.
pub struct UnionFs {
    layers: Layers,
    /// The writable layer (layer 0 of `layers`) when there is one.
    upper: Option<copy_up::Upper>,
    whiteouts: WhiteoutFormat,
    nodes: RwLock<Nodes>,
    /// Held by every operation that changes the layers: copy-ups and
    /// namespace changes never interleave.
    changes: Mutex<()>,
    files: RwLock<HashMap<u64, Handle>>,
    /// Directory listings by handle, taken at the first read.
    dirs: Mutex<HashMap<u64, Option<Arc<Vec<DirEntry>>>>>,
    io_modes: Mutex<HashMap<u64, IoMode>>,
    next_fh: AtomicU64,
    allow_passthrough: bool,
    /// fsync does nothing and copy-ups are not flushed (overlayfs'
    /// `volatile`): for scratch mounts that need not survive a crash.
    volatile: bool,
    passthrough: bool,
    writeback: bool,
    /// Registers passthrough files, once mounted.
    backing: Option<Backing>,
    uid: u32,
    gid: u32,
}

/// The file type bits of st_mode for `ft`.
fn mode_of(ft: std::fs::FileType) -> u32 {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        libc::S_IFDIR
    } else if ft.is_symlink() {
        libc::S_IFLNK
    } else if ft.is_char_device() {
        libc::S_IFCHR
    } else if ft.is_block_device() {
        libc::S_IFBLK
    } else if ft.is_fifo() {
        libc::S_IFIFO
    } else if ft.is_socket() {
        libc::S_IFSOCK
    } else {
        libc::S_IFREG
    }
}

fn attr(ino: u64, m: &std::fs::Metadata) -> Attr {
    Attr::from_meta(ino, m)
}

fn entry(attr: Attr) -> Entry {
    Entry { attr, ttl: TTL }
}

/// Clears the set-user-ID bit, and the set-group-ID bit of a
/// group-executable file, as a write or truncate by an unprivileged caller
/// must (the kernel leaves this to the filesystem under
/// FUSE_HANDLE_KILLPRIV_V2).
fn kill_set_id(f: &std::fs::File) -> Result<(), Errno> {
    let mode = f.metadata()?.mode();
    let mut kill = libc::S_ISUID;
    if mode & libc::S_IXGRP != 0 {
        kill |= libc::S_ISGID;
    }
    if mode & kill != 0 {
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777 & !kill))?;
    }
    Ok(())
}

/// Opens the regular file at `path` without following a symlink or
/// blocking on a FIFO: the upper layer is the container's to fill.
fn open_regular(path: &Path, write: bool) -> Result<std::fs::File, Errno> {
    let mut o = std::fs::OpenOptions::new();
    o.read(!write).write(write);
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut o, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let f = o.open(path)?;
    if !f.metadata()?.is_file() {
        return Err(Errno::EINVAL);
    }
    Ok(f)
}

/// Whether this process may register passthrough backing files: the
/// kernel asks for CAP_SYS_ADMIN in the initial user namespace.
fn may_pass_through() -> bool {
    // PROC_USER_INIT_INO, the initial user namespace's inode number.
    let initial = std::fs::read_link("/proc/self/ns/user").is_ok_and(|l| l.as_os_str() == "user:[4026531837]");
    let sys_admin = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    });
    initial && sys_admin.is_some_and(|c| c & (1 << 21) != 0) // CAP_SYS_ADMIN
}

/// Whether `dir` is on a stacking filesystem (overlayfs, FUSE), which
/// takes one more level of passthrough stacking.
fn stacked(dir: &Path) -> bool {
    const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
    const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
    nix::sys::statfs::statfs(dir).is_ok_and(|s| {
        let t = s.filesystem_type().0;
        t == OVERLAYFS_SUPER_MAGIC || t == FUSE_SUPER_MAGIC
    })
}

impl UnionFs {
    /// A read-only union of `lowers`, topmost first.
    pub fn new(lowers: Vec<PathBuf>) -> std::io::Result<UnionFs> {
        Self::with_upper(None, lowers)
    }

    /// A union with `upper` (the upper directory and its work directory)
    /// over `lowers`, topmost first.
    pub fn with_upper(upper: Option<(PathBuf, PathBuf)>, lowers: Vec<PathBuf>) -> std::io::Result<UnionFs> {
        let whiteouts = match &upper {
            Some((u, _)) => WhiteoutFormat::detect(u),
            None => WhiteoutFormat::Files,
        };
        let mut dirs = Vec::new();
        if let Some((u, _)) = &upper {
            dirs.push(u.clone());
        }
        dirs.extend(lowers);
        let layers = Layers::new(dirs)?;
        let (root, _) = layers.root()?;
        Ok(UnionFs {
            layers,
            upper: upper.map(|(u, w)| copy_up::Upper::new(u, w)),
            whiteouts,
            nodes: RwLock::new(Nodes::new(root)),
            changes: Mutex::new(()),
            files: RwLock::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            io_modes: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            allow_passthrough: true,
            volatile: false,
            passthrough: false,
            writeback: false,
            backing: None,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        })
    }

    /// Never use FUSE passthrough (the writeback cache serves instead).
    pub fn without_passthrough(mut self) -> UnionFs {
        self.allow_passthrough = false;
        self
    }

    /// Skips every flush to disk, as overlayfs' `volatile` option does.
    pub fn volatile(mut self) -> UnionFs {
        self.volatile = true;
        if let Some(up) = &mut self.upper {
            up.durable = false;
        }
        self
    }

    fn change(&self) -> Changing<'_> {
        Changing(self.changes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn nodes(&self) -> std::sync::RwLockReadGuard<'_, Nodes> {
        self.nodes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn nodes_mut(&self) -> std::sync::RwLockWriteGuard<'_, Nodes> {
        self.nodes.write().unwrap_or_else(|p| p.into_inner())
    }

    fn upper(&self) -> Result<&copy_up::Upper, Errno> {
        self.upper.as_ref().ok_or(Errno::EROFS)
    }

    /// Where `rel` is visible, resolved through its parents as needed.
    fn resolved(&self, rel: &Path) -> Result<At, Errno> {
        if let Some(at) = self.nodes().at(rel) {
            return Ok(at.clone());
        }
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(Errno::ENOENT);
        };
        let pat = self.resolved(parent)?;
        if !pat.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        match self.layers.lookup(parent, &pat.dirs, name)? {
            Lookup::Found(at, _) => {
                self.nodes_mut().set(rel, at.clone());
                Ok(at)
            }
            _ => Err(Errno::ENOENT),
        }
    }

    /// The path and place of inode `ino`.
    fn node(&self, ino: u64) -> Result<(PathBuf, At), Errno> {
        let (rel, at) = {
            let nodes = self.nodes();
            let n = nodes.get(ino).ok_or(Errno::ENOENT)?;
            (n.rel.clone(), n.at.clone())
        };
        match at {
            Some(at) => Ok((rel, at)),
            None => {
                let at = self.resolved(&rel)?;
                Ok((rel, at))
            }
        }
    }

    /// The directory `ino`: its path and place.
    fn dir_node(&self, ino: u64) -> Result<(PathBuf, At), Errno> {
        let (rel, at) = self.node(ino)?;
        if !at.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok((rel, at))
    }

    /// Whether `name` in directory `parent` is visible in the lower layers
    /// alone (so that removing it from the upper needs a whiteout).
    fn in_lower(&self, parent: &Path, pat: &At, name: &OsStr) -> Result<bool, Errno> {
        if self.upper.is_none() {
            return Ok(false);
        }
        let lowers: Vec<usize> = pat.dirs.iter().copied().filter(|&l| l != 0).collect();
        Ok(matches!(self.layers.lookup(parent, &lowers, name)?, Lookup::Found(..)))
    }

    /// The upper path of `rel` after copying it (and its parents) up.
    fn copy_up(&self, held: &Changing, rel: &Path) -> Result<PathBuf, Errno> {
        self.copy_up_with(held, rel, true)
    }

    /// As [`Self::copy_up`]; without `data` a file (not its parents) is
    /// copied up empty, for an open that truncates it.
    fn copy_up_with(&self, _held: &Changing, rel: &Path, data: bool) -> Result<PathBuf, Errno> {
        let up = self.upper()?;
        let mut prefix = PathBuf::new();
        for comp in rel.iter() {
            prefix.push(comp);
            let at = self.resolved(&prefix)?;
            if at.layer == 0 {
                continue;
            }
            let src = self.layers.path(at.layer, &prefix);
            let meta = src.symlink_metadata()?;
            up.copy_one(&src, &meta, &self.layers.path(0, &prefix), data || prefix != rel)?;
            let mut dirs = at.dirs;
            if !dirs.is_empty() {
                dirs.insert(0, 0);
            }
            self.nodes_mut().set(&prefix, At { layer: 0, dirs });
        }
        Ok(self.layers.path(0, rel))
    }

    /// Copies directory `rel` and everything visible below it up, so that
    /// the upper copy alone holds the whole tree.
    fn copy_up_tree(&self, held: &Changing, rel: &Path) -> Result<(), Errno> {
        self.copy_up(held, rel)?;
        let at = self.resolved(rel)?;
        for entry in self.layers.list(rel, &at.dirs)? {
            let child = rel.join(&entry.name);
            if entry.kind.is_dir() {
                self.copy_up_tree(held, &child)?;
            } else if entry.layer != 0 {
                self.copy_up(held, &child)?;
            }
        }
        Ok(())
    }

    fn wh_file(dir: &Path, name: &OsStr) -> PathBuf {
        let mut n = std::ffi::OsString::from(crate::layer::whiteout::WHITEOUT_PREFIX);
        n.push(name);
        dir.join(n)
    }

    /// Prepares `parent/name` for a new entry: the parent is copied up and a
    /// whiteout at the name removed. Returns the upper path and whether the
    /// name hides something in a lower layer (a new directory must then be
    /// opaque).
    fn make_room(&self, held: &Changing, parent: &Path, pat: &At, name: &OsStr) -> Result<(PathBuf, bool), Errno> {
        self.upper()?;
        let hidden_in_upper = match self.layers.lookup(parent, &pat.dirs, name)? {
            Lookup::Found(..) => return Err(Errno::EEXIST),
            Lookup::Hidden(0) => true,
            _ => false,
        };
        let hides_lower = hidden_in_upper && self.in_lower(parent, pat, name)?;
        let dir = self.copy_up(held, parent)?;
        let path = dir.join(name);
        if hidden_in_upper {
            if path.symlink_metadata().is_ok_and(|m| is_whiteout_meta(&m)) {
                std::fs::remove_file(&path)?;
            }
            match std::fs::remove_file(Self::wh_file(&dir, name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok((path, hides_lower))
    }

    /// Hides `name` in upper directory `dir` from the lower layers.
    fn whiteout(&self, dir: &Path, name: &OsStr) -> Result<(), Errno> {
        match self.whiteouts {
            WhiteoutFormat::Overlay => crate::layer::whiteout::make_whiteout(&dir.join(name)).map_err(Errno::from),
            _ => std::fs::File::create(Self::wh_file(dir, name)).map(drop).map_err(Errno::from),
        }
    }

    /// Marks upper directory `path` opaque: the lower layers' directories
    /// of the same name are hidden.
    fn make_opaque(&self, path: &Path) -> Result<(), Errno> {
        match self.whiteouts {
            WhiteoutFormat::Overlay => xattr::set(path, OVERLAY_OPAQUE_XATTR, b"y").map_err(Errno::from),
            _ => std::fs::File::create(path.join(crate::layer::whiteout::OPAQUE_MARKER))
                .map(drop)
                .map_err(Errno::from),
        }
    }

    /// Gives a new entry the caller's ownership.
    fn own(&self, path: &Path, ctx: Ctx) -> Result<(), Errno> {
        if ctx.uid == self.uid && ctx.gid == self.gid {
            return Ok(());
        }
        std::os::unix::fs::lchown(path, Some(ctx.uid), Some(ctx.gid)).map_err(Errno::from)
    }

    /// Records where `rel` (described by `meta`) is visible; returns its
    /// inode number.
    fn record(&self, rel: &Path, at: At, meta: &std::fs::Metadata) -> u64 {
        if at.layer == 0 && self.upper.is_some() && !at.is_dir() && meta.nlink() > 1 {
            self.nodes_mut().link(rel, at, (meta.dev(), meta.ino()), |p| self.upper_id(p))
        } else {
            self.nodes_mut().set(rel, at)
        }
    }

    /// The (device, inode) of `rel` in the upper layer.
    fn upper_id(&self, rel: &Path) -> Option<(u64, u64)> {
        self.layers.path(0, rel).symlink_metadata().ok().map(|m| (m.dev(), m.ino()))
    }

    /// Records a new upper entry and returns its attributes.
    fn new_entry(&self, rel: &Path, dir: bool, meta: &std::fs::Metadata) -> Attr {
        let at = At {
            layer: 0,
            dirs: if dir { vec![0] } else { Vec::new() },
        };
        attr(self.record(rel, at, meta), meta)
    }

    /// Makes a new entry `name` in directory `parent` with `make` (given
    /// the upper path) and replies with it.
    fn make_entry(&self, parent: u64, name: &OsStr, make: impl FnOnce(&Changing, &Path, bool) -> Result<(), Errno>) -> Result<Attr, Errno> {
        let held = self.change();
        let (dir, pat) = self.dir_node(parent)?;
        let (path, hides_lower) = self.make_room(&held, &dir, &pat, name)?;
        make(&held, &path, hides_lower)?;
        let meta = path.symlink_metadata()?;
        Ok(self.new_entry(&dir.join(name), meta.is_dir(), &meta))
    }

    /// unlink (`dir` false) or rmdir (`dir` true): the upper entry goes,
    /// and a whiteout hides what the lower layers hold under the name.
    fn remove(&self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let held = self.change();
        let (parent_rel, pat) = self.dir_node(parent)?;
        let rel = parent_rel.join(name);
        let Lookup::Found(at, _) = self.layers.lookup(&parent_rel, &pat.dirs, name)? else {
            return Err(Errno::ENOENT);
        };
        if at.is_dir() != dir {
            return Err(if dir { Errno::ENOTDIR } else { Errno::EISDIR });
        }
        if dir && !self.layers.list(&rel, &at.dirs)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        let in_lower = self.in_lower(&parent_rel, &pat, name)?;
        let upper_dir = self.copy_up(&held, &parent_rel)?;
        if at.layer == 0 {
            let target = upper_dir.join(name);
            // An upper directory holds at most whiteouts by now.
            if dir {
                std::fs::remove_dir_all(&target)?;
            } else {
                std::fs::remove_file(&target)?;
            }
        }
        if in_lower {
            self.whiteout(&upper_dir, name)?;
        }
        if dir {
            // Entries under it that nobody could see (0:0 devices made
            // through the mount read as whiteouts) go with it.
            self.nodes_mut().remove_tree(&rel);
        } else {
            self.nodes_mut().remove(&rel);
        }
        Ok(())
    }

    fn rename_entry(&self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr, flags: u32) -> Result<(), Errno> {
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(Errno::EINVAL);
        }
        let held = self.change();
        let (dir, pat) = self.dir_node(parent)?;
        let (newdir, npat) = self.dir_node(newparent)?;
        let (from, to) = (dir.join(name), newdir.join(newname));
        let Lookup::Found(src, _) = self.layers.lookup(&dir, &pat.dirs, name)? else {
            return Err(Errno::ENOENT);
        };
        if from == to {
            return Ok(());
        }
        if let Lookup::Found(dst, _) = self.layers.lookup(&newdir, &npat.dirs, newname)? {
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if dst.is_dir() != src.is_dir() {
                return Err(if dst.is_dir() { Errno::EISDIR } else { Errno::ENOTDIR });
            }
            if dst.is_dir() && !self.layers.list(&to, &dst.dirs)?.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
        }
        let from_in_lower = self.in_lower(&dir, &pat, name)?;
        let to_in_lower = self.in_lower(&newdir, &npat, newname)?;
        if src.dirs.iter().any(|&l| l != 0) {
            // No redirects: the upper copy must hold the whole tree.
            self.copy_up_tree(&held, &from)?;
        }
        let whole_tree = src.dirs.iter().any(|&l| l != 0);
        let src_path = self.copy_up(&held, &from)?;
        let dst_dir = self.copy_up(&held, &newdir)?;
        let dst_path = dst_dir.join(newname);
        if let Ok(m) = dst_path.symlink_metadata() {
            if m.is_dir() {
                std::fs::remove_dir_all(&dst_path)?;
            } else if is_whiteout_meta(&m) {
                std::fs::remove_file(&dst_path)?;
            }
        }
        match std::fs::remove_file(Self::wh_file(&dst_dir, newname)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        std::fs::rename(&src_path, &dst_path)?;
        if whole_tree {
            // Nothing lies below the moved tree any more: whiteouts there
            // would only confuse other readers of the upper.
            copy_up::purge_whiteouts(&dst_path)?;
        }
        // A directory landing where lower layers hold the name hides them.
        if src.is_dir() && to_in_lower {
            self.make_opaque(&dst_path)?;
        }
        if from_in_lower {
            self.whiteout(&self.layers.path(0, &dir), name)?;
        }
        let at = At {
            layer: 0,
            dirs: if src.is_dir() { vec![0] } else { Vec::new() },
        };
        self.nodes_mut().rename(&from, &to, at);
        Ok(())
    }

    /// The entries of directory `ino`, with `.` and `..`.
    fn listing(&self, ino: u64) -> Result<Vec<DirEntry>, Errno> {
        let (rel, at) = self.dir_node(ino)?;
        let entries = self.layers.list(&rel, &at.dirs)?;
        let mut nodes = self.nodes_mut();
        let parent_ino = rel.parent().map(|p| nodes.ino(p)).unwrap_or(nodes::ROOT);
        let dot = |ino, name: &str| DirEntry {
            ino,
            kind: libc::S_IFDIR,
            name: name.into(),
            layer: at.layer,
        };
        let mut all = vec![dot(ino, "."), dot(parent_ino, "..")];
        for e in entries {
            let child = rel.join(&e.name);
            // A listed non-directory's place is known from the listing.
            let child_ino = nodes.learn(&child, || {
                (!e.kind.is_dir()).then(|| At {
                    layer: e.layer,
                    dirs: Vec::new(),
                })
            });
            all.push(DirEntry {
                ino: child_ino,
                kind: mode_of(e.kind),
                name: e.name,
                layer: e.layer,
            });
        }
        Ok(all)
    }

    /// The listing of open directory `fh`, taken at its first read.
    fn dir_entries(&self, ino: u64, fh: u64) -> Result<Arc<Vec<DirEntry>>, Errno> {
        if let Some(Some(l)) = self.dirs.lock().unwrap_or_else(|p| p.into_inner()).get(&fh) {
            return Ok(l.clone());
        }
        let listing = Arc::new(self.listing(ino)?);
        let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        match dirs.get_mut(&fh) {
            Some(slot) => Ok(slot.get_or_insert(listing).clone()),
            None => Err(Errno::EBADF),
        }
    }

    /// Any open file of inode `ino`.
    fn open_file_of(&self, ino: u64) -> Option<Arc<std::fs::File>> {
        let files = self.files.read().unwrap_or_else(|p| p.into_inner());
        files.values().find(|h| h.ino == ino).map(|h| h.file.clone())
    }

    fn file(&self, fh: u64) -> Result<Arc<std::fs::File>, Errno> {
        let files = self.files.read().unwrap_or_else(|p| p.into_inner());
        files.get(&fh).map(|h| h.file.clone()).ok_or(Errno::EBADF)
    }

    /// Registers an open file, choosing how its I/O is served.
    fn serve(&self, ino: u64, file: std::fs::File, keep_cache: bool) -> Result<Opened, Errno> {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let keep = if keep_cache || self.writeback { fopen::KEEP_CACHE } else { 0 };
        let file = Arc::new(file);
        let insert = |served| {
            let h = Handle {
                file: file.clone(),
                ino,
                served,
            };
            self.files.write().unwrap_or_else(|p| p.into_inner()).insert(fh, h);
        };
        let plain = |flags| Opened { fh, flags, backing_id: 0 };
        let passed = |id: &BackingId| Opened {
            fh,
            flags: fopen::PASSTHROUGH,
            backing_id: id.id,
        };
        let Some(backing) = self.backing.as_ref().filter(|_| self.passthrough) else {
            insert(Served::Cached);
            return Ok(plain(keep));
        };
        let m = file.metadata()?;
        let identity = (m.dev(), m.ino());
        let mut modes = self.io_modes.lock().unwrap_or_else(|p| p.into_inner());
        match modes.get_mut(&ino) {
            Some(IoMode::Passthrough { id, file: f, opens }) if *f == identity => {
                *opens += 1;
                insert(Served::Passthrough);
                Ok(passed(id))
            }
            Some(IoMode::Passthrough { .. }) => {
                insert(Served::Direct);
                Ok(plain(fopen::DIRECT_IO))
            }
            Some(IoMode::Cached { opens }) => {
                *opens += 1;
                insert(Served::Cached);
                Ok(plain(keep))
            }
            None => match backing.open(&file) {
                Ok(id) => {
                    insert(Served::Passthrough);
                    let o = passed(&id);
                    modes.insert(
                        ino,
                        IoMode::Passthrough {
                            id,
                            file: identity,
                            opens: 1,
                        },
                    );
                    Ok(o)
                }
                Err(_) => {
                    // This file cannot be passed through: served here.
                    modes.insert(ino, IoMode::Cached { opens: 1 });
                    insert(Served::Cached);
                    Ok(plain(keep))
                }
            },
        }
    }

    /// Opens the upper file at `path` for writing with `flags`, creating
    /// it with mode `create` if given.
    fn open_for_write(&self, path: &Path, flags: i32, create: Option<u32>) -> std::io::Result<std::fs::File> {
        let mut passed = flags & (libc::O_APPEND | libc::O_SYNC | libc::O_DSYNC | libc::O_NOATIME);
        let mut read = flags & libc::O_ACCMODE != libc::O_WRONLY;
        if self.writeback {
            // The kernel appends and reads back partial pages itself.
            passed &= !libc::O_APPEND;
            read = true;
        }
        let open = |read: bool| {
            let mut o = std::fs::OpenOptions::new();
            o.read(read).write(true);
            if let Some(mode) = create {
                o.create_new(true);
                std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
            }
            std::os::unix::fs::OpenOptionsExt::custom_flags(&mut o, passed);
            o.open(path)
        };
        match open(read) {
            Err(e) if read && self.writeback && e.kind() == std::io::ErrorKind::PermissionDenied => open(false),
            r => r,
        }
    }
}

/// Applies `f` to a result of this module, giving the FUSE layer its errno.
fn fuse<T>(r: Result<T, Errno>) -> crate::fuse::Result<T> {
    r.map_err(|e| e.0)
}

/// A timestamp for utimensat.
fn timespec(t: Option<TimeOrNow>) -> nix::sys::time::TimeSpec {
    match t {
        None => nix::sys::time::TimeSpec::new(0, libc::UTIME_OMIT),
        Some(TimeOrNow::Now) => nix::sys::time::TimeSpec::new(0, libc::UTIME_NOW),
        Some(TimeOrNow::Time(s, ns)) => nix::sys::time::TimeSpec::new(s, ns as i64),
    }
}

impl Filesystem for UnionFs {
    fn init(&mut self, config: &mut InitConfig, backing: Backing) {
        let caps = config.offered;
        config.wanted |= (init::DO_READDIRPLUS
            | init::READDIRPLUS_AUTO
            | init::PARALLEL_DIROPS
            | init::CACHE_SYMLINKS
            | init::DIRECT_IO_ALLOW_MMAP
            // Set-id bits are cleared here, so the kernel need not ask for
            // security.capability before every write.
            | init::HANDLE_KILLPRIV_V2)
            & caps;
        if self.allow_passthrough && caps & init::PASSTHROUGH != 0 && may_pass_through() {
            config.max_stack_depth = if self.layers.dirs().iter().any(|d| stacked(d)) { 2 } else { 1 };
            config.wanted |= init::PASSTHROUGH;
            self.passthrough = true;
        }
        if !self.passthrough && self.upper.is_some() && caps & init::WRITEBACK_CACHE != 0 {
            config.wanted |= init::WRITEBACK_CACHE;
            self.writeback = true;
        }
        self.backing = Some(backing);
    }

    fn lookup(&self, _ctx: Ctx, parent: u64, name: &OsStr) -> crate::fuse::Result<Entry> {
        fuse((|| {
            let (dir, pat) = self.dir_node(parent)?;
            Ok(match self.layers.lookup(&dir, &pat.dirs, name)? {
                Lookup::Found(at, meta) => entry(attr(self.record(&dir.join(name), at, &meta), &meta)),
                // The kernel remembers the name is missing.
                _ => entry(Attr::default()),
            })
        })())
    }

    fn getattr(&self, _ctx: Ctx, ino: u64, fh: Option<u64>) -> crate::fuse::Result<(Attr, Duration)> {
        let meta = match fh.map(|fh| self.file(fh)) {
            Some(Ok(f)) => f.metadata().map_err(Errno::from),
            _ => match self.node(ino) {
                Ok((rel, at)) => self.layers.path(at.layer, &rel).symlink_metadata().map_err(Errno::from),
                // Unlinked while open (fstat does not name the handle).
                Err(e) => self.open_file_of(ino).ok_or(e).and_then(|f| f.metadata().map_err(Errno::from)),
            },
        };
        fuse(meta.map(|m| (attr(ino, &m), TTL)))
    }

    fn readlink(&self, _ctx: Ctx, ino: u64) -> crate::fuse::Result<Vec<u8>> {
        fuse(self.node(ino).and_then(|(rel, at)| {
            let target = std::fs::read_link(self.layers.path(at.layer, &rel))?;
            Ok(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec())
        }))
    }

    fn open(&self, ctx: Ctx, ino: u64, flags: i32) -> crate::fuse::Result<Opened> {
        let writing = flags & (libc::O_WRONLY | libc::O_RDWR | libc::O_TRUNC | libc::O_APPEND) != 0;
        fuse(self.node(ino).and_then(|(rel, at)| {
            let (file, keep) = if writing {
                let held = self.change();
                let path = self.copy_up_with(&held, &rel, flags & libc::O_TRUNC == 0)?;
                let file = self.open_for_write(&path, flags, None)?;
                if flags & libc::O_TRUNC != 0 {
                    file.set_len(0)?;
                    if ctx.uid != 0 {
                        kill_set_id(&file)?;
                    }
                }
                (file, false)
            } else {
                let file = std::fs::File::open(self.layers.path(at.layer, &rel))?;
                // A lower file changes only by a copy-up, which this mount makes.
                (file, self.upper.is_none() || at.layer != 0)
            };
            self.serve(ino, file, keep)
        }))
    }

    fn create(&self, ctx: Ctx, parent: u64, name: &OsStr, mode: u32, umask: u32, flags: i32) -> crate::fuse::Result<(Entry, Opened)> {
        let mut file = None;
        let made = self.make_entry(parent, name, |_, path, _| {
            let f = self.open_for_write(path, flags, Some(mode & !umask & 0o7777))?;
            self.own(path, ctx)?;
            file = Some(f);
            Ok(())
        });
        fuse(made.and_then(|a| {
            let opened = self.serve(a.ino, file.ok_or(Errno::EIO)?, false)?;
            Ok((entry(a), opened))
        }))
    }

    fn mkdir(&self, ctx: Ctx, parent: u64, name: &OsStr, mode: u32, umask: u32) -> crate::fuse::Result<Entry> {
        let made = self.make_entry(parent, name, |_, path, hides_lower| {
            let perm = std::os::unix::fs::PermissionsExt::from_mode(mode & !umask & 0o7777);
            if !hides_lower {
                // Nothing below to hide: made in place, as overlayfs does.
                std::fs::create_dir(path)?;
                std::fs::set_permissions(path, perm)?;
                return self.own(path, ctx);
            }
            let up = self.upper()?;
            // Built in the work directory, marked opaque there, then moved in.
            let tmp = up.work.join(format!(
                "mkdir-{}-{}",
                std::process::id(),
                self.next_fh.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir(&tmp)?;
            let r = (|| {
                std::fs::set_permissions(&tmp, perm)?;
                self.own(&tmp, ctx)?;
                self.make_opaque(&tmp)?;
                std::fs::rename(&tmp, path).map_err(Errno::from)
            })();
            if r.is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            r
        });
        fuse(made.map(entry))
    }

    fn symlink(&self, ctx: Ctx, parent: u64, name: &OsStr, target: &Path) -> crate::fuse::Result<Entry> {
        let made = self.make_entry(parent, name, |_, path, _| {
            std::os::unix::fs::symlink(target, path)?;
            self.own(path, ctx)
        });
        fuse(made.map(entry))
    }

    fn mknod(&self, ctx: Ctx, parent: u64, name: &OsStr, mode: u32, umask: u32, rdev: u32) -> crate::fuse::Result<Entry> {
        let made = self.make_entry(parent, name, |_, path, _| {
            let kind = nix::sys::stat::SFlag::from_bits_truncate(mode & libc::S_IFMT);
            let perm = nix::sys::stat::Mode::from_bits_truncate(mode & !umask & 0o7777);
            nix::sys::stat::mknod(path, kind, perm, rdev as libc::dev_t)?;
            self.own(path, ctx)
        });
        fuse(made.map(entry))
    }

    fn link(&self, _ctx: Ctx, ino: u64, newparent: u64, newname: &OsStr) -> crate::fuse::Result<Entry> {
        let made = self.node(ino).and_then(|(src, _)| {
            self.make_entry(newparent, newname, |held, path, _| {
                let from = self.copy_up(held, &src)?;
                std::fs::hard_link(&from, path)?;
                // Both names are now one upper file: one inode.
                let m = from.symlink_metadata()?;
                let at = At {
                    layer: 0,
                    dirs: Vec::new(),
                };
                self.nodes_mut().link(&src, at, (m.dev(), m.ino()), |p| self.upper_id(p));
                Ok(())
            })
        });
        fuse(made.map(entry))
    }

    fn setxattr(&self, _ctx: Ctx, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> crate::fuse::Result<()> {
        if name.to_string_lossy().starts_with(OVERLAY_XATTR_PREFIX) {
            return Err(libc::EPERM);
        }
        fuse(self.node(ino).and_then(|(rel, _)| {
            let held = self.change();
            let p = self.copy_up(&held, &rel)?;
            let exists = xattr::get(&p, name)?.is_some();
            if flags & libc::XATTR_CREATE != 0 && exists {
                return Err(Errno::EEXIST);
            }
            if flags & libc::XATTR_REPLACE != 0 && !exists {
                return Err(Errno::NO_XATTR);
            }
            xattr::set(&p, name, value).map_err(Errno::from)
        }))
    }

    fn removexattr(&self, _ctx: Ctx, ino: u64, name: &OsStr) -> crate::fuse::Result<()> {
        if name.to_string_lossy().starts_with(OVERLAY_XATTR_PREFIX) {
            return Err(libc::EPERM);
        }
        fuse(self.node(ino).and_then(|(rel, _)| {
            let held = self.change();
            let p = self.copy_up(&held, &rel)?;
            xattr::remove(&p, name).map_err(Errno::from)
        }))
    }

    fn write(&self, _ctx: Ctx, _ino: u64, fh: u64, offset: u64, data: &[u8], write_flags: u32) -> crate::fuse::Result<u32> {
        fuse(self.file(fh).and_then(|f| {
            if write_flags & crate::fuse::abi::WRITE_KILL_SUIDGID != 0 {
                kill_set_id(&f)?;
            }
            f.write_all_at(data, offset)?;
            Ok(data.len() as u32)
        }))
    }

    fn read(&self, _ctx: Ctx, _ino: u64, fh: u64, offset: u64, size: u32) -> crate::fuse::Result<Vec<u8>> {
        let file = fuse(self.file(fh))?;
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(crate::fuse::errno(&e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    fn fsync(&self, _ctx: Ctx, _ino: u64, fh: u64, datasync: bool) -> crate::fuse::Result<()> {
        if self.volatile {
            return Ok(());
        }
        fuse(
            self.file(fh)
                .and_then(|f| if datasync { f.sync_data() } else { f.sync_all() }.map_err(Errno::from)),
        )
    }

    fn fallocate(&self, _ctx: Ctx, _ino: u64, fh: u64, offset: u64, length: u64, mode: i32) -> crate::fuse::Result<()> {
        fuse(self.file(fh).and_then(|f| {
            // SAFETY: fallocate on an fd we hold open; integer arguments only.
            let r = unsafe {
                libc::fallocate(
                    std::os::fd::AsRawFd::as_raw_fd(&*f),
                    mode,
                    offset as libc::off_t,
                    length as libc::off_t,
                )
            };
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error().into())
            }
        }))
    }

    fn release(&self, _ctx: Ctx, _ino: u64, fh: u64) -> crate::fuse::Result<()> {
        let handle = self.files.write().unwrap_or_else(|p| p.into_inner()).remove(&fh);
        if let Some(h) = handle.filter(|h| h.served != Served::Direct) {
            let mut modes = self.io_modes.lock().unwrap_or_else(|p| p.into_inner());
            let last = match modes.get_mut(&h.ino) {
                Some(IoMode::Passthrough { opens, .. }) | Some(IoMode::Cached { opens }) => {
                    *opens -= 1;
                    *opens == 0
                }
                None => false,
            };
            if last {
                // Dropping the backing id closes it in the kernel.
                modes.remove(&h.ino);
            }
        }
        Ok(())
    }

    fn unlink(&self, _ctx: Ctx, parent: u64, name: &OsStr) -> crate::fuse::Result<()> {
        fuse(self.remove(parent, name, false))
    }

    fn rmdir(&self, _ctx: Ctx, parent: u64, name: &OsStr) -> crate::fuse::Result<()> {
        fuse(self.remove(parent, name, true))
    }

    fn rename(&self, _ctx: Ctx, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr, flags: u32) -> crate::fuse::Result<()> {
        fuse(self.rename_entry(parent, name, newparent, newname, flags))
    }

    fn setattr(&self, ctx: Ctx, ino: u64, set: SetAttr) -> crate::fuse::Result<(Attr, Duration)> {
        fuse((|| {
            let (rel, _) = self.node(ino)?;
            let held = self.change();
            let path = self.copy_up(&held, &rel)?;
            if set.uid.is_some() || set.gid.is_some() {
                std::os::unix::fs::lchown(&path, set.uid, set.gid)?;
            }
            if let Some(m) = set.mode {
                std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(m & 0o7777))?;
            }
            if let Some(s) = set.size {
                // An open file may be unlinked already; its handle still works.
                let f = match set.fh.map(|fh| self.file(fh)) {
                    Some(Ok(f)) => f,
                    _ => Arc::new(open_regular(&path, true)?),
                };
                f.set_len(s)?;
                // The kernel says whether the caller lacks CAP_FSETID.
                if set.kill_suidgid && set.mode.is_none() {
                    kill_set_id(&f)?;
                }
            }
            // A chown clears set-id bits by itself (lchown above). A setattr
            // naming nothing is the kernel asking for them to go after a
            // passed-through write by an unprivileged caller.
            let bare = set.mode.is_none()
                && set.uid.is_none()
                && set.gid.is_none()
                && set.size.is_none()
                && set.atime.is_none()
                && set.mtime.is_none();
            if bare && ctx.uid != 0 && path.symlink_metadata()?.is_file() {
                kill_set_id(&open_regular(&path, false)?)?;
            }
            if set.atime.is_some() || set.mtime.is_some() {
                nix::sys::stat::utimensat(
                    None,
                    &path,
                    &timespec(set.atime),
                    &timespec(set.mtime),
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )?;
            }
            Ok((attr(ino, &path.symlink_metadata()?), TTL))
        })())
    }

    fn opendir(&self, _ctx: Ctx, ino: u64, _flags: i32) -> crate::fuse::Result<Opened> {
        fuse(self.dir_node(ino))?;
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.dirs.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, None);
        // The kernel may keep the listing: every change to it passes
        // through this mount and drops the kernel's copy.
        Ok(Opened {
            fh,
            flags: fopen::CACHE_DIR | fopen::KEEP_CACHE,
            backing_id: 0,
        })
    }

    fn readdir(&self, _ctx: Ctx, ino: u64, fh: u64, offset: u64, buf: &mut DirBuf) -> crate::fuse::Result<()> {
        // The listing is taken once per open: entries removed while a
        // reader walks it (rm -rf) must not shift the offsets it resumes at.
        let entries = fuse(self.dir_entries(ino, fh))?;
        if !buf.plus() {
            for (i, e) in entries.iter().enumerate().skip(offset as usize) {
                if !buf.add(e.ino, (i + 1) as u64, e.kind, &e.name) {
                    break;
                }
            }
            return Ok(());
        }
        let (rel, _) = fuse(self.node(ino))?;
        for (i, e) in entries.iter().enumerate().skip(offset as usize) {
            let path = match i {
                0 => self.layers.path(e.layer, &rel),
                1 => match rel.parent() {
                    Some(p) => self.layers.path(e.layer, p),
                    None => self.layers.path(e.layer, &rel),
                },
                _ => self.layers.path(e.layer, &rel.join(&e.name)),
            };
            // An entry gone since the listing was taken is skipped.
            let Ok(meta) = path.symlink_metadata() else { continue };
            if !buf.add_plus(&attr(e.ino, &meta), TTL, (i + 1) as u64, &e.name) {
                break;
            }
        }
        Ok(())
    }

    fn releasedir(&self, _ctx: Ctx, _ino: u64, fh: u64) -> crate::fuse::Result<()> {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh);
        Ok(())
    }

    fn statfs(&self, _ctx: Ctx, _ino: u64) -> crate::fuse::Result<Statfs> {
        let s = nix::sys::statvfs::statvfs(&self.layers.dirs()[0]).map_err(|e| e as i32)?;
        Ok(Statfs {
            blocks: s.blocks(),
            bfree: s.blocks_free(),
            bavail: s.blocks_available(),
            files: s.files(),
            ffree: s.files_free(),
            bsize: s.block_size() as u32,
            namelen: s.name_max() as u32,
            frsize: s.fragment_size() as u32,
        })
    }

    fn getxattr(&self, _ctx: Ctx, ino: u64, name: &OsStr, size: u32) -> crate::fuse::Result<Xattr> {
        if name.to_string_lossy().starts_with(OVERLAY_XATTR_PREFIX) {
            return Err(libc::ENODATA);
        }
        let v = fuse(
            self.node(ino)
                .and_then(|(rel, at)| xattr::get(self.layers.path(at.layer, &rel), name).map_err(Errno::from)),
        )?;
        match v {
            Some(v) if size == 0 => Ok(Xattr::Size(v.len() as u32)),
            Some(v) if v.len() <= size as usize => Ok(Xattr::Data(v)),
            Some(_) => Err(libc::ERANGE),
            None => Err(libc::ENODATA),
        }
    }

    fn listxattr(&self, _ctx: Ctx, ino: u64, size: u32) -> crate::fuse::Result<Xattr> {
        let names = fuse(
            self.node(ino)
                .and_then(|(rel, at)| xattr::list(self.layers.path(at.layer, &rel)).map_err(Errno::from)),
        )?;
        let mut data = Vec::new();
        for n in names.filter(|n| !n.to_string_lossy().starts_with(OVERLAY_XATTR_PREFIX)) {
            data.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(n.as_os_str()));
            data.push(0);
        }
        if size == 0 {
            Ok(Xattr::Size(data.len() as u32))
        } else if data.len() <= size as usize {
            Ok(Xattr::Data(data))
        } else {
            Err(libc::ERANGE)
        }
    }
}
