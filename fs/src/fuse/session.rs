//! Mounting and serving: /dev/fuse is opened and mounted with mount(2),
//! INIT is negotiated on it, then requests are served by threads reading
//! /dev/fuse and, where the kernel offers FUSE over io_uring, by one
//! io_uring queue per CPU, each served by a thread pinned to that CPU.
//! Forgets and interrupts always come through /dev/fuse.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::abi::{self, init, op, InHeader, Reader, Writer};
use super::{dispatch, Filesystem, InitConfig};

/// Largest write (and read) the kernel sends in one request.
const MAX_WRITE: usize = 1 << 20;
/// Room for a request: the largest write and its headers.
const BUFFER: usize = MAX_WRITE + 4096;
/// Requests each io_uring queue keeps armed.
const URING_DEPTH: usize = 8;
/// Threads per io_uring queue for requests that may take long.
const URING_WORKERS: usize = 2;
const ENABLE_URING: &str = "/sys/module/fuse/parameters/enable_uring";

/// How to mount.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Shown as the mount's source.
    pub fsname: String,
    /// The mount's type is `fuse.<subtype>`.
    pub subtype: String,
    pub read_only: bool,
    /// Threads reading /dev/fuse.
    pub threads: usize,
    /// Serve over io_uring where the kernel offers it (root may turn the
    /// kernel's enable_uring switch on).
    pub uring: bool,
}

/// The /dev/fuse of a session: registers passthrough backing files.
#[derive(Clone)]
pub struct Backing {
    dev: Arc<OwnedFd>,
}

/// A registered backing file; closed in the kernel when dropped.
#[derive(Debug)]
pub struct BackingId {
    dev: Arc<OwnedFd>,
    pub id: i32,
}

impl Backing {
    /// Registers `file` as a backing file (needs CAP_SYS_ADMIN in the
    /// initial user namespace).
    pub fn open(&self, file: &std::fs::File) -> io::Result<BackingId> {
        #[repr(C)]
        struct Map {
            fd: i32,
            flags: u32,
            padding: u64,
        }
        let map = Map {
            fd: file.as_raw_fd(),
            flags: 0,
            padding: 0,
        };
        // SAFETY: the ioctl reads a fuse_backing_map we own for the call.
        let id = unsafe { libc::ioctl(self.dev.as_raw_fd(), abi::FUSE_DEV_IOC_BACKING_OPEN, &map as *const Map) };
        if id < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(BackingId { dev: self.dev.clone(), id })
    }
}

impl Drop for BackingId {
    fn drop(&mut self) {
        let id = self.id as u32;
        // SAFETY: the ioctl reads a u32 we own for the call.
        unsafe { libc::ioctl(self.dev.as_raw_fd(), abi::FUSE_DEV_IOC_BACKING_CLOSE, &id as *const u32) };
    }
}

/// A mounted filesystem, ready to serve.
pub struct Session<F: Filesystem> {
    fs: F,
    dev: Arc<OwnedFd>,
    options: MountOptions,
    /// The connection's directory under /sys/fs/fuse/connections.
    connection: Option<PathBuf>,
}

fn cstr(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a mount argument"))
}

