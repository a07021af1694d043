//! The FUSE wire protocol (include/uapi/linux/fuse.h, version 7.45): the
//! opcodes berth serves, the layouts of their arguments and replies, read
//! and written field by field in native byte order.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

pub const KERNEL_VERSION: u32 = 7;
pub const KERNEL_MINOR_VERSION: u32 = 45;

pub mod op {
    pub const LOOKUP: u32 = 1;
    pub const FORGET: u32 = 2;
    pub const GETATTR: u32 = 3;
    pub const SETATTR: u32 = 4;
    pub const READLINK: u32 = 5;
    pub const SYMLINK: u32 = 6;
    pub const MKNOD: u32 = 8;
    pub const MKDIR: u32 = 9;
    pub const UNLINK: u32 = 10;
    pub const RMDIR: u32 = 11;
    pub const RENAME: u32 = 12;
    pub const LINK: u32 = 13;
    pub const OPEN: u32 = 14;
    pub const READ: u32 = 15;
    pub const WRITE: u32 = 16;
    pub const STATFS: u32 = 17;
    pub const RELEASE: u32 = 18;
    pub const FSYNC: u32 = 20;
    pub const SETXATTR: u32 = 21;
    pub const GETXATTR: u32 = 22;
    pub const LISTXATTR: u32 = 23;
    pub const REMOVEXATTR: u32 = 24;
    pub const FLUSH: u32 = 25;
    pub const INIT: u32 = 26;
    pub const OPENDIR: u32 = 27;
    pub const READDIR: u32 = 28;
    pub const RELEASEDIR: u32 = 29;
    pub const FSYNCDIR: u32 = 30;
    pub const CREATE: u32 = 35;
    pub const INTERRUPT: u32 = 36;
    pub const DESTROY: u32 = 38;
    pub const BATCH_FORGET: u32 = 42;
    pub const FALLOCATE: u32 = 43;
    pub const READDIRPLUS: u32 = 44;
    pub const RENAME2: u32 = 45;
}

/// INIT flags (fuse_init_in.flags | flags2 << 32).
pub mod init {
    pub const ASYNC_READ: u64 = 1 << 0;
    pub const BIG_WRITES: u64 = 1 << 5;
    pub const DO_READDIRPLUS: u64 = 1 << 13;
    pub const READDIRPLUS_AUTO: u64 = 1 << 14;
    pub const WRITEBACK_CACHE: u64 = 1 << 16;
    pub const PARALLEL_DIROPS: u64 = 1 << 18;
    pub const MAX_PAGES: u64 = 1 << 22;
    pub const CACHE_SYMLINKS: u64 = 1 << 23;
    pub const HANDLE_KILLPRIV_V2: u64 = 1 << 28;
    pub const INIT_EXT: u64 = 1 << 30;
    pub const DIRECT_IO_ALLOW_MMAP: u64 = 1 << 36;
    pub const PASSTHROUGH: u64 = 1 << 37;
    pub const OVER_IO_URING: u64 = 1 << 41;
}

/// Open reply flags.
pub mod fopen {
    pub const DIRECT_IO: u32 = 1 << 0;
    pub const KEEP_CACHE: u32 = 1 << 1;
    pub const CACHE_DIR: u32 = 1 << 3;
    pub const PASSTHROUGH: u32 = 1 << 7;
}

/// setattr `valid` bits.
pub mod fattr {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
    pub const ATIME: u32 = 1 << 4;
    pub const MTIME: u32 = 1 << 5;
    pub const FH: u32 = 1 << 6;
    pub const ATIME_NOW: u32 = 1 << 7;
    pub const MTIME_NOW: u32 = 1 << 8;
    pub const KILL_SUIDGID: u32 = 1 << 11;
}

pub const GETATTR_FH: u32 = 1;
pub const FSYNC_FDATASYNC: u32 = 1;
pub const WRITE_KILL_SUIDGID: u32 = 1 << 2;

pub const IN_HEADER_LEN: usize = 40;
pub const OUT_HEADER_LEN: usize = 16;
pub const ATTR_LEN: usize = 88;
pub const ENTRY_OUT_LEN: usize = 40 + ATTR_LEN;

