//! Tree blobs: the JSON listing of one directory, as restic writes it.
//!
//! A [`Tree`] is `{"nodes":[…]}` followed by a newline; its blob id is the
//! SHA-256 of exactly those bytes, so [`Tree::to_json`] reproduces restic's
//! encoder byte for byte (field order, omitted zero fields, `null` vs `[]`,
//! Go's time format and string escaping). Nodes are kept sorted by the raw
//! bytes of their names, without duplicates, as restic requires.
//!
//! Each [`Node`] holds every field restic has written in any version. Some
//! details worth knowing:
//! - Names are raw bytes ([`OsString`]): restic passes them through Go's
//!   `strconv.Quote` before JSON encoding, so `bad\xffname` is stored as
//!   `"bad\\xffname"`, and unquotes them when reading. A name that does not
//!   unquote (never written by restic) is kept as the literal string.
//! - Link targets are raw bytes too: when not valid UTF-8, restic (0.16+)
//!   writes a lossy `linktarget` plus the exact bytes, base64, in
//!   `linktarget_raw`, which wins when reading.
//! - `mode` is Go's `os.FileMode`, not `st_mode`: permission bits plus Go's
//!   own type and setuid/setgid/sticky bits. [`go_mode_from_unix`] and
//!   [`Node::unix_mode`] convert, so nothing else needs Go's layout.
//! - `content` is `null` for everything but files, `[]` for an empty file.
//! - Unknown node types and unknown fields are tolerated; unknown fields
//!   are dropped when a tree is written again.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Deserializer};

use super::gojson::{self, null_default};
use super::time::GoTime;
use crate::error::{Error, Result};
use crate::id::{BlobId, TreeId};

// Go's os.FileMode bits (io/fs.FileMode).
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_DEVICE: u32 = 1 << 26;
const GO_MODE_NAMED_PIPE: u32 = 1 << 25;
const GO_MODE_SOCKET: u32 = 1 << 24;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_CHAR_DEVICE: u32 = 1 << 21;
const GO_MODE_STICKY: u32 = 1 << 20;

// POSIX st_mode bits (the same on every Unix cairn targets).
const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// Go's `os.FileMode` for a Unix `st_mode`, as Go's `os.Lstat` computes
/// it: permissions, setuid/setgid/sticky and the file type.
pub fn go_mode_from_unix(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    for (unix, go) in [
        (S_ISUID, GO_MODE_SETUID),
        (S_ISGID, GO_MODE_SETGID),
        (S_ISVTX, GO_MODE_STICKY),
    ] {
        if st_mode & unix != 0 {
            mode |= go;
        }
    }
    mode | match st_mode & S_IFMT {
        S_IFDIR => GO_MODE_DIR,
        S_IFLNK => GO_MODE_SYMLINK,
        S_IFBLK => GO_MODE_DEVICE,
        S_IFCHR => GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
        S_IFIFO => GO_MODE_NAMED_PIPE,
        S_IFSOCK => GO_MODE_SOCKET,
        _ => 0,
    }
}

/// The Unix `st_mode` for a Go `os.FileMode` (the inverse of
/// [`go_mode_from_unix`]; a mode without type bits is a regular file).
pub fn unix_mode_from_go(mode: u32) -> u32 {
    let file_type = if mode & GO_MODE_DIR != 0 {
        S_IFDIR
    } else if mode & GO_MODE_SYMLINK != 0 {
        S_IFLNK
    } else if mode & GO_MODE_DEVICE != 0 {
        if mode & GO_MODE_CHAR_DEVICE != 0 {
            S_IFCHR
        } else {
            S_IFBLK
        }
    } else if mode & GO_MODE_NAMED_PIPE != 0 {
        S_IFIFO
    } else if mode & GO_MODE_SOCKET != 0 {
        S_IFSOCK
    } else {
        S_IFREG
    };
    file_type | unix_permissions(mode)
}

