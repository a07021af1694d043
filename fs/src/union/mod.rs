//! berth-unionfs: a FUSE union filesystem over image layers, in kernel
//! overlayfs' on-disk format.
//!
//! This first stage serves a read-only merged view of its layers
//! (lookup through the layers, merged readdir hiding whiteouts, reads,
//! symlinks, xattrs, statfs) with inode numbers stable for the life of the
//! mount. Writes (copy-up into the upper directory) come next; until then
//! every change is refused with EROFS.

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

/// The union filesystem.
pub struct UnionFs {
    layers: Layers,
    inodes: RwLock<Inodes>,
    files: Mutex<HashMap<u64, std::fs::File>>,
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
    /// A union of `layers`, topmost first.
    pub fn new(layers: Vec<PathBuf>) -> UnionFs {
        let mut inodes = Inodes::default();
        inodes.ino(Path::new(""));
        UnionFs {
            layers: Layers::new(layers),
            inodes: RwLock::new(inodes),
            files: Mutex::new(HashMap::new()),
            next_fh: 1.into(),
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
        if flags.0 & (libc::O_WRONLY | libc::O_RDWR | libc::O_TRUNC) != 0 {
            return reply.error(Errno::EROFS);
        }
        let Some(rel) = self.path_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match self.found(&rel).and_then(|f| std::fs::File::open(&f.path).map_err(Errno::from)) {
            Ok(file) => {
                let fh = self.next_fh.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.files.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, file);
                // Lower files never change: the page cache may keep them.
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
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

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let Some(rel) = self.path_of(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let entries = match self.layers.list(&rel) {
            Ok(e) => e,
            Err(e) => return reply.error(e.into()),
        };
        let parent_ino = rel.parent().map(|p| self.ino_of(p)).unwrap_or(INodeNo::ROOT.0);
        let mut all: Vec<(u64, FileType, std::ffi::OsString)> = vec![
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
        for (i, (child_ino, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child_ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
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
