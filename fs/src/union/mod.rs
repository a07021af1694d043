//! berth-unionfs: a FUSE union filesystem over image layers, in kernel
//! overlayfs' on-disk format.
//!
//! It serves the merged view of its layers (lookup through the layers,
//! merged readdir hiding whiteouts, reads, symlinks, xattrs, statfs) with
//! inode numbers stable for the life of the mount. With an upper
//! directory, changes go there: files and directories are copied up first
//! ([`copy_up`]), deletions leave whiteouts (0:0 character devices, or
//! `.wh.` files where device nodes cannot be made), a directory made over a
//! deleted one is opaque. Renaming a directory that lives in a lower layer
//! fails with EXDEV, as kernel overlayfs does without redirect_dir; `mv`
//! then copies. Without an upper every change is refused with EROFS.

pub mod copy_up;
pub mod layers;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};

use crate::layer::whiteout::OVERLAY_XATTR_PREFIX;
use layers::Layers;

/// How long the kernel may cache entries and attributes: the layers of a
/// read-only union do not change under it.
const TTL: Duration = Duration::from_secs(3600);

/// A directory entry as readdir hands it out: inode, type, name.
type DirEntry = (u64, FileType, std::ffi::OsString);

/// Inode numbers by path, stable for the life of the mount.
#[derive(Default)]
struct Inodes {
    by_path: HashMap<PathBuf, u64>,
    paths: HashMap<u64, PathBuf>,
    next: u64,
}

impl Inodes {
    fn ino(&mut self, rel: &Path) -> u64 {
        if let Some(i) = self.by_path.get(rel) {
            return *i;
        }
        self.next += 1;
        let ino = if rel.as_os_str().is_empty() {
            INodeNo::ROOT.0
        } else {
            self.next + 1
        };
        self.by_path.insert(rel.to_path_buf(), ino);
        self.paths.insert(ino, rel.to_path_buf());
        ino
    }
}

/// Whether `m` is an overlayfs whiteout.
pub(crate) fn is_whiteout_meta(m: &std::fs::Metadata) -> bool {
    crate::layer::whiteout::is_whiteout(m)
}

/// The union filesystem.
pub struct UnionFs {
    layers: Layers,
    /// The same stack without the upper: what a deletion must hide.
    lowers: Layers,
    upper: Option<copy_up::Upper>,
    whiteouts: crate::layer::whiteout::WhiteoutFormat,
    inodes: RwLock<Inodes>,
    files: Mutex<HashMap<u64, std::fs::File>>,
    /// Directory listings by handle, taken at opendir.
    dirs: Mutex<HashMap<u64, Vec<DirEntry>>>,
    next_fh: std::sync::atomic::AtomicU64,
}

fn kind_of(m: &std::fs::Metadata) -> FileType {
    FileType::from_std(m.file_type()).unwrap_or(FileType::RegularFile)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn attr(ino: u64, m: &std::fs::Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: m.size(),
        blocks: m.blocks(),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: time(m.mtime(), m.mtime_nsec()),
        kind: kind_of(m),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        flags: 0,
    }
}

impl UnionFs {
    /// A read-only union of `lowers`, topmost first.
    pub fn new(lowers: Vec<PathBuf>) -> UnionFs {
        Self::with_upper(None, lowers)
    }

    /// A union with `upper` (the upper directory and its work directory)
    /// over `lowers`, topmost first.
    pub fn with_upper(upper: Option<(PathBuf, PathBuf)>, lowers: Vec<PathBuf>) -> UnionFs {
        let mut inodes = Inodes::default();
        inodes.ino(Path::new(""));
        let mut dirs = Vec::new();
        let whiteouts = match &upper {
            Some((u, _)) => crate::layer::whiteout::WhiteoutFormat::detect(u),
            None => crate::layer::whiteout::WhiteoutFormat::Files,
        };
        if let Some((u, _)) = &upper {
            dirs.push(u.clone());
        }
        dirs.extend(lowers);
        let lower_dirs = if upper.is_some() { dirs[1..].to_vec() } else { dirs.clone() };
        UnionFs {
            lowers: Layers::new(lower_dirs),
            layers: Layers::new(dirs),
            upper: upper.map(|(u, w)| copy_up::Upper::new(u, w)),
            whiteouts,
            inodes: RwLock::new(inodes),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: 1.into(),
        }
    }