impl<F: Filesystem> Session<F> {
    /// Opens /dev/fuse and mounts it at `mountpoint`.
    pub fn mount(fs: F, mountpoint: &Path, options: MountOptions) -> io::Result<Session<F>> {
        if options.uring && std::fs::read_to_string(ENABLE_URING).is_ok_and(|v| v.trim() == "N") {
            // Only root may; elsewhere /dev/fuse serves alone.
            let _ = std::fs::write(ENABLE_URING, "Y");
        }
        let dev = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .map_err(|e| io::Error::new(e.kind(), format!("/dev/fuse: {e}")))?;
        let dev: OwnedFd = dev.into();
        let data = format!(
            "fd={},rootmode=40000,user_id={},group_id={},default_permissions,allow_other",
            dev.as_raw_fd(),
            nix::unistd::geteuid(),
            nix::unistd::getegid()
        );
        let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
        if options.read_only {
            flags |= libc::MS_RDONLY;
        }
        let (source, target) = (cstr(options.fsname.as_bytes())?, cstr(mountpoint.as_os_str().as_bytes())?);
        let (fstype, data) = (cstr(format!("fuse.{}", options.subtype).as_bytes())?, cstr(data.as_bytes())?);
        // SAFETY: every pointer is a NUL-terminated string alive for the call.
        let r = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), flags, data.as_ptr().cast()) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Session {
            fs,
            dev: Arc::new(dev),
            options,
            connection: connection_of(mountpoint),
        })
    }

    /// Negotiates and serves until the filesystem is unmounted.
    pub fn run(mut self) -> io::Result<()> {
        // Once io_uring is granted the kernel holds every request until
        // all queues are registered: ask for it only where rings can be
        // made at all (io_uring may be disabled or filtered).
        let uring_ok = self.options.uring && new_ring().is_ok();
        let uring = self.negotiate(uring_ok)?;
        let fs = Arc::new(self.fs);
        let connection = Arc::new(self.connection.clone());
        let mut threads = Vec::new();
        if uring {
            let cpus = possible_cpus();
            for qid in 0..cpus {
                let (fs, dev, conn) = (fs.clone(), self.dev.clone(), connection.clone());
                let spawned = std::thread::Builder::new().name(format!("fuse-uring-{qid}")).spawn(move || {
                    if let Err(e) = serve_uring(fs, &dev, qid, cpus) {
                        if !gone(&e) {
                            eprintln!("berth fuse: io_uring queue {qid}: {e}; disconnecting");
                            abort(&conn);
                        }
                    }
                });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(e) => {
                        eprintln!("berth fuse: io_uring queue {qid}: {e}; disconnecting");
                        abort(&connection)
                    }
                }
            }
        }
        // /dev/fuse serves what io_uring does not (forgets, interrupts, and
        // everything until every queue is registered), and everything
        // without io_uring.
        let readers = self.options.threads.max(1);
        for i in 1..readers {
            let (fs, dev) = (fs.clone(), self.dev.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("fuse-{i}"))
                    .spawn(move || drop(serve_dev(&*fs, &dev)))?,
            );
        }
        let result = serve_dev(&*fs, &self.dev);
        for t in threads {
            let _ = t.join();
        }
        result
    }

    /// Answers INIT; returns whether io_uring serves.
    fn negotiate(&mut self, uring: bool) -> io::Result<bool> {
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = read_dev(&self.dev, &mut buf)?;
            let Some(h) = InHeader::parse(&buf[..n]) else { continue };
            if h.opcode != op::INIT {
                reply(&self.dev, h.unique, Err(libc::EIO))?;
                continue;
            }
            let mut a = Reader(&buf[abi::IN_HEADER_LEN..n]);
            let (major, minor) = (a.u32().unwrap_or(0), a.u32().unwrap_or(0));
            let max_readahead = a.u32().unwrap_or(0);
            let flags = a.u32().unwrap_or(0) as u64;
            let flags2 = if flags & init::INIT_EXT != 0 {
                a.u32().unwrap_or(0) as u64
            } else {
                0
            };
            let offered = flags | (flags2 << 32);
            if major != abi::KERNEL_VERSION || minor < 36 {
                reply(&self.dev, h.unique, Err(libc::EPROTO))?;
                return Err(io::Error::other(format!("kernel FUSE {major}.{minor} is too old (7.36 needed)")));
            }
            let mut config = InitConfig {
                offered,
                wanted: init::ASYNC_READ | init::BIG_WRITES | init::MAX_PAGES | init::INIT_EXT,
                max_stack_depth: 0,
            };
            if uring {
                config.wanted |= init::OVER_IO_URING;
            }
            self.fs.init(&mut config, Backing { dev: self.dev.clone() });
            let granted = config.wanted & (offered | init::INIT_EXT);
            let mut w = Writer::default();
            w.u32(abi::KERNEL_VERSION)
                .u32(minor.min(abi::KERNEL_MINOR_VERSION))
                .u32(max_readahead);
            w.u32(granted as u32).u16(64).u16(48).u32(MAX_WRITE as u32).u32(1);
            // SAFETY: sysconf has no memory-safety preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
            w.u16((MAX_WRITE / page).max(1) as u16)
                .u16(0)
                .u32((granted >> 32) as u32)
                .u32(config.max_stack_depth);
            w.zeros(64 - w.0.len());
            reply(&self.dev, h.unique, Ok(w.0))?;
            return Ok(granted & init::OVER_IO_URING != 0);
        }
    }
}