/// The fixed part of each request's arguments (its first argument), the
/// rest being names or data. io_uring hands the two over separately.
pub fn arg0_len(opcode: u32) -> usize {
    match opcode {
        op::FORGET => 8,
        op::GETATTR => 16,
        op::SETATTR => 88,
        op::MKNOD => 16,
        op::MKDIR => 8,
        op::RENAME => 8,
        op::RENAME2 => 16,
        op::LINK => 8,
        op::OPEN | op::OPENDIR => 8,
        op::READ | op::READDIR | op::READDIRPLUS => 40,
        op::WRITE => 40,
        op::RELEASE | op::RELEASEDIR => 24,
        op::FSYNC | op::FSYNCDIR => 16,
        op::SETXATTR => 8,
        op::GETXATTR | op::LISTXATTR => 8,
        op::FLUSH => 24,
        op::INIT => 104 - IN_HEADER_LEN,
        op::CREATE => 16,
        op::INTERRUPT => 8,
        op::BATCH_FORGET => 8,
        op::FALLOCATE => 32,
        _ => 0,
    }
}

/// A request header.
#[derive(Debug, Clone, Copy)]
pub struct InHeader {
    pub len: u32,
    pub opcode: u32,
    pub unique: u64,
    pub nodeid: u64,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

impl InHeader {
    pub fn parse(b: &[u8]) -> Option<InHeader> {
        let mut r = Reader(b);
        Some(InHeader {
            len: r.u32()?,
            opcode: r.u32()?,
            unique: r.u64()?,
            nodeid: r.u64()?,
            uid: r.u32()?,
            gid: r.u32()?,
            pid: r.u32()?,
        })
    }
}

/// Reads native-endian fields in order.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_ne_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.bytes(4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.bytes(8).map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
    }
    /// A NUL-terminated name.
    pub fn name(&mut self) -> Option<&'a OsStr> {
        let end = self.0.iter().position(|&c| c == 0)?;
        let name = &self.0[..end];
        self.0 = &self.0[end + 1..];
        Some(OsStr::from_bytes(name))
    }
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}

/// Appends native-endian fields.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
}

/// Attributes of an inode as FUSE carries them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attr {
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    /// File type and permission bits, as st_mode.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub blksize: u32,
}

impl Attr {
    pub fn from_meta(ino: u64, m: &std::fs::Metadata) -> Attr {
        use std::os::unix::fs::MetadataExt;
        Attr {
            ino,
            size: m.size(),
            blocks: m.blocks(),
            atime: (m.atime(), m.atime_nsec() as u32),
            mtime: (m.mtime(), m.mtime_nsec() as u32),
            ctime: (m.ctime(), m.ctime_nsec() as u32),
            mode: m.mode(),
            nlink: m.nlink() as u32,
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev() as u32,
            blksize: m.blksize() as u32,
        }
    }

    pub fn write(&self, w: &mut Writer) {
        w.u64(self.ino)
            .u64(self.size)
            .u64(self.blocks)
            .u64(self.atime.0 as u64)
            .u64(self.mtime.0 as u64)
            .u64(self.ctime.0 as u64)
            .u32(self.atime.1)
            .u32(self.mtime.1)
            .u32(self.ctime.1)
            .u32(self.mode)
            .u32(self.nlink)
            .u32(self.uid)
            .u32(self.gid)
            .u32(self.rdev)
            .u32(self.blksize)
            .u32(0);
    }
}

/// Writes a fuse_entry_out.
pub fn entry_out(w: &mut Writer, attr: &Attr, ttl: std::time::Duration) {
    let (s, ns) = (ttl.as_secs(), ttl.subsec_nanos());
    w.u64(attr.ino).u64(0).u64(s).u64(s).u32(ns).u32(ns);
    attr.write(w);
}

/// Writes a fuse_attr_out.
pub fn attr_out(w: &mut Writer, attr: &Attr, ttl: std::time::Duration) {
    w.u64(ttl.as_secs()).u32(ttl.subsec_nanos()).u32(0);
    attr.write(w);
}

