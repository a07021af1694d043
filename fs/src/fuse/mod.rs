//! berth's own FUSE server: the protocol ([`abi`]), a filesystem trait
//! whose operations return their answers, and a session ([`session`])
//! that mounts, negotiates and serves requests over /dev/fuse and, where
//! the kernel offers it, over io_uring with one queue per CPU, so that a
//! request is answered on the CPU that made it (on a VM a wakeup across
//! CPUs costs tens of microseconds; FUSE over io_uring avoids it).

pub mod abi;
pub mod session;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

pub use abi::Attr;
pub use session::{Backing, BackingId, MountOptions, Session};

/// An errno.
pub type Errno = i32;
pub type Result<T> = std::result::Result<T, Errno>;

/// The errno of an I/O error.
pub fn errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

/// A name's inode and attributes, or (ino 0) the kernel may remember that
/// the name does not exist.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub attr: Attr,
    pub ttl: Duration,
}

/// An opened file or directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Opened {
    pub fh: u64,
    /// FOPEN_* flags.
    pub flags: u32,
    /// With FOPEN_PASSTHROUGH: the backing file's id.
    pub backing_id: i32,
}

/// What a setattr asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
    pub fh: Option<u64>,
    /// The kernel asks for set-id bits to be cleared.
    pub kill_suidgid: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum TimeOrNow {
    Time(i64, u32),
    Now,
}

/// statfs answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Statfs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// A getxattr or listxattr answer: the size asked about, or the data.
pub enum Xattr {
    Size(u32),
    Data(Vec<u8>),
}

/// What the kernel offers at INIT and what the filesystem takes.
pub struct InitConfig {
    /// The kernel's capability flags.
    pub offered: u64,
    /// The flags asked for (the session adds those it needs itself).
    pub wanted: u64,
    pub max_stack_depth: u32,
}

/// Fills a readdir reply.
pub struct DirBuf {
    pub(crate) buf: Vec<u8>,
    pub(crate) max: usize,
    pub(crate) plus: bool,
}

impl DirBuf {
    /// Adds an entry for readdir; false when the reply is full.
    pub fn add(&mut self, ino: u64, offset: u64, mode: u32, name: &OsStr) -> bool {
        abi::push_dirent(
            &mut self.buf,
            self.max,
            ino,
            offset,
            abi::dirent_type(mode),
            std::os::unix::ffi::OsStrExt::as_bytes(name),
        )
    }

    /// Adds an entry with attributes for readdirplus (the kernel counts it
    /// as a lookup); false when the reply is full.
    pub fn add_plus(&mut self, attr: &Attr, ttl: Duration, offset: u64, name: &OsStr) -> bool {
        abi::push_direntplus(
            &mut self.buf,
            self.max,
            attr,
            ttl,
            offset,
            std::os::unix::ffi::OsStrExt::as_bytes(name),
        )
    }

    /// Whether this is a readdirplus reply.
    pub fn plus(&self) -> bool {
        self.plus
    }
}

