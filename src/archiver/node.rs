//! Tree nodes from file system metadata, filled exactly as restic 0.14
//! fills them on Linux (`NodeFromFileInfo` + `fillExtra`), so that the same
//! unchanged directory serializes to the same tree blob in both tools.
//!
//! What restic records, by type:
//! - every node: name, type, Go mode bits, mtime, ctime, atime (equal to
//!   mtime unless `--with-atime`), uid, gid, user and group names (empty when
//!   unknown), inode and `device_id` (`st_dev`); times in the local zone;
//! - files: size and link count; content is filled in by the file saver;
//! - symlinks: link target and link count, but no extended attributes;
//! - block and character devices: `device` (`st_rdev`) and link count;
//! - directories, fifos and sockets: no size and no link count;
//! - extended attributes of every namespace `listxattr` shows (user,
//!   security, trusted for root, system ACLs), in the order it lists them,
//!   for everything but symlinks; a file system without xattr support has
//!   none.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::format::time::GoTime;
use crate::format::tree::{go_mode_from_unix, ExtendedAttribute, Node, NodeType};

/// Builds nodes; caches user and group names (restic does too: one
/// `getpwuid` per distinct uid, not per file).
#[derive(Default)]
pub struct NodeFactory {
    with_atime: bool,
    users: Mutex<HashMap<u32, String>>,
    groups: Mutex<HashMap<u32, String>>,
}

impl NodeFactory {
    /// A factory; `with_atime` keeps real access times (restic's
    /// `--with-atime`) instead of copying the mtime.
    pub fn new(with_atime: bool) -> Self {
        NodeFactory {
            with_atime,
            ..NodeFactory::default()
        }
    }

    /// The node for the item at `path` with metadata `meta` (from `lstat`,
    /// or `stat`/`fstat` where restic uses those), named `name`.
    ///
    /// Sockets and unknown types are errors here: callers skip sockets
    /// before, as restic does.
    pub fn node(&self, path: &Path, name: OsString, meta: &Metadata) -> Result<Node> {
        let node_type = NodeType::from_unix_mode(meta.mode());
        if node_type == NodeType::Irregular {
            return Err(Error::InvalidPath {
                path: path.to_path_buf(),
                reason: format!("invalid node type (mode {:o})", meta.mode()),
            });
        }
        let mut node = Node::new(name, node_type);
        node.mode = go_mode_from_unix(meta.mode());
        self.set_times(&mut node, meta);
        node.uid = meta.uid();
        node.gid = meta.gid();
        node.user = self.user_name(meta.uid());
        node.group = self.group_name(meta.gid());
        node.inode = meta.ino();
        node.device_id = meta.dev();
        match node.node_type {
            NodeType::File => {
                node.size = meta.size();
                node.links = meta.nlink();
            }
            NodeType::Symlink => {
                let target = std::fs::read_link(path)
                    .map_err(|e| Error::io(format!("readlink {}", path.display()), e))?;
                node.link_target = target.into_os_string();
                node.links = meta.nlink();
            }
            NodeType::Dev | NodeType::CharDev => {
                node.device = meta.rdev();
                node.links = meta.nlink();
            }
            _ => {}
        }
        if node.node_type != NodeType::Symlink {
            node.extended_attributes = read_xattrs(path)?;
        }
        Ok(node)
    }

    /// Update a file node's size and times from a newer `fstat` of the
    /// same file (after it changed while being read).
    pub fn refresh_file(&self, node: &mut Node, meta: &Metadata) {
        self.set_times(node, meta);
        node.size = meta.size();
        node.links = meta.nlink();
    }

    /// mtime, ctime, and atime (the mtime unless `--with-atime`).
    fn set_times(&self, node: &mut Node, meta: &Metadata) {
        node.mtime = GoTime::from_unix(meta.mtime(), nanos(meta.mtime_nsec()));
        node.ctime = GoTime::from_unix(meta.ctime(), nanos(meta.ctime_nsec()));
        node.atime = if self.with_atime {
            GoTime::from_unix(meta.atime(), nanos(meta.atime_nsec()))
        } else {
            node.mtime
        };
    }