/// Permission bits plus setuid/setgid/sticky, in Unix positions.
fn unix_permissions(mode: u32) -> u32 {
    let mut perm = mode & 0o777;
    for (unix, go) in [
        (S_ISUID, GO_MODE_SETUID),
        (S_ISGID, GO_MODE_SETGID),
        (S_ISVTX, GO_MODE_STICKY),
    ] {
        if mode & go != 0 {
            perm |= unix;
        }
    }
    perm
}

/// The kind of a node: restic's type names, plus whatever else a newer or
/// foreign writer used.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeType {
    File,
    Dir,
    Symlink,
    /// Block device.
    Dev,
    /// Character device.
    CharDev,
    Fifo,
    Socket,
    /// A Windows file restic could not classify (restic 0.17+).
    Irregular,
    /// Any other type string, kept as written.
    Other(String),
}

impl NodeType {
    /// The JSON name (`"file"`, `"dir"`, …).
    pub fn as_str(&self) -> &str {
        match self {
            NodeType::File => "file",
            NodeType::Dir => "dir",
            NodeType::Symlink => "symlink",
            NodeType::Dev => "dev",
            NodeType::CharDev => "chardev",
            NodeType::Fifo => "fifo",
            NodeType::Socket => "socket",
            NodeType::Irregular => "irregular",
            NodeType::Other(s) => s,
        }
    }

    /// The type for a JSON name; never fails.
    pub fn from_name(s: &str) -> NodeType {
        match s {
            "file" => NodeType::File,
            "dir" => NodeType::Dir,
            "symlink" => NodeType::Symlink,
            "dev" => NodeType::Dev,
            "chardev" => NodeType::CharDev,
            "fifo" => NodeType::Fifo,
            "socket" => NodeType::Socket,
            "irregular" => NodeType::Irregular,
            other => NodeType::Other(other.to_string()),
        }
    }

    /// The type of a file with this Unix `st_mode`.
    pub fn from_unix_mode(st_mode: u32) -> NodeType {
        match st_mode & S_IFMT {
            S_IFDIR => NodeType::Dir,
            S_IFLNK => NodeType::Symlink,
            S_IFBLK => NodeType::Dev,
            S_IFCHR => NodeType::CharDev,
            S_IFIFO => NodeType::Fifo,
            S_IFSOCK => NodeType::Socket,
            S_IFREG => NodeType::File,
            _ => NodeType::Irregular,
        }
    }

    /// The `S_IFMT` bits of this type, if it is a Unix one.
    fn unix_type_bits(&self) -> Option<u32> {
        Some(match self {
            NodeType::File => S_IFREG,
            NodeType::Dir => S_IFDIR,
            NodeType::Symlink => S_IFLNK,
            NodeType::Dev => S_IFBLK,
            NodeType::CharDev => S_IFCHR,
            NodeType::Fifo => S_IFIFO,
            NodeType::Socket => S_IFSOCK,
            NodeType::Irregular | NodeType::Other(_) => return None,
        })
    }
}

impl fmt::Display for NodeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One extended attribute (xattr) of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendedAttribute {
    pub name: String,
    pub value: Vec<u8>,
}

/// A file, directory or other item in a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The name within its directory: raw bytes.
    pub name: OsString,
    pub node_type: NodeType,
    /// Go `os.FileMode` bits; see [`Node::unix_mode`] and
    /// [`go_mode_from_unix`].
    pub mode: u32,
    pub mtime: GoTime,
    pub atime: GoTime,
    pub ctime: GoTime,
    pub uid: u32,
    pub gid: u32,
    /// Owner name, empty if unknown.
    pub user: String,
    /// Group name, empty if unknown.
    pub group: String,
    pub inode: u64,
    /// `st_dev` of the file (restic uses it with `inode` for hard links).
    pub device_id: u64,
    /// File size in bytes (files only).
    pub size: u64,
    /// Hard link count.
    pub links: u64,
    /// Symlink target: raw bytes.
    pub link_target: OsString,
    pub extended_attributes: Vec<ExtendedAttribute>,
    /// Platform-specific attributes (restic 0.17+, Windows), kept as JSON.
    pub generic_attributes: BTreeMap<String, serde_json::Value>,
    /// `st_rdev` of a device node.
    pub device: u64,
    /// The data blobs of a file, in order; `None` (JSON `null`) for
    /// everything that is not a file.
    pub content: Option<Vec<BlobId>>,
    /// The tree of a directory.
    pub subtree: Option<TreeId>,
    /// An error restic met while reading the item during backup.
    pub error: String,
}