    /// Whether `rel` is visible in the lower layers alone.
    fn in_lower(&self, rel: &Path) -> bool {
        self.upper.is_some() && matches!(self.lowers.find(rel), Ok(Some(_)))
    }

    fn upper(&self) -> Result<&copy_up::Upper, Errno> {
        self.upper.as_ref().ok_or(Errno::EROFS)
    }

    /// The upper path of `rel` after copying it (and its parents) up.
    fn copied_up(&self, rel: &Path) -> Result<PathBuf, Errno> {
        let up = self.upper()?;
        up.copy_up(&self.layers, rel).map_err(Errno::from)?;
        Ok(up.dir.join(rel))
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
    fn make_room(&self, parent: &Path, name: &OsStr) -> Result<(PathBuf, bool), Errno> {
        let rel = parent.join(name);
        if self.layers.find(&rel).map_err(Errno::from)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let dir = self.copied_up(parent)?;
        let path = dir.join(name);
        if path.symlink_metadata().is_ok_and(|m| is_whiteout_meta(&m)) {
            std::fs::remove_file(&path).map_err(Errno::from)?;
        }
        let wh = Self::wh_file(&dir, name);
        if wh.symlink_metadata().is_ok() {
            std::fs::remove_file(&wh).map_err(Errno::from)?;
        }
        Ok((path, self.in_lower(&rel)))
    }

    /// Hides `rel` (already gone from the upper) from the lower layers.
    fn whiteout(&self, rel: &Path) -> Result<(), Errno> {
        let up = self.upper()?;
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(Errno::EINVAL);
        };
        if !self.in_lower(rel) {
            return Ok(());
        }
        let dir = up.dir.join(parent);
        match self.whiteouts {
            crate::layer::whiteout::WhiteoutFormat::Overlay => crate::layer::whiteout::make_whiteout(&dir.join(name)).map_err(Errno::from),
            _ => std::fs::File::create(Self::wh_file(&dir, name)).map(drop).map_err(Errno::from),
        }
    }

    /// Gives a new entry the caller's ownership.
    fn own(path: &Path, req: &Request) -> Result<(), Errno> {
        std::os::unix::fs::lchown(path, Some(req.uid()), Some(req.gid())).map_err(Errno::from)
    }

    fn entry_for(&self, rel: &Path) -> Result<FileAttr, Errno> {
        let f = self.found(rel)?;
        Ok(attr(self.ino_of(rel), &f.meta))
    }

    /// Moves the inode numbers of `from` and everything below it to `to`.
    fn renamed(&self, from: &Path, to: &Path) {
        let mut inodes = self.inodes.write().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = inodes.by_path.remove(to) {
            inodes.paths.remove(&old);
        }
        let moved: Vec<(PathBuf, u64)> = inodes
            .by_path
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, ino) in moved {
            // Joining an empty remainder would add a trailing slash.
            let rest = p.strip_prefix(from).unwrap_or(Path::new(""));
            let new = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            inodes.by_path.remove(&p);
            inodes.by_path.insert(new.clone(), ino);
            inodes.paths.insert(ino, new);
        }
    }

    /// unlink (`dir` false) or rmdir (`dir` true): the upper entry goes,
    /// and a whiteout hides what the lower layers hold under the name.
    fn remove(&self, parent: INodeNo, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let parent_rel = self.path_of(parent).ok_or(Errno::ENOENT)?;
        let rel = parent_rel.join(name);
        let is_dir = self.found(&rel)?.meta.is_dir();
        if is_dir != dir {
            return Err(if dir { Errno::ENOTDIR } else { Errno::EISDIR });
        }
        if dir && !self.layers.list(&rel).map_err(Errno::from)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        let target = self.copied_up(&parent_rel)?.join(name);
        // An upper directory holds at most whiteouts by now.
        let removed = if dir {
            std::fs::remove_dir_all(&target)
        } else {
            std::fs::remove_file(&target)
        };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        self.whiteout(&rel)?;
        self.forget_path(&rel);
        Ok(())
    }

    /// The entries of directory `ino`, with `.` and `..`.
    fn listing(&self, ino: INodeNo) -> Result<Vec<DirEntry>, Errno> {
        let rel = self.path_of(ino).ok_or(Errno::ENOENT)?;
        let entries = self.layers.list(&rel).map_err(Errno::from)?;
        let parent_ino = rel.parent().map(|p| self.ino_of(p)).unwrap_or(INodeNo::ROOT.0);
        let mut all: Vec<DirEntry> = vec![
            (ino.0, FileType::Directory, ".".into()),
            (parent_ino, FileType::Directory, "..".into()),
        ];
        for (name, layer) in entries {
            let child = rel.join(&name);
            let kind = self.layers.dirs()[layer]
                .join(&child)
                .symlink_metadata()
                .map(|m| kind_of(&m))
                .unwrap_or(FileType::RegularFile);
            all.push((self.ino_of(&child), kind, name));
        }
        Ok(all)
    }

    fn forget_path(&self, rel: &Path) {
        let mut inodes = self.inodes.write().unwrap_or_else(|p| p.into_inner());
        if let Some(ino) = inodes.by_path.remove(rel) {
            inodes.paths.remove(&ino);
        }
    }

    fn path_of(&self, ino: INodeNo) -> Option<PathBuf> {
        self.inodes.read().unwrap_or_else(|p| p.into_inner()).paths.get(&ino.0).cloned()
    }

    fn ino_of(&self, rel: &Path) -> u64 {
        let known = self.inodes.read().unwrap_or_else(|p| p.into_inner()).by_path.get(rel).copied();
        known.unwrap_or_else(|| self.inodes.write().unwrap_or_else(|p| p.into_inner()).ino(rel))
    }

    fn found(&self, rel: &Path) -> Result<layers::Found, Errno> {
        match self.layers.find(rel) {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(Errno::ENOENT),
            Err(e) => Err(e.into()),
        }
    }
}