/// A filesystem served by a [`Session`]. Every operation answers by its
/// return value; the default answer is ENOSYS.
#[allow(unused_variables)]
pub trait Filesystem: Send + Sync + 'static {
    /// Negotiation; `backing` registers passthrough files.
    fn init(&mut self, config: &mut InitConfig, backing: Backing) {}
    fn lookup(&self, ctx: Ctx, parent: u64, name: &OsStr) -> Result<Entry> {
        Err(libc::ENOSYS)
    }
    fn forget(&self, ino: u64, nlookup: u64) {}
    fn getattr(&self, ctx: Ctx, ino: u64, fh: Option<u64>) -> Result<(Attr, Duration)> {
        Err(libc::ENOSYS)
    }
    fn setattr(&self, ctx: Ctx, ino: u64, set: SetAttr) -> Result<(Attr, Duration)> {
        Err(libc::ENOSYS)
    }
    fn readlink(&self, ctx: Ctx, ino: u64) -> Result<Vec<u8>> {
        Err(libc::ENOSYS)
    }
    fn mknod(&self, ctx: Ctx, parent: u64, name: &OsStr, mode: u32, umask: u32, rdev: u32) -> Result<Entry> {
        Err(libc::ENOSYS)
    }
    fn mkdir(&self, ctx: Ctx, parent: u64, name: &OsStr, mode: u32, umask: u32) -> Result<Entry> {
        Err(libc::ENOSYS)
    }
    fn unlink(&self, ctx: Ctx, parent: u64, name: &OsStr) -> Result<()> {
        Err(libc::ENOSYS)
    }
    fn rmdir(&self, ctx: Ctx, parent: u64, name: &OsStr) -> Result<()> {
        Err(libc::ENOSYS)
    }
    fn symlink(&self, ctx: Ctx, parent: u64, name: &OsStr, target: &Path) -> Result<Entry> {
        Err(libc::ENOSYS)
    }
    fn rename(&self, ctx: Ctx, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr, flags: u32) -> Result<()> {
        Err(libc::ENOSYS)
    }
    fn link(&self, ctx: Ctx, ino: u64, newparent: u64, newname: &OsStr) -> Result<Entry> {
        Err(libc::ENOSYS)
    }
    fn open(&self, ctx: Ctx, ino: u64, flags: i32) -> Result<Opened> {
        Err(libc::ENOSYS)
    }
    fn read(&self, ctx: Ctx, ino: u64, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        Err(libc::ENOSYS)
    }
    fn write(&self, ctx: Ctx, ino: u64, fh: u64, offset: u64, data: &[u8], write_flags: u32) -> Result<u32> {
        Err(libc::ENOSYS)
    }
    fn statfs(&self, ctx: Ctx, ino: u64) -> Result<Statfs> {
        Err(libc::ENOSYS)
    }
    fn release(&self, ctx: Ctx, ino: u64, fh: u64) -> Result<()> {
        Ok(())
    }
    fn fsync(&self, ctx: Ctx, ino: u64, fh: u64, datasync: bool) -> Result<()> {
        Err(libc::ENOSYS)
    }
    fn setxattr(&self, ctx: Ctx, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> Result<()> {
        Err(libc::ENOSYS)
    }
    fn getxattr(&self, ctx: Ctx, ino: u64, name: &OsStr, size: u32) -> Result<Xattr> {
        Err(libc::ENOSYS)
    }
    fn listxattr(&self, ctx: Ctx, ino: u64, size: u32) -> Result<Xattr> {
        Err(libc::ENOSYS)
    }
    fn removexattr(&self, ctx: Ctx, ino: u64, name: &OsStr) -> Result<()> {
        Err(libc::ENOSYS)
    }
    fn opendir(&self, ctx: Ctx, ino: u64, flags: i32) -> Result<Opened> {
        Ok(Opened::default())
    }
    /// readdir and readdirplus (see [`DirBuf::plus`]).
    fn readdir(&self, ctx: Ctx, ino: u64, fh: u64, offset: u64, buf: &mut DirBuf) -> Result<()> {
        Err(libc::ENOSYS)
    }
    fn releasedir(&self, ctx: Ctx, ino: u64, fh: u64) -> Result<()> {
        Ok(())
    }
    fn create(&self, ctx: Ctx, parent: u64, name: &OsStr, mode: u32, umask: u32, flags: i32) -> Result<(Entry, Opened)> {
        Err(libc::ENOSYS)
    }
    fn fallocate(&self, ctx: Ctx, ino: u64, fh: u64, offset: u64, length: u64, mode: i32) -> Result<()> {
        Err(libc::ENOSYS)
    }
}

