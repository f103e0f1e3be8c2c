//! File attributes: a tree [`Node`] (or a made-up entry) as the kernel's
//! `stat` data.
//!
//! - modes keep setuid/setgid/sticky; uid/gid are the stored ones, or root
//!   with `--owner-root`; made-up entries belong to the mounting user (or
//!   root) and are `r-x` for everyone;
//! - times keep nanoseconds; sizes are the stored sizes and `st_blocks`
//!   counts 512-byte units of the size, so `du` reports real usage;
//! - `st_blksize` of regular files is large ([`BLKSIZE`]): `cat`, `cp` and
//!   friends size their reads by it, and FUSE reads are far cheaper in big
//!   requests; everything else reports a page ([`DIR_BLKSIZE`]): glibc
//!   sizes its `getdents` buffer by a directory's `st_blksize`, and the
//!   kernel allocates a FUSE readdir buffer that large for every listing
//!   request (a 1 MiB one costs more than the whole reply);
//! - non-directories report their stored link count (at least 1) so hard
//!   links survive `rsync -aH`; directories report 2 + subdirectories.

use std::time::SystemTime;

use cairn_core::format::time::GoTime;
use cairn_core::format::tree::{Node, NodeType};
use fuser::{FileAttr, FileType, INodeNo};

use crate::inode::Ino;

/// `st_blksize` of regular files: 1 MiB, the largest FUSE read.
pub const BLKSIZE: u32 = 1 << 20;

/// `st_blksize` of everything else (directories above all).
pub const DIR_BLKSIZE: u32 = 4096;

/// `st_blksize` for an entry of type `kind`.
fn blksize(kind: FileType) -> u32 {
    match kind {
        FileType::RegularFile => BLKSIZE,
        _ => DIR_BLKSIZE,
    }
}

/// Who owns what the mount shows.
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    /// Show everything as owned by root (`--owner-root`).
    pub root: bool,
    /// Owner of made-up entries when not `root`: the mounting user.
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    fn of_node(&self, node: &Node) -> (u32, u32) {
        if self.root {
            (0, 0)
        } else {
            (node.uid, node.gid)
        }
    }

    fn of_virtual(&self) -> (u32, u32) {
        if self.root {
            (0, 0)
        } else {
            (self.uid, self.gid)
        }
    }
}

/// The kernel's file type of a node.
pub fn file_type(node: &Node) -> FileType {
    match node.node_type {
        NodeType::Dir => FileType::Directory,
        NodeType::Symlink => FileType::Symlink,
        NodeType::Dev => FileType::BlockDevice,
        NodeType::CharDev => FileType::CharDevice,
        NodeType::Fifo => FileType::NamedPipe,
        NodeType::Socket => FileType::Socket,
        NodeType::File | NodeType::Irregular | NodeType::Other(_) => FileType::RegularFile,
    }
}

fn time(t: &GoTime) -> SystemTime {
    t.to_system_time()
}

/// The attributes of a tree node. `dir_links` is the link count of a
/// directory (2 + subdirectories); `hardlinks` says whether the stored link
/// count is meaningful here (false in the history view).
pub fn node_attr(
    ino: Ino,
    node: &Node,
    dir_links: u32,
    hardlinks: bool,
    owner: &Owner,
) -> FileAttr {
    let kind = file_type(node);
    let (uid, gid) = owner.of_node(node);
    let size = match kind {
        FileType::RegularFile => node.size,
        FileType::Symlink => node.link_target.len() as u64,
        _ => 0,
    };
    let nlink = match kind {
        FileType::Directory => dir_links,
        _ if hardlinks => u32::try_from(node.links).unwrap_or(u32::MAX).max(1),
        _ => 1,
    };
    FileAttr {
        ino: INodeNo(ino.0),
        size,
        blocks: size.div_ceil(512),
        atime: time(&node.atime),
        mtime: time(&node.mtime),
        ctime: time(&node.ctime),
        crtime: time(&node.mtime),
        kind,
        perm: (node.unix_mode() & 0o7777) as u16,
        nlink,
        uid,
        gid,
        rdev: match kind {
            FileType::BlockDevice | FileType::CharDevice => encode_dev(node.device),
            _ => 0,
        },
        blksize: blksize(kind),
        flags: 0,
    }
}

