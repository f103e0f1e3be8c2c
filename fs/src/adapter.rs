//! The `fuser::Filesystem` implementation: a thin translation between
//! kernel requests and [`ReadLayer`] methods. No logic lives here beyond
//! packing replies; every write-type request gets `EROFS`.
//!
//! Zero-message opens: where the kernel supports it, the first `open` and
//! `opendir` are answered `ENOSYS`, which tells the kernel to stop sending
//! them (and their `release`s) and to treat every later open as a success
//! with `FOPEN_KEEP_CACHE` (plus `FOPEN_CACHE_DIR` for directories). That
//! halves the round trips of `find` and cuts those of reading many small
//! files by two thirds; reads then name the file by inode, never by handle.
//! A read that spans several blobs is gathered into a per-thread buffer
//! that is reused, so replies never allocate.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::path::Path;
use std::time::SystemTime;

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use parking_lot::Mutex;

use crate::error::FsError;
use crate::inode::Ino;
use crate::layer::ReadLayer;

/// Runs once when the session ends.
type DestroyHook = Box<dyn FnOnce() + Send>;

/// The filesystem handed to `fuser`.
pub struct Adapter {
    layer: ReadLayer,
    on_destroy: Mutex<Option<DestroyHook>>,
    /// The kernel supports zero-message `open` / `opendir` (set by `init`).
    no_open: bool,
    no_opendir: bool,
}

impl Adapter {
    /// Wrap a read layer.
    pub fn new(layer: ReadLayer) -> Self {
        Adapter {
            layer,
            on_destroy: Mutex::new(None),
            no_open: false,
            no_opendir: false,
        }
    }

    /// Run `hook` when the session ends (after the last request).
    pub fn on_destroy(self, hook: impl FnOnce() + Send + 'static) -> Self {
        *self.on_destroy.lock() = Some(Box::new(hook));
        self
    }
}

fn errno(e: &FsError) -> Errno {
    Errno::from_i32(e.errno())
}

fn ino(i: INodeNo) -> Ino {
    Ino(i.0)
}

/// Reply to an xattr request honouring the size protocol (0: size only).
fn xattr_reply(data: Result<Vec<u8>, FsError>, size: u32, reply: ReplyXattr) {
    match data {
        Err(e) => reply.error(errno(&e)),
        Ok(d) if size == 0 => reply.size(u32::try_from(d.len()).unwrap_or(u32::MAX)),
        Ok(d) if d.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(d) => reply.data(&d),
    }
}

/// Largest read the kernel may send: 1 MiB (FUSE's usual page limit).
const MAX_READ: u32 = 1 << 20;

thread_local! {
    /// Where a read spanning several blobs is gathered (at most
    /// [`MAX_READ`] bytes per FUSE thread, reused from reply to reply).
    static GATHER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Filesystem for Adapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Ask for as much read-ahead as the kernel grants (it caps it at the
        // bdi's read_ahead_kb, which `mount` raises after mounting).
        if let Err(max) = config.set_max_readahead(MAX_READ) {
            let _ = config.set_max_readahead(max);
        }
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        for flag in [
            InitFlags::FUSE_MAX_PAGES,
            InitFlags::FUSE_ASYNC_READ,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_SPLICE_WRITE,
            InitFlags::FUSE_SPLICE_MOVE,
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            // At the start of a listing the kernel refreshes the directory's
            // attributes (when they expired) and drops its cached listing if
            // the time changed: how new snapshots show up in made-up
            // directories. Snapshot files never change, so their cached
            // pages are never dropped by it.
            InitFlags::FUSE_AUTO_INVAL_DATA,
        ] {
            let _ = config.add_capabilities(flag);
        }
        self.no_open = config
            .add_capabilities(InitFlags::FUSE_NO_OPEN_SUPPORT)
            .is_ok();
        self.no_opendir = config
            .add_capabilities(InitFlags::FUSE_NO_OPENDIR_SUPPORT)
            .is_ok();
        Ok(())
    }

    fn destroy(&mut self) {
        if let Some(hook) = self.on_destroy.lock().take() {
            hook();
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.layer.lookup(ino(parent), name) {
            Ok((attr, ttl)) => reply.entry(&ttl, &attr, Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    // `batch_forget`'s default calls this for each node.
    fn forget(&self, _req: &Request, i: INodeNo, nlookup: u64) {
        self.layer.forget(ino(i), nlookup);
    }

    fn getattr(&self, _req: &Request, i: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.layer.getattr(ino(i)) {
            Ok((attr, ttl)) => reply.attr(&ttl, &attr),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, i: INodeNo, reply: ReplyData) {
        match self.layer.readlink(ino(i)) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, i: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        match self.layer.open(ino(i), write) {
            // The kernel opens without asking from now on.
            Ok(()) if self.no_open => reply.error(Errno::ENOSYS),
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let data = match self.layer.read(ino(i), offset, size) {
            Ok(data) => data,
            Err(e) => return reply.error(errno(&e)),
        };
        if let Some(bytes) = data.contiguous() {
            return reply.data(bytes);
        }
        GATHER.with(|buf| match buf.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                data.copy_into(&mut buf);
                reply.data(&buf);
            }
            // Not reachable (replies do not nest); stay correct anyway.
            Err(_) => reply.data(&data.to_vec()),
        });
    }

    // Nothing to flush in a read-only mount: ENOSYS makes the kernel stop
    // sending FLUSH on every close (one round trip less per file).
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn opendir(&self, _req: &Request, i: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.layer.getattr(ino(i)) {
            Ok((attr, _)) if attr.kind != fuser::FileType::Directory => reply.error(Errno::ENOTDIR),
            // The kernel opens directories without asking from now on (and
            // caches their listings).
            Ok(_) if self.no_opendir => reply.error(Errno::ENOSYS),
            Ok(_) => reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
            ),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let result = self.layer.readdir_with(ino(i), offset, |e| {
            reply.add(INodeNo(e.ino.0), e.next, e.kind, &e.name)
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        i: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let result = self.layer.readdirplus_with(ino(i), offset, |e| {
            let d = &e.entry;
            reply.add(
                INodeNo(d.ino.0),
                d.next,
                &d.name,
                &e.ttl,
                &e.attr,
                Generation(0),
            )
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(
            0,
            0,
            0,
            0,
            0,
            crate::attr::BLKSIZE,
            255,
            crate::attr::BLKSIZE,
        );
    }

    fn getxattr(&self, _req: &Request, i: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        xattr_reply(self.layer.getxattr(ino(i), name), size, reply);
    }

    fn listxattr(&self, _req: &Request, i: INodeNo, size: u32, reply: ReplyXattr) {
        xattr_reply(self.layer.listxattr(ino(i)), size, reply);
    }

    fn access(&self, _req: &Request, i: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if mask.contains(AccessFlags::W_OK) {
            reply.error(Errno::EROFS);
        } else {
            match self.layer.getattr(ino(i)) {
                Ok(_) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        }
    }

    // ---- everything that writes: EROFS -----------------------------------

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }
}