/// Serves one request: `arg0` is its fixed argument, `rest` the names or
/// data after it. Returns the reply's body, or None when the request
/// takes no reply.
pub(crate) fn dispatch<F: Filesystem>(fs: &F, h: &abi::InHeader, arg0: &[u8], rest: &[u8], max_read: usize) -> Option<Result<Vec<u8>>> {
    use abi::{op, Reader, Writer};
    let ctx = Ctx {
        uid: h.uid,
        gid: h.gid,
        pid: h.pid,
    };
    let ino = h.nodeid;
    let mut a = Reader(arg0);
    let mut r = Reader(rest);
    let bad = libc::EINVAL;
    let mut w = Writer::default();
    let entry = |w: &mut Writer, e: Entry| abi::entry_out(w, &e.attr, e.ttl);
    let result: Result<()> = (|| {
        match h.opcode {
            op::LOOKUP => entry(&mut w, fs.lookup(ctx, ino, r.name().ok_or(bad)?)?),
            op::GETATTR => {
                let flags = a.u32().ok_or(bad)?;
                a.u32();
                let fh = a.u64().ok_or(bad)?;
                let (attr, ttl) = fs.getattr(ctx, ino, (flags & abi::GETATTR_FH != 0).then_some(fh))?;
                abi::attr_out(&mut w, &attr, ttl);
            }
            op::SETATTR => {
                let valid = a.u32().ok_or(bad)?;
                a.u32();
                let fh = a.u64().ok_or(bad)?;
                let size = a.u64().ok_or(bad)?;
                a.u64();
                let (atime, mtime) = (a.u64().ok_or(bad)?, a.u64().ok_or(bad)?);
                a.u64();
                let (atimensec, mtimensec) = (a.u32().ok_or(bad)?, a.u32().ok_or(bad)?);
                a.u32();
                let mode = a.u32().ok_or(bad)?;
                a.u32();
                let (uid, gid) = (a.u32().ok_or(bad)?, a.u32().ok_or(bad)?);
                let on = |bit: u32| valid & bit != 0;
                let time = |set: u32, now: u32, s: u64, ns: u32| {
                    if on(now) {
                        Some(TimeOrNow::Now)
                    } else {
                        on(set).then_some(TimeOrNow::Time(s as i64, ns))
                    }
                };
                let set = SetAttr {
                    mode: on(abi::fattr::MODE).then_some(mode),
                    uid: on(abi::fattr::UID).then_some(uid),
                    gid: on(abi::fattr::GID).then_some(gid),
                    size: on(abi::fattr::SIZE).then_some(size),
                    atime: time(abi::fattr::ATIME, abi::fattr::ATIME_NOW, atime, atimensec),
                    mtime: time(abi::fattr::MTIME, abi::fattr::MTIME_NOW, mtime, mtimensec),
                    fh: on(abi::fattr::FH).then_some(fh),
                    kill_suidgid: on(abi::fattr::KILL_SUIDGID),
                };
                let (attr, ttl) = fs.setattr(ctx, ino, set)?;
                abi::attr_out(&mut w, &attr, ttl);
            }
            op::READLINK => w.0 = fs.readlink(ctx, ino)?,
            op::SYMLINK => {
                let name = r.name().ok_or(bad)?;
                let target = r.name().ok_or(bad)?;
                entry(&mut w, fs.symlink(ctx, ino, name, Path::new(target))?)
            }
            op::MKNOD => {
                let (mode, rdev, umask) = (a.u32().ok_or(bad)?, a.u32().ok_or(bad)?, a.u32().ok_or(bad)?);
                entry(&mut w, fs.mknod(ctx, ino, r.name().ok_or(bad)?, mode, umask, rdev)?)
            }
            op::MKDIR => {
                let (mode, umask) = (a.u32().ok_or(bad)?, a.u32().ok_or(bad)?);
                entry(&mut w, fs.mkdir(ctx, ino, r.name().ok_or(bad)?, mode, umask)?)
            }
            op::UNLINK => fs.unlink(ctx, ino, r.name().ok_or(bad)?)?,
            op::RMDIR => fs.rmdir(ctx, ino, r.name().ok_or(bad)?)?,
            op::RENAME | op::RENAME2 => {
                let newdir = a.u64().ok_or(bad)?;
                let flags = if h.opcode == op::RENAME2 { a.u32().ok_or(bad)? } else { 0 };
                let (name, newname) = (r.name().ok_or(bad)?, r.name().ok_or(bad)?);
                fs.rename(ctx, ino, name, newdir, newname, flags)?
            }
            op::LINK => {
                let old = a.u64().ok_or(bad)?;
                entry(&mut w, fs.link(ctx, old, ino, r.name().ok_or(bad)?)?)
            }
            op::OPEN | op::OPENDIR => {
                let flags = a.u32().ok_or(bad)? as i32;
                let o = if h.opcode == op::OPEN {
                    fs.open(ctx, ino, flags)?
                } else {
                    fs.opendir(ctx, ino, flags)?
                };
                abi::open_out(&mut w, o.fh, o.flags, o.backing_id);
            }
            op::READ | op::READDIR | op::READDIRPLUS => {
                let (fh, offset, size) = (a.u64().ok_or(bad)?, a.u64().ok_or(bad)?, a.u32().ok_or(bad)?);
                let size = (size as usize).min(max_read);
                if h.opcode == op::READ {
                    w.0 = fs.read(ctx, ino, fh, offset, size as u32)?;
                } else {
                    let mut buf = DirBuf {
                        buf: Vec::with_capacity(size),
                        max: size,
                        plus: h.opcode == op::READDIRPLUS,
                    };
                    fs.readdir(ctx, ino, fh, offset, &mut buf)?;
                    w.0 = buf.buf;
                }
            }
            op::WRITE => {
                let (fh, offset, size, flags) = (a.u64().ok_or(bad)?, a.u64().ok_or(bad)?, a.u32().ok_or(bad)?, a.u32().ok_or(bad)?);
                let data = r.bytes(size as usize).ok_or(bad)?;
                let n = fs.write(ctx, ino, fh, offset, data, flags)?;
                w.u32(n).u32(0);
            }
            op::STATFS => {
                let s = fs.statfs(ctx, ino)?;
                w.u64(s.blocks).u64(s.bfree).u64(s.bavail).u64(s.files).u64(s.ffree);
                w.u32(s.bsize).u32(s.namelen).u32(s.frsize).u32(0).zeros(24);
            }
            op::RELEASE | op::RELEASEDIR => {
                let fh = a.u64().ok_or(bad)?;
                if h.opcode == op::RELEASE {
                    fs.release(ctx, ino, fh)?
                } else {
                    fs.releasedir(ctx, ino, fh)?
                }
            }
            op::FSYNC => {
                let (fh, flags) = (a.u64().ok_or(bad)?, a.u32().ok_or(bad)?);
                fs.fsync(ctx, ino, fh, flags & abi::FSYNC_FDATASYNC != 0)?
            }
            op::SETXATTR => {
                let (size, flags) = (a.u32().ok_or(bad)?, a.u32().ok_or(bad)?);
                let name = r.name().ok_or(bad)?;
                let value = r.bytes(size as usize).ok_or(bad)?;
                fs.setxattr(ctx, ino, name, value, flags as i32)?
            }
            op::GETXATTR | op::LISTXATTR => {
                let size = a.u32().ok_or(bad)?;
                let x = if h.opcode == op::GETXATTR {
                    fs.getxattr(ctx, ino, r.name().ok_or(bad)?, size)?
                } else {
                    fs.listxattr(ctx, ino, size)?
                };
                match x {
                    Xattr::Size(n) => {
                        w.u32(n).u32(0);
                    }
                    Xattr::Data(d) => w.0 = d,
                }
            }
            op::REMOVEXATTR => fs.removexattr(ctx, ino, r.name().ok_or(bad)?)?,
            op::CREATE => {
                let (flags, mode, umask) = (a.u32().ok_or(bad)?, a.u32().ok_or(bad)?, a.u32().ok_or(bad)?);
                let (e, o) = fs.create(ctx, ino, r.name().ok_or(bad)?, mode, umask, flags as i32)?;
                entry(&mut w, e);
                abi::open_out(&mut w, o.fh, o.flags, o.backing_id);
            }
            op::FALLOCATE => {
                let (fh, offset, length, mode) = (a.u64().ok_or(bad)?, a.u64().ok_or(bad)?, a.u64().ok_or(bad)?, a.u32().ok_or(bad)?);
                fs.fallocate(ctx, ino, fh, offset, length, mode as i32)?
            }
            op::DESTROY => {}
            _ => return Err(libc::ENOSYS),
        }
        Ok(())
    })();
    match h.opcode {
        op::FORGET => {
            fs.forget(ino, a.u64().unwrap_or(0));
            None
        }
        op::BATCH_FORGET => {
            let count = a.u32().unwrap_or(0);
            for _ in 0..count {
                let (Some(node), Some(n)) = (r.u64(), r.u64()) else { break };
                fs.forget(node, n);
            }
            None
        }
        op::INTERRUPT => None,
        _ => Some(result.map(|()| w.0)),
    }
}