/// The attributes of a made-up directory.
pub fn virtual_dir_attr(ino: Ino, t: &GoTime, nlink: u32, owner: &Owner) -> FileAttr {
    virtual_attr(ino, t, FileType::Directory, 0o555, 0, nlink, owner)
}

/// The attributes of a made-up symlink.
pub fn virtual_link_attr(ino: Ino, t: &GoTime, target_len: usize, owner: &Owner) -> FileAttr {
    virtual_attr(
        ino,
        t,
        FileType::Symlink,
        0o777,
        target_len as u64,
        1,
        owner,
    )
}

fn virtual_attr(
    ino: Ino,
    t: &GoTime,
    kind: FileType,
    perm: u16,
    size: u64,
    nlink: u32,
    owner: &Owner,
) -> FileAttr {
    let (uid, gid) = owner.of_virtual();
    let t = time(t);
    FileAttr {
        ino: INodeNo(ino.0),
        size,
        blocks: 0,
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind,
        perm,
        nlink,
        uid,
        gid,
        rdev: 0,
        blksize: blksize(kind),
        flags: 0,
    }
}

/// A glibc `dev_t` (as restic stores `device`) in the kernel's 32-bit
/// encoding FUSE carries: 12 bits of major, 20 of minor.
pub fn encode_dev(dev: u64) -> u32 {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    let (major, minor) = (major as u32 & 0xfff, minor as u32 & 0xf_ffff);
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Owner = Owner {
        root: false,
        uid: 1000,
        gid: 1000,
    };

    #[test]
    fn file_attributes_keep_everything() {
        let mut n = Node::new("f", NodeType::File);
        n.mode = 0o755 | (1 << 23) | (1 << 22) | (1 << 20);
        n.uid = 42;
        n.gid = 43;
        n.size = 1025;
        n.links = 3;
        n.mtime = GoTime::parse("2024-01-02T03:04:05.123456789Z").unwrap();
        let a = node_attr(Ino(9), &n, 0, true, &OWNER);
        assert_eq!(a.kind, FileType::RegularFile);
        assert_eq!(a.perm, 0o7755);
        assert_eq!(
            (a.uid, a.gid, a.nlink, a.size, a.blocks),
            (42, 43, 3, 1025, 3)
        );
        let since = a.mtime.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(since.subsec_nanos(), 123_456_789);
        let hist = node_attr(
            Ino(9),
            &n,
            0,
            false,
            &Owner {
                root: true,
                ..OWNER
            },
        );
        assert_eq!((hist.nlink, hist.uid, hist.gid), (1, 0, 0));
    }

    #[test]
    fn devices_symlinks_and_dirs() {
        let mut d = Node::new("sda", NodeType::Dev);
        d.device = (8 << 8) | 1; // glibc makedev(8, 1)
        assert_eq!(node_attr(Ino(2), &d, 0, true, &OWNER).rdev, (8 << 8) | 1);
        let big = (0x123u64 << 8) | (0x45678u64 & 0xff) | ((0x45678u64 & !0xff) << 12);
        assert_eq!(encode_dev(big), (0x78) | (0x123 << 8) | (0x45600 << 12));
        let mut l = Node::new("l", NodeType::Symlink);
        l.link_target = "target".into();
        let a = node_attr(Ino(3), &l, 0, true, &OWNER);
        assert_eq!((a.kind, a.size), (FileType::Symlink, 6));
        let dir = node_attr(Ino(4), &Node::new("d", NodeType::Dir), 5, true, &OWNER);
        assert_eq!(
            (dir.kind, dir.nlink, dir.blksize),
            (FileType::Directory, 5, DIR_BLKSIZE)
        );
        let f = node_attr(Ino(5), &Node::new("f", NodeType::File), 0, true, &OWNER);
        assert_eq!(f.blksize, BLKSIZE);
        let v = virtual_dir_attr(Ino(6), &GoTime::zero(), 2, &OWNER);
        assert_eq!(v.blksize, DIR_BLKSIZE);
    }
}