/// The FUSE connection of the mount at `mountpoint`, from mountinfo (the
/// mount itself cannot be asked before INIT is answered).
fn connection_of(mountpoint: &Path) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let target = mountpoint.canonicalize().ok()?;
    let line = info
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4).map(Path::new) == Some(target.as_path()))?;
    let minor = line.split(' ').nth(2)?.split(':').nth(1)?;
    Some(PathBuf::from(format!("/sys/fs/fuse/connections/{minor}")))
}

/// Ends the connection: every waiting request fails and the mount reads
/// as disconnected, for a transport that broke and cannot be served. The
/// process exits (closing /dev/fuse aborts the connection even where
/// fusectl is not mounted).
fn abort(connection: &Option<PathBuf>) -> ! {
    if let Some(c) = connection {
        let _ = std::fs::write(c.join("abort"), "1");
    }
    std::process::exit(1)
}

/// Whether an error means the filesystem was unmounted.
fn gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENODEV) | Some(libc::ENOTCONN) | Some(libc::ECONNABORTED)
    )
}

/// How many CPUs the kernel may ever run (num_possible_cpus): the kernel
/// wants one queue for each.
fn possible_cpus() -> usize {
    let count = |s: &str| -> Option<usize> {
        let mut n = 0;
        for r in s.trim().split(',') {
            n += match r.split_once('-') {
                Some((a, b)) => b.parse::<usize>().ok()? - a.parse::<usize>().ok()? + 1,
                None => {
                    r.parse::<usize>().ok()?;
                    1
                }
            };
        }
        Some(n)
    };
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| count(&s))
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// A ring for one io_uring queue.
fn new_ring() -> io::Result<io_uring::IoUring<io_uring::squeue::Entry128, io_uring::cqueue::Entry32>> {
    io_uring::IoUring::builder().setup_single_issuer().build((URING_DEPTH * 2) as u32)
}

fn read_dev(dev: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reading into a buffer we own.
        let n = unsafe { libc::read(dev.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // Interrupted, or a request the kernel withdrew.
            Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::ENOENT) => continue,
            _ => return Err(e),
        }
    }
}