impl Node {
    /// A node with the given name and type and every other field zero;
    /// a file starts with empty content (`[]`), anything else with `null`.
    pub fn new(name: impl Into<OsString>, node_type: NodeType) -> Node {
        let content = (node_type == NodeType::File).then(Vec::new);
        Node {
            name: name.into(),
            node_type,
            mode: 0,
            mtime: GoTime::zero(),
            atime: GoTime::zero(),
            ctime: GoTime::zero(),
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            inode: 0,
            device_id: 0,
            size: 0,
            links: 0,
            link_target: OsString::new(),
            extended_attributes: Vec::new(),
            generic_attributes: BTreeMap::new(),
            device: 0,
            content,
            subtree: None,
            error: String::new(),
        }
    }

    /// The data blobs of a file (empty for anything else).
    pub fn content(&self) -> &[BlobId] {
        self.content.as_deref().unwrap_or_default()
    }

    pub fn is_dir(&self) -> bool {
        self.node_type == NodeType::Dir
    }

    pub fn is_file(&self) -> bool {
        self.node_type == NodeType::File
    }

    pub fn is_symlink(&self) -> bool {
        self.node_type == NodeType::Symlink
    }

    /// The value of an extended attribute.
    pub fn xattr(&self, name: &str) -> Option<&[u8]> {
        self.extended_attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_slice())
    }

    /// The Unix `st_mode`: permission and setuid/setgid/sticky bits from
    /// `mode`, and the file type from the node type (from `mode` for types
    /// Unix does not have).
    pub fn unix_mode(&self) -> u32 {
        match self.node_type.unix_type_bits() {
            Some(bits) => bits | unix_permissions(self.mode),
            None => unix_mode_from_go(self.mode),
        }
    }

    /// True if `self` and `other` encode to the same JSON bytes
    /// ([`to_json`](Self::to_json)). Stricter than `==`, which compares
    /// times as instants: here their zone offsets must match too, since
    /// the offset is written.
    pub fn encodes_like(&self, other: &Node) -> bool {
        // Destructured so that a new field cannot be forgotten here.
        let Node {
            name,
            node_type,
            mode,
            mtime,
            atime,
            ctime,
            uid,
            gid,
            user,
            group,
            inode,
            device_id,
            size,
            links,
            link_target,
            extended_attributes,
            generic_attributes,
            device,
            content,
            subtree,
            error,
        } = self;
        let same_time = |a: &GoTime, b: &GoTime| {
            let (a, b) = (a.as_datetime(), b.as_datetime());
            a == b && a.offset() == b.offset()
        };
        name == &other.name
            && node_type.as_str() == other.node_type.as_str()
            && (mode, uid, gid) == (&other.mode, &other.uid, &other.gid)
            && (inode, device_id, size, links, device)
                == (
                    &other.inode,
                    &other.device_id,
                    &other.size,
                    &other.links,
                    &other.device,
                )
            && same_time(mtime, &other.mtime)
            && same_time(atime, &other.atime)
            && same_time(ctime, &other.ctime)
            && (user, group, error) == (&other.user, &other.group, &other.error)
            && link_target == &other.link_target
            && extended_attributes == &other.extended_attributes
            // Their JSON could be written in another order or number form
            // than it was read; nodes cairn makes from the file system have
            // none.
            && generic_attributes.is_empty()
            && other.generic_attributes.is_empty()
            && content == &other.content
            && subtree == &other.subtree
    }

    /// The node's JSON exactly as restic encodes it.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        let name = gojson::quote(self.name.as_bytes());
        let mut obj = JsonObject::new(out);
        obj.string("name", name.as_bytes());
        obj.string("type", self.node_type.as_str().as_bytes());
        obj.number_omitempty("mode", u64::from(self.mode));
        obj.string("mtime", self.mtime.to_string().as_bytes());
        obj.string("atime", self.atime.to_string().as_bytes());
        obj.string("ctime", self.ctime.to_string().as_bytes());
        obj.number("uid", u64::from(self.uid));
        obj.number("gid", u64::from(self.gid));
        obj.string_omitempty("user", self.user.as_bytes());
        obj.string_omitempty("group", self.group.as_bytes());
        obj.number_omitempty("inode", self.inode);
        obj.number_omitempty("device_id", self.device_id);
        obj.number_omitempty("size", self.size);
        obj.number_omitempty("links", self.links);
        let target = self.link_target.as_bytes();
        obj.string_omitempty("linktarget", target);
        if std::str::from_utf8(target).is_err() {
            obj.string("linktarget_raw", BASE64.encode(target).as_bytes());
        }
        if !self.extended_attributes.is_empty() {
            obj.key("extended_attributes");
            obj.out.push(b'[');
            for (i, attr) in self.extended_attributes.iter().enumerate() {
                if i > 0 {
                    obj.out.push(b',');
                }
                let mut a = JsonObject::new(obj.out);
                a.string("name", attr.name.as_bytes());
                a.string("value", BASE64.encode(&attr.value).as_bytes());
                a.finish();
            }
            obj.out.push(b']');
        }
        if !self.generic_attributes.is_empty() {
            obj.key("generic_attributes");
            let mut attrs = JsonObject::new(obj.out);
            for (k, v) in &self.generic_attributes {
                attrs.key(k);
                attrs.out.extend_from_slice(&gojson::to_vec(v));
            }
            attrs.finish();
        }
        obj.number_omitempty("device", self.device);
        obj.key("content");
        match &self.content {
            None => obj.out.extend_from_slice(b"null"),
            Some(ids) => {
                obj.out.push(b'[');
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        obj.out.push(b',');
                    }
                    gojson::write_string(obj.out, id.to_hex().as_bytes());
                }
                obj.out.push(b']');
            }
        }
        if let Some(subtree) = &self.subtree {
            obj.string("subtree", subtree.to_hex().as_bytes());
        }
        obj.string_omitempty("error", self.error.as_bytes());
        obj.finish();
    }
}