    fn user_name(&self, uid: u32) -> String {
        self.users
            .lock()
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_default()
            })
            .clone()
    }

    fn group_name(&self, gid: u32) -> String {
        self.groups
            .lock()
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
                    .unwrap_or_default()
            })
            .clone()
    }
}

/// Nanoseconds from `st_*time_nsec` (always in 0..10⁹ from the kernel).
fn nanos(ns: i64) -> u32 {
    u32::try_from(ns.clamp(0, 999_999_999)).unwrap_or(0)
}

/// The extended attributes of `path` (following a final symlink, as
/// restic's `xattr.List`/`xattr.Get` do; callers never pass symlinks).
/// "Not supported" means none; an attribute that vanishes or cannot be read
/// between listing and reading is skipped with a warning, as restic does.
fn read_xattrs(path: &Path) -> Result<Vec<ExtendedAttribute>> {
    let names = match xattr::list_deref(path) {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("listxattr {}", path.display()), e)),
    };
    let mut attrs = Vec::new();
    for name in names {
        match xattr::get_deref(path, &name) {
            Ok(Some(value)) => attrs.push(ExtendedAttribute {
                name: name.to_string_lossy().into_owned(),
                value,
            }),
            Ok(None) => {}
            Err(e) if is_unsupported(&e) => {}
            Err(e) => log::warn!(
                "can not obtain extended attribute {} for {}: {e}",
                name.to_string_lossy(),
                path.display()
            ),
        }
    }
    Ok(attrs)
}

fn is_unsupported(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENODATA))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn nodes_carry_restic_fields_per_type() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4751)).unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("l")).unwrap();
        let factory = NodeFactory::new(false);

        let meta = std::fs::symlink_metadata(&file).unwrap();
        let node = factory.node(&file, "f".into(), &meta).unwrap();
        assert_eq!(node.node_type, NodeType::File);
        assert_eq!(node.mode, 0o751 | (1 << 23), "setuid is Go's ModeSetuid");
        assert_eq!((node.size, node.links), (5, 1));
        assert_eq!(node.inode, meta.ino());
        assert_eq!(node.device_id, meta.dev());
        assert_eq!(
            node.atime, node.mtime,
            "atime is mtime without --with-atime"
        );
        assert_eq!(node.ctime.unix(), (meta.ctime(), meta.ctime_nsec() as u32));
        assert_eq!(node.content, Some(vec![]));
        if meta.uid() == 0 {
            assert_eq!(node.user, "root");
        }

        let link = dir.path().join("l");
        let meta = std::fs::symlink_metadata(&link).unwrap();
        let node = factory.node(&link, "l".into(), &meta).unwrap();
        assert_eq!(node.node_type, NodeType::Symlink);
        assert_eq!(node.link_target, "f");
        assert_eq!((node.size, node.links), (0, 1));
        assert_eq!(node.content, None);

        let meta = std::fs::symlink_metadata(dir.path()).unwrap();
        let node = factory.node(dir.path(), "d".into(), &meta).unwrap();
        assert_eq!(node.node_type, NodeType::Dir);
        assert_eq!(
            (node.size, node.links),
            (0, 0),
            "restic omits both for dirs"
        );
        assert_eq!(node.mode & (1 << 31), 1 << 31);
    }

    #[test]
    fn atime_is_kept_on_request_and_xattrs_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_accessed(old))
            .unwrap();
        let with_xattr = xattr::set(&file, "user.cairn", b"v1").is_ok();
        let meta = std::fs::symlink_metadata(&file).unwrap();
        let node = NodeFactory::new(true)
            .node(&file, "f".into(), &meta)
            .unwrap();
        assert_eq!(node.atime.unix(), (1000, 0));
        assert_ne!(node.atime, node.mtime);
        if with_xattr {
            assert_eq!(node.xattr("user.cairn"), Some(&b"v1"[..]));
        }
    }
}