impl Filesystem for UnionFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(dir) = self.path_of(parent) else {
            return reply.error(Errno::ENOENT);
        };
        let rel = dir.join(name);
        match self.found(&rel) {
            Ok(f) => reply.entry(&TTL, &attr(self.ino_of(&rel), &f.meta), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let Some(rel) = self.path_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match self.found(&rel) {
            Ok(f) => reply.attr(&TTL, &attr(ino.0, &f.meta)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let Some(rel) = self.path_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match self.found(&rel).and_then(|f| std::fs::read_link(&f.path).map_err(Errno::from)) {
            Ok(target) => reply.data(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str())),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let Some(rel) = self.path_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let writing = flags.0 & (libc::O_WRONLY | libc::O_RDWR | libc::O_TRUNC | libc::O_APPEND) != 0;
        let opened = if writing {
            self.copied_up(&rel).and_then(|p| {
                let mut o = std::fs::OpenOptions::new();
                o.read(flags.0 & libc::O_ACCMODE != libc::O_WRONLY)
                    .write(true)
                    .truncate(flags.0 & libc::O_TRUNC != 0);
                std::os::unix::fs::OpenOptionsExt::custom_flags(&mut o, flags.0 & (libc::O_APPEND | libc::O_SYNC | libc::O_DSYNC));
                o.open(p).map_err(Errno::from)
            })
        } else {
            self.found(&rel).and_then(|f| std::fs::File::open(&f.path).map_err(Errno::from))
        };
        match opened {
            Ok(file) => {
                let fh = self.next_fh.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.files.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, file);
                // Without an upper nothing changes: the page cache may keep files.
                let keep = if self.upper.is_none() {
                    FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                };
                reply.opened(FileHandle(fh), keep);
            }
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: fuser::ReplyWrite,
    ) {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = files.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        match file.write_all_at(data, offset) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e.into()),
        }
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = files.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        match if datasync { file.sync_data() } else { file.sync_all() } {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }

    fn create(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, flags: i32, reply: fuser::ReplyCreate) {
        let Some(dir) = self.path_of(parent) else {
            return reply.error(Errno::ENOENT);
        };
        let rel = dir.join(name);
        let made = self.make_room(&dir, name).and_then(|(path, _)| {
            let mut o = std::fs::OpenOptions::new();
            o.read(flags & libc::O_ACCMODE != libc::O_WRONLY).write(true).create_new(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode & !umask & 0o7777);
            let f = o.open(&path).map_err(Errno::from)?;
            Self::own(&path, req)?;
            Ok(f)
        });
        match made.and_then(|f| Ok((f, self.entry_for(&rel)?))) {
            Ok((file, a)) => {
                let fh = self.next_fh.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.files.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, file);
                reply.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let Some(dir) = self.path_of(parent) else {
            return reply.error(Errno::ENOENT);
        };
        let rel = dir.join(name);
        let made = self.make_room(&dir, name).and_then(|(path, hides_lower)| {
            let up = self.upper()?;
            // Built in the work directory, marked opaque there, then moved in.
            let tmp = up.work.join(format!(
                "mkdir-{}-{}",
                std::process::id(),
                self.next_fh.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            std::fs::create_dir(&tmp).map_err(Errno::from)?;
            let r = (|| {
                std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode & !umask & 0o7777))
                    .map_err(Errno::from)?;
                Self::own(&tmp, req)?;
                if hides_lower {
                    match self.whiteouts {
                        crate::layer::whiteout::WhiteoutFormat::Overlay => {
                            xattr::set(&tmp, crate::layer::whiteout::OVERLAY_OPAQUE_XATTR, b"y").map_err(Errno::from)?
                        }
                        _ => drop(std::fs::File::create(tmp.join(crate::layer::whiteout::OPAQUE_MARKER)).map_err(Errno::from)?),
                    }
                }
                std::fs::rename(&tmp, &path).map_err(Errno::from)
            })();
            if r.is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            r
        });
        match made.and_then(|_| self.entry_for(&rel)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let Some(dir) = self.path_of(parent) else {
            return reply.error(Errno::ENOENT);
        };
        let rel = dir.join(link_name);
        let made = self.make_room(&dir, link_name).and_then(|(path, _)| {
            std::os::unix::fs::symlink(target, &path).map_err(Errno::from)?;
            Self::own(&path, req)
        });
        match made.and_then(|_| self.entry_for(&rel)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, rdev: u32, reply: ReplyEntry) {
        let Some(dir) = self.path_of(parent) else {
            return reply.error(Errno::ENOENT);
        };
        let rel = dir.join(name);
        let made = self.make_room(&dir, name).and_then(|(path, _)| {
            let kind = nix::sys::stat::SFlag::from_bits_truncate(mode & libc::S_IFMT);
            let perm = nix::sys::stat::Mode::from_bits_truncate(mode & !umask & 0o7777);
            nix::sys::stat::mknod(&path, kind, perm, rdev as libc::dev_t).map_err(|e| Errno::from_i32(e as i32))?;
            Self::own(&path, req)
        });
        match made.and_then(|_| self.entry_for(&rel)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let (Some(src), Some(dir)) = (self.path_of(ino), self.path_of(newparent)) else {
            return reply.error(Errno::ENOENT);
        };
        let rel = dir.join(newname);
        let made = self.copied_up(&src).and_then(|from| {
            let (path, _) = self.make_room(&dir, newname)?;
            std::fs::hard_link(from, path).map_err(Errno::from)
        });
        match made.and_then(|_| self.entry_for(&rel)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, value: &[u8], flags: i32, _position: u32, reply: ReplyEmpty) {
        if name.to_string_lossy().starts_with(OVERLAY_XATTR_PREFIX) {
            return reply.error(Errno::EPERM);
        }
        let Some(rel) = self.path_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let r = self.copied_up(&rel).and_then(|p| {
            let exists = xattr::get(&p, name).map_err(Errno::from)?.is_some();
            if flags & libc::XATTR_CREATE != 0 && exists {
                return Err(Errno::EEXIST);
            }
            if flags & libc::XATTR_REPLACE != 0 && !exists {
                return Err(Errno::NO_XATTR);
            }
            xattr::set(&p, name, value).map_err(Errno::from)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if name.to_string_lossy().starts_with(OVERLAY_XATTR_PREFIX) {
            return reply.error(Errno::EPERM);
        }
        let Some(rel) = self.path_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match self.copied_up(&rel).and_then(|p| xattr::remove(&p, name).map_err(Errno::from)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, length: u64, mode: i32, reply: ReplyEmpty) {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = files.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        // SAFETY: fallocate on an fd we hold open; integer arguments only.
        let r = unsafe {
            libc::fallocate(
                std::os::fd::AsRawFd::as_raw_fd(file),
                mode,
                offset as libc::off_t,
                length as libc::off_t,
            )
        };
        if r == 0 {
            reply.ok()
        } else {
            reply.error(std::io::Error::last_os_error().into())
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove(parent, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove(parent, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (Some(dir), Some(newdir)) = (self.path_of(parent), self.path_of(newparent)) else {
            return reply.error(Errno::ENOENT);
        };
        let (from, to) = (dir.join(name), newdir.join(newname));
        let r = (|| {
            if flags.bits() != 0 {
                return Err(Errno::EINVAL);
            }
            let src = self.found(&from)?;
            if src.meta.is_dir() && self.in_lower(&from) {
                // No redirects: a merged or lower directory cannot move.
                return Err(Errno::EXDEV);
            }
            if let Some(dst) = self.layers.find(&to).map_err(Errno::from)? {
                if dst.meta.is_dir() != src.meta.is_dir() {
                    return Err(if dst.meta.is_dir() { Errno::EISDIR } else { Errno::ENOTDIR });
                }
                if dst.meta.is_dir() && !self.layers.list(&to).map_err(Errno::from)?.is_empty() {
                    return Err(Errno::ENOTEMPTY);
                }
            }
            let src_path = self.copied_up(&from)?;
            let dst_dir = self.copied_up(&newdir)?;
            let dst_path = dst_dir.join(newname);
            if dst_path.symlink_metadata().is_ok_and(|m| is_whiteout_meta(&m) || m.is_dir()) {
                let _ = std::fs::remove_dir_all(&dst_path).or_else(|_| std::fs::remove_file(&dst_path));
            }
            let _ = std::fs::remove_file(Self::wh_file(&dst_dir, newname));
            std::fs::rename(&src_path, &dst_path).map_err(Errno::from)?;
            // A directory landing where lower layers hold the name must hide them.
            if src.meta.is_dir() && self.in_lower(&to) {
                xattr::set(&dst_path, crate::layer::whiteout::OVERLAY_OPAQUE_XATTR, b"y").map_err(Errno::from)?;
            }
            self.whiteout(&from)
        })();
        match r {
            Ok(()) => {
                self.renamed(&from, &to);
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let Some(rel) = self.path_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let r = (|| {
            let path = self.copied_up(&rel)?;
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(&path, uid, gid).map_err(Errno::from)?;
            }
            if let Some(m) = mode {
                std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(m & 0o7777)).map_err(Errno::from)?;
            }
            if let Some(s) = size {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(s))
                    .map_err(Errno::from)?;
            }
            if atime.is_some() || mtime.is_some() {
                let ts = |t: Option<fuser::TimeOrNow>| match t {
                    None => nix::sys::time::TimeSpec::new(0, libc::UTIME_OMIT),
                    Some(fuser::TimeOrNow::Now) => nix::sys::time::TimeSpec::new(0, libc::UTIME_NOW),
                    Some(fuser::TimeOrNow::SpecificTime(t)) => {
                        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                        nix::sys::time::TimeSpec::new(d.as_secs() as i64, d.subsec_nanos() as i64)
                    }
                };
                nix::sys::stat::utimensat(None, &path, &ts(atime), &ts(mtime), nix::sys::stat::UtimensatFlags::NoFollowSymlink)
                    .map_err(|e| Errno::from_i32(e as i32))?;
            }
            let m = path.symlink_metadata().map_err(Errno::from)?;
            Ok(attr(ino.0, &m))
        })();
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = files.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return reply.error(e.into()),
            }
        }
        reply.data(&buf[..filled]);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // The listing is taken once per open: entries removed while a
        // reader walks it (rm -rf) must not shift the offsets it resumes at.
        match self.listing(ino) {
            Ok(entries) => {
                let fh = self.next_fh.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.dirs.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, entries);
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entries) = dirs.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (i, (child_ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*child_ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match nix::sys::statvfs::statvfs(&self.layers.dirs()[0]) {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.block_size() as u32,
                s.name_max() as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(Errno::from_i32(e as i32)),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if name.to_string_lossy().starts_with(OVERLAY_XATTR_PREFIX) {
            return reply.error(Errno::NO_XATTR);
        }
        let Some(rel) = self.path_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match self.found(&rel).and_then(|f| xattr::get(&f.path, name).map_err(Errno::from)) {
            Ok(Some(v)) if size == 0 => reply.size(v.len() as u32),
            Ok(Some(v)) if v.len() <= size as usize => reply.data(&v),
            Ok(Some(_)) => reply.error(Errno::ERANGE),
            Ok(None) => reply.error(Errno::NO_XATTR),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let Some(rel) = self.path_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let names = match self.found(&rel).and_then(|f| xattr::list(&f.path).map_err(Errno::from)) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let mut data = Vec::new();
        for n in names.filter(|n| !n.to_string_lossy().starts_with(OVERLAY_XATTR_PREFIX)) {
            data.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(n.as_os_str()));
            data.push(0);
        }
        if size == 0 {
            reply.size(data.len() as u32)
        } else if data.len() <= size as usize {
            reply.data(&data)
        } else {
            reply.error(Errno::ERANGE)
        }
    }
}