/// Writes one JSON object's members in order.
struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonObject { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        gojson::write_string(self.out, key.as_bytes());
        self.out.push(b':');
    }

    fn string(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        gojson::write_string(self.out, value);
    }

    fn string_omitempty(&mut self, key: &str, value: &[u8]) {
        if !value.is_empty() {
            self.string(key, value);
        }
    }

    fn number(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out.extend_from_slice(value.to_string().as_bytes());
    }

    fn number_omitempty(&mut self, key: &str, value: u64) {
        if value != 0 {
            self.number(key, value);
        }
    }

    fn finish(self) {
        self.out.push(b'}');
    }
}

/// A node as it appears in JSON; `null` reads as the zero value like Go.
#[derive(Deserialize)]
struct NodeJson {
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    node_type: String,
    #[serde(default, deserialize_with = "null_default")]
    mode: u32,
    #[serde(default)]
    mtime: GoTime,
    #[serde(default)]
    atime: GoTime,
    #[serde(default)]
    ctime: GoTime,
    #[serde(default, deserialize_with = "null_default")]
    uid: u32,
    #[serde(default, deserialize_with = "null_default")]
    gid: u32,
    #[serde(default, deserialize_with = "null_default")]
    user: String,
    #[serde(default, deserialize_with = "null_default")]
    group: String,
    #[serde(default, deserialize_with = "null_default")]
    inode: u64,
    #[serde(default, deserialize_with = "null_default")]
    device_id: u64,
    #[serde(default, deserialize_with = "null_default")]
    size: u64,
    #[serde(default, deserialize_with = "null_default")]
    links: u64,
    #[serde(default, deserialize_with = "null_default")]
    linktarget: String,
    #[serde(default)]
    linktarget_raw: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    extended_attributes: Vec<XattrJson>,
    #[serde(default, deserialize_with = "null_default")]
    generic_attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "null_default")]
    device: u64,
    #[serde(default)]
    content: Option<Vec<BlobId>>,
    #[serde(default)]
    subtree: Option<TreeId>,
    #[serde(default, deserialize_with = "null_default")]
    error: String,
}