fn reply(dev: &OwnedFd, unique: u64, body: super::Result<Vec<u8>>) -> io::Result<()> {
    let (error, body) = match body {
        Ok(b) => (0, b),
        Err(e) => (-e, Vec::new()),
    };
    let mut w = Writer::default();
    w.u32((abi::OUT_HEADER_LEN + body.len()) as u32).i32(error).u64(unique);
    let iov = [
        libc::iovec {
            iov_base: w.0.as_ptr() as *mut _,
            iov_len: w.0.len(),
        },
        libc::iovec {
            iov_base: body.as_ptr() as *mut _,
            iov_len: body.len(),
        },
    ];
    // SAFETY: both buffers outlive the call.
    let n = unsafe { libc::writev(dev.as_raw_fd(), iov.as_ptr(), 2) };
    if n < 0 {
        let e = io::Error::last_os_error();
        // The request was interrupted and is gone: nothing to answer.
        if e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Serves requests read from /dev/fuse until unmount.
fn serve_dev<F: Filesystem>(fs: &F, dev: &OwnedFd) -> io::Result<()> {
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = match read_dev(dev, &mut buf) {
            Ok(n) => n,
            Err(e) if gone(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(h) = InHeader::parse(&buf[..n]) else { continue };
        let body = &buf[abi::IN_HEADER_LEN.min(n)..n];
        let split = abi::arg0_len(h.opcode).min(body.len());
        if let Some(answer) = dispatch(fs, &h, &body[..split], &body[split..], MAX_WRITE) {
            if let Err(e) = reply(dev, h.unique, answer) {
                if gone(&e) {
                    return Ok(());
                }
            }
        }
    }
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; the set is ours.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// One armed request slot of an io_uring queue: the header the kernel
/// fills (request header, first argument, slot bookkeeping) and the payload.
struct Slot {
    header: Box<[u8; abi::URING_HEADER_SZ]>,
    payload: Vec<u8>,
    iov: Box<[libc::iovec; 2]>,
}

fn uring_cmd(dev: &OwnedFd, cmd_op: u32, qid: usize, commit_id: u64, slot: &Slot, user_data: u64) -> io_uring::squeue::Entry128 {
    // fuse_uring_cmd_req: flags, commit_id, qid.
    let mut cmd = [0u8; 80];
    cmd[8..16].copy_from_slice(&commit_id.to_ne_bytes());
    cmd[16..18].copy_from_slice(&(qid as u16).to_ne_bytes());
    let mut sqe = io_uring::opcode::UringCmd80::new(io_uring::types::Fd(dev.as_raw_fd()), cmd_op)
        .cmd(cmd)
        .addr(Some(slot.iov.as_ptr() as u64))
        .build()
        .user_data(user_data);
    // The kernel reads the two iovecs' count from sqe->len (offset 24 of
    // struct io_uring_sqe), which the builder does not set.
    // SAFETY: Entry128 is the 128-byte io_uring_sqe, laid out as the kernel's.
    let raw = unsafe { &mut *(&mut sqe as *mut io_uring::squeue::Entry128 as *mut [u8; 128]) };
    raw[24..28].copy_from_slice(&2u32.to_ne_bytes());
    sqe
}

/// Whether a request may take long (copying a file up, flushing to disk,
/// reading or writing through this process): such requests are served
/// off the queue's thread, so that the requests behind them from the same
/// CPU are not held up.
fn may_block(h: &InHeader, arg0: &[u8]) -> bool {
    match h.opcode {
        op::SETATTR | op::SETXATTR | op::REMOVEXATTR | op::RENAME | op::RENAME2 | op::LINK => true,
        op::FSYNC | op::FALLOCATE | op::READ | op::WRITE => true,
        op::OPEN => Reader(arg0)
            .u32()
            .is_some_and(|f| f as i32 & (libc::O_WRONLY | libc::O_RDWR | libc::O_TRUNC | libc::O_APPEND) != 0),
        _ => false,
    }
}

/// A slot handed to a worker; only that worker touches it until it hands
/// it back.
struct SlotPtr(*mut Slot, usize);

// SAFETY: a slot is used by one thread at a time: the queue's thread until
// it hands the slot to a worker, the worker until it hands it back.
unsafe impl Send for SlotPtr {}

const ENT_IN_OUT: usize = abi::URING_IN_OUT_HEADER_SZ + abi::URING_OP_IN_OUT_SZ;

/// The request in `slot`.
fn slot_request(slot: &Slot) -> io::Result<(InHeader, u64, usize)> {
    let mut e = Reader(&slot.header[ENT_IN_OUT..]);
    e.u64();
    let commit_id = e.u64().unwrap_or(0);
    let payload_sz = e.u32().unwrap_or(0) as usize;
    let h = InHeader::parse(&slot.header[..abi::IN_HEADER_LEN]).ok_or_else(|| io::Error::other("short FUSE header"))?;
    Ok((h, commit_id, payload_sz.min(slot.payload.len())))
}

/// Serves the request in `slot` and writes the reply into it.
fn answer<F: Filesystem>(fs: &F, slot: &mut Slot) -> io::Result<()> {
    let (h, _, payload_sz) = slot_request(slot)?;
    let arg0 =
        &slot.header[abi::URING_IN_OUT_HEADER_SZ..abi::URING_IN_OUT_HEADER_SZ + abi::arg0_len(h.opcode).min(abi::URING_OP_IN_OUT_SZ)];
    let reply = dispatch(fs, &h, arg0, &slot.payload[..payload_sz], MAX_WRITE).unwrap_or(Err(libc::ENOSYS));
    let (error, body) = match reply {
        Ok(b) => (0, b),
        Err(e) => (-e, Vec::new()),
    };
    let body = &body[..body.len().min(slot.payload.len())];
    slot.payload[..body.len()].copy_from_slice(body);
    let mut w = Writer::default();
    w.u32((abi::OUT_HEADER_LEN + body.len()) as u32).i32(error).u64(h.unique);
    slot.header[..abi::OUT_HEADER_LEN].copy_from_slice(&w.0);
    slot.header[ENT_IN_OUT + 16..ENT_IN_OUT + 20].copy_from_slice(&(body.len() as u32).to_ne_bytes());
    Ok(())
}

/// Serves io_uring queue `qid` from a thread pinned to that CPU; requests
/// that may take long go to a worker thread, which hands the answered slot
/// back through a channel and an eventfd the ring watches.
fn serve_uring<F: Filesystem>(fs: Arc<F>, dev: &OwnedFd, qid: usize, cpus: usize) -> io::Result<()> {
    pin(qid % cpus);
    let mut ring = new_ring()?;
    // The kernel writes into the slots while they are registered: they
    // are never freed (a queue lives as long as the mount, and on an
    // error the connection is aborted).
    let slots: &'static mut Vec<Slot> = Box::leak(Box::new(
        (0..URING_DEPTH)
            .map(|_| {
                let mut header = Box::new([0u8; abi::URING_HEADER_SZ]);
                let mut payload = vec![0u8; BUFFER];
                let iov = Box::new([
                    libc::iovec {
                        iov_base: header.as_mut_ptr().cast(),
                        iov_len: abi::URING_HEADER_SZ,
                    },
                    libc::iovec {
                        iov_base: payload.as_mut_ptr().cast(),
                        iov_len: payload.len(),
                    },
                ]);
                Slot { header, payload, iov }
            })
            .collect::<Vec<Slot>>(),
    ));
    // SAFETY: eventfd has no memory-safety preconditions; the fd is ours.
    let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if wake < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(wake) });
    let (done_tx, done_rx) = std::sync::mpsc::channel::<usize>();
    let (work_tx, work_rx) = std::sync::mpsc::channel::<SlotPtr>();
    let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
    for w in 0..URING_WORKERS {
        let (fs, work_rx, done_tx, wake) = (fs.clone(), work_rx.clone(), done_tx.clone(), wake.clone());
        std::thread::Builder::new()
            .name(format!("fuse-uring-{qid}w{w}"))
            .spawn(move || loop {
                let job = work_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok(SlotPtr(slot, index)) = job else { return };
                // SAFETY: handed over by the queue's thread, which leaves it alone
                // until the index comes back.
                if answer(&*fs, unsafe { &mut *slot }).is_err() {
                    // An unreadable header: answered anyway by the queue thread.
                }
                let _ = done_tx.send(index);
                let one = 1u64;
                // SAFETY: writes 8 bytes we own to our eventfd.
                unsafe { libc::write(wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
            })?;
    }
    const WAKE: u64 = u64::MAX;
    let arm_wake = |ring: &mut io_uring::IoUring<io_uring::squeue::Entry128, io_uring::cqueue::Entry32>| {
        let poll = io_uring::opcode::PollAdd::new(io_uring::types::Fd(wake.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(WAKE)
            .into();
        // SAFETY: polls an fd that lives as long as the ring.
        unsafe { ring.submission().push(&poll) }.map_err(|_| io::Error::other("io_uring submission queue full"))
    };
    for (i, slot) in slots.iter().enumerate() {
        let sqe = uring_cmd(dev, abi::URING_CMD_REGISTER, qid, 0, slot, i as u64);
        // SAFETY: the slot's buffers live as long as the process.
        unsafe { ring.submission().push(&sqe) }.map_err(|_| io::Error::other("io_uring submission queue full"))?;
    }
    arm_wake(&mut ring)?;
    ring.submit()?;
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
        let completed: Vec<(u64, i32)> = ring.completion().map(|c| (c.user_data(), c.result())).collect();
        let mut ready = Vec::new();
        for (user_data, res) in completed {
            if user_data == WAKE {
                let mut n = 0u64;
                // SAFETY: reads 8 bytes into a u64 we own.
                unsafe { libc::read(wake.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
                ready.extend(done_rx.try_iter());
                arm_wake(&mut ring)?;
                continue;
            }
            if res < 0 {
                return Err(io::Error::from_raw_os_error(-res));
            }
            let index = user_data as usize;
            let (h, _, _) = slot_request(&slots[index])?;
            if may_block(&h, &slots[index].header[abi::URING_IN_OUT_HEADER_SZ..]) {
                let ptr = SlotPtr(&mut slots[index] as *mut Slot, index);
                work_tx.send(ptr).map_err(|_| io::Error::other("worker threads gone"))?;
            } else {
                answer(&*fs, &mut slots[index])?;
                ready.push(index);
            }
        }
        for index in ready {
            let (_, commit_id, _) = slot_request(&slots[index])?;
            let sqe = uring_cmd(dev, abi::URING_CMD_COMMIT_AND_FETCH, qid, commit_id, &slots[index], index as u64);
            // SAFETY: as above.
            unsafe { ring.submission().push(&sqe) }.map_err(|_| io::Error::other("io_uring submission queue full"))?;
        }
    }
}