/// Writes a fuse_open_out.
pub fn open_out(w: &mut Writer, fh: u64, flags: u32, backing_id: i32) {
    w.u64(fh).u32(flags).i32(backing_id);
}

/// Directory entry type from st_mode.
pub fn dirent_type(mode: u32) -> u32 {
    (mode & libc::S_IFMT) >> 12
}

/// Appends a fuse_dirent (name padded to 8 bytes); false if it would
/// pass `max` bytes in all.
pub fn push_dirent(buf: &mut Vec<u8>, max: usize, ino: u64, off: u64, kind: u32, name: &[u8]) -> bool {
    let len = 24 + name.len();
    let padded = (len + 7) & !7;
    if buf.len() + padded > max {
        return false;
    }
    let mut w = Writer(std::mem::take(buf));
    w.u64(ino).u64(off).u32(name.len() as u32).u32(kind);
    w.0.extend_from_slice(name);
    w.zeros(padded - len);
    *buf = w.0;
    true
}

/// Appends a fuse_direntplus; false if it would pass `max` bytes.
pub fn push_direntplus(buf: &mut Vec<u8>, max: usize, attr: &Attr, ttl: std::time::Duration, off: u64, name: &[u8]) -> bool {
    let len = ENTRY_OUT_LEN + 24 + name.len();
    let padded = (len + 7) & !7;
    if buf.len() + padded > max {
        return false;
    }
    let mut w = Writer(std::mem::take(buf));
    entry_out(&mut w, attr, ttl);
    w.u64(attr.ino).u64(off).u32(name.len() as u32).u32(dirent_type(attr.mode));
    w.0.extend_from_slice(name);
    w.zeros(padded - len);
    *buf = w.0;
    true
}

// ioctls on /dev/fuse (include/uapi/linux/fuse.h).
pub const FUSE_DEV_IOC_BACKING_OPEN: libc::c_ulong = 0x4010_e501;
pub const FUSE_DEV_IOC_BACKING_CLOSE: libc::c_ulong = 0x4004_e502;

// FUSE over io_uring.
pub const URING_IN_OUT_HEADER_SZ: usize = 128;
pub const URING_OP_IN_OUT_SZ: usize = 128;
/// fuse_uring_req_header: in_out, op_in, fuse_uring_ent_in_out.
pub const URING_HEADER_SZ: usize = URING_IN_OUT_HEADER_SZ + URING_OP_IN_OUT_SZ + 32;
pub const URING_CMD_REGISTER: u32 = 1;
pub const URING_CMD_COMMIT_AND_FETCH: u32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirents_are_padded_and_bounded() {
        let mut buf = Vec::new();
        assert!(push_dirent(&mut buf, 4096, 5, 1, 8, b"abc"));
        assert_eq!(buf.len(), 32, "24-byte header + 3-byte name, padded to 8");
        assert!(!push_dirent(&mut buf, 40, 6, 2, 8, b"abcdefgh"), "would pass the limit");
        assert_eq!(buf.len(), 32);
        let attr = Attr {
            ino: 9,
            mode: libc::S_IFDIR | 0o755,
            ..Attr::default()
        };
        let mut plus = Vec::new();
        assert!(push_direntplus(&mut plus, 4096, &attr, std::time::Duration::from_secs(1), 3, b"d"));
        assert_eq!(plus.len(), ENTRY_OUT_LEN + 32);
        assert_eq!(
            u32::from_ne_bytes(plus[ENTRY_OUT_LEN + 20..ENTRY_OUT_LEN + 24].try_into().unwrap()),
            4,
            "DT_DIR"
        );
    }

    #[test]
    fn reader_reads_fields_and_names() {
        let mut b = Vec::new();
        b.extend_from_slice(&7u32.to_ne_bytes());
        b.extend_from_slice(b"name\0rest");
        let mut r = Reader(&b);
        assert_eq!(r.u32(), Some(7));
        assert_eq!(r.name(), Some(OsStr::new("name")));
        assert_eq!(r.rest(), b"rest");
        assert_eq!(r.u32(), None);
    }
}