#[derive(Deserialize)]
struct XattrJson {
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default, deserialize_with = "null_default")]
    value: String,
}

impl TryFrom<NodeJson> for Node {
    type Error = String;

    fn try_from(j: NodeJson) -> std::result::Result<Node, String> {
        let name = match gojson::unquote(&j.name) {
            Some(bytes) => OsString::from_vec(bytes),
            None => OsString::from(j.name),
        };
        let link_target = match j.linktarget_raw {
            Some(raw) => BASE64
                .decode(raw)
                .map_err(|e| format!("linktarget_raw: {e}"))?,
            None => j.linktarget.into_bytes(),
        };
        let extended_attributes = j
            .extended_attributes
            .into_iter()
            .map(|a| {
                let value = BASE64
                    .decode(&a.value)
                    .map_err(|e| format!("extended attribute {:?}: {e}", a.name))?;
                Ok(ExtendedAttribute {
                    name: a.name,
                    value,
                })
            })
            .collect::<std::result::Result<_, String>>()?;
        Ok(Node {
            name,
            node_type: NodeType::from_name(&j.node_type),
            mode: j.mode,
            mtime: j.mtime,
            atime: j.atime,
            ctime: j.ctime,
            uid: j.uid,
            gid: j.gid,
            user: j.user,
            group: j.group,
            inode: j.inode,
            device_id: j.device_id,
            size: j.size,
            links: j.links,
            link_target: OsString::from_vec(link_target),
            extended_attributes,
            generic_attributes: j.generic_attributes,
            device: j.device,
            content: j.content,
            subtree: j.subtree,
            error: j.error,
        })
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Node::try_from(NodeJson::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The decoded content of a tree blob.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Tree {
    /// The entries, sorted by name (see [`Tree::insert`]).
    #[serde(default, deserialize_with = "null_default")]
    pub nodes: Vec<Node>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Insert a node at its sorted position. A name already present is an
    /// error, as in restic.
    pub fn insert(&mut self, node: Node) -> Result<()> {
        match self.nodes.binary_search_by(|n| n.name.cmp(&node.name)) {
            Ok(_) => Err(Error::InvalidArgument(format!(
                "tree already has a node named {:?}",
                node.name
            ))),
            Err(at) => {
                self.nodes.insert(at, node);
                Ok(())
            }
        }
    }

    /// The node with this name. Uses binary search on sorted trees; falls
    /// back to a scan so an unsorted (foreign or damaged) tree still works.
    pub fn find(&self, name: &OsStr) -> Option<&Node> {
        match self
            .nodes
            .binary_search_by(|n| n.name.as_os_str().cmp(name))
        {
            Ok(i) => Some(&self.nodes[i]),
            Err(_) => self.nodes.iter().find(|n| n.name == name),
        }
    }

    /// True if the names are strictly increasing (sorted, no duplicates).
    pub fn is_sorted(&self) -> bool {
        self.nodes.windows(2).all(|w| w[0].name < w[1].name)
    }

    /// True if `self` and `other` encode to the same blob bytes
    /// ([`to_json`](Self::to_json)): the same nodes in the same order,
    /// each [encoding alike](Node::encodes_like).
    pub fn encodes_like(&self, other: &Tree) -> bool {
        self.nodes.len() == other.nodes.len()
            && self
                .nodes
                .iter()
                .zip(&other.nodes)
                .all(|(a, b)| a.encodes_like(b))
    }

    /// The blob bytes restic writes: `{"nodes":[…]}` and a newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 400 * self.nodes.len());
        out.extend_from_slice(b"{\"nodes\":[");
        for (i, node) in self.nodes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            node.write_json(&mut out);
        }
        out.extend_from_slice(b"]}\n");
        out
    }

    /// Parse a tree blob.
    pub fn from_json(data: &[u8]) -> Result<Tree> {
        serde_json::from_slice(data).map_err(|e| Error::corrupt("tree", e))
    }
}

#[cfg(test)]
mod tests;
