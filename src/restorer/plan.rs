//! The planning pass: walk a snapshot tree once and decide everything a
//! restore will do, before touching the filesystem.
//!
//! A [`Plan`] lists the [`Item`]s to create, parents before children (a
//! depth-first pre-order), and for every regular file the data blobs to
//! write and at which offset ([`FilePlan`]). The later stages (create,
//! write content, set metadata, verify) only read the plan, so the content
//! stage can be swapped for a pack-centric, parallel one without changing
//! anything else.
//!
//! Invariants (the repository is untrusted; these hold whatever it says):
//! - every item name passed [`check_name`] and is unique within its
//!   directory; rejected and duplicate names are reported and skipped with
//!   everything below them;
//! - an item's parent, if any, is a [`ItemKind::Dir`] item with a smaller
//!   index, so paths are built from names only and never leave the target;
//! - a [`ItemKind::HardLink`] points at an earlier [`ItemKind::File`];
//! - the blob slots of a file are contiguous from offset 0 and their lengths
//!   come from the index, so a blob of the wrong length is detectable;
//! - the walk is bounded by [`MAX_DEPTH`] and refuses tree cycles;
//! - names the snapshot has but the plan skipped (sockets, entries with
//!   problems) are remembered with their directory, and directories whose
//!   listing could not be read are marked, so `--delete` never removes
//!   what the snapshot holds.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::ops::Range;

use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::format::tree::{ExtendedAttribute, Node, NodeType};
use crate::id::{BlobId, PackId, TreeId};
use crate::repository::Repository;
use crate::tree::{check_name, MAX_DEPTH};

use super::prefetch::{self, Prefetch};
use super::select::Selection;
use super::Problem;

/// What an item is restored as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Dir,
    /// A regular file; its content is `plan.files[content]`.
    File {
        content: usize,
    },
    /// A further name of the file `plan.items[first]` (same device and
    /// inode in the snapshot).
    HardLink {
        first: usize,
    },
    Symlink,
    Fifo,
    BlockDevice,
    CharDevice,
}

/// One file-system object to create: its place, kind and the metadata a
/// restore sets (not the whole tree node: a plan holds one item per
/// restored entry, so items are kept small).
#[derive(Clone, Debug)]
pub struct Item {
    /// The directory item this one is in; `None` for the target itself.
    pub parent: Option<usize>,
    pub kind: ItemKind,
    name: Box<OsStr>,
    pub meta: Meta,
}

impl Item {
    /// The item's name within its directory.
    pub fn name(&self) -> &OsStr {
        &self.name
    }
}

/// The metadata of an item, from its node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Unix mode: type bits and permissions with setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Owner and group names: an index into [`Plan::owner_names`].
    pub owner_names: u32,
    /// Access time: seconds and nanoseconds since the epoch.
    pub atime: (i64, u32),
    /// Modification time: seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    /// What few items have: a link target, a device number, extended
    /// attributes.
    pub extra: Option<Box<Extra>>,
}

/// The rarely present parts of an item's metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra {
    /// Symlink target: raw bytes.
    pub link_target: OsString,
    /// `st_rdev` of a device node.
    pub device: u64,
    pub extended_attributes: Vec<ExtendedAttribute>,
}

impl Meta {
    /// The symlink target (empty if none).
    pub fn link_target(&self) -> &OsStr {
        self.extra
            .as_ref()
            .map_or(OsStr::new(""), |e| e.link_target.as_os_str())
    }

    /// The device number of a device node (0 if none).
    pub fn device(&self) -> u64 {
        self.extra.as_ref().map_or(0, |e| e.device)
    }

    /// The extended attributes (usually none).
    pub fn extended_attributes(&self) -> &[ExtendedAttribute] {
        self.extra
            .as_ref()
            .map_or(&[], |e| e.extended_attributes.as_slice())
    }
}

/// One data blob to write into a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobSlot {
    pub id: BlobId,
    /// Where the blob's plaintext goes in the file.
    pub offset: u64,
    /// Plaintext length, from the index.
    pub length: u32,
    /// Where the index said the blob is stored (so the content stage need
    /// not look it up again).
    pub(crate) stored: Stored,
}

/// A blob's place in a pack: an index entry with the pack as an index into
/// [`Plan::packs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stored {
    pub pack: u32,
    pub offset: u32,
    pub length: u32,
    pub uncompressed_length: Option<u32>,
}

/// The content of one regular file: a range of [`Plan::slots`].
#[derive(Clone, Debug)]
pub struct FilePlan {
    /// The [`Item`] of the file.
    pub item: usize,
    /// Its blob slots in [`Plan::slots`], in file order.
    pub slots: Range<usize>,
    /// The file's size once restored: the sum of its blob lengths.
    size: u64,
}

impl FilePlan {
    /// The file's size once restored: the sum of its blob lengths.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// Everything a restore will create; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
    pub files: Vec<FilePlan>,
    /// The blob slots of all files ([`FilePlan::slots`]).
    pub slots: Vec<BlobSlot>,
    /// Distinct (user, group) name pairs ([`Meta::owner_names`]).
    pub owner_names: Vec<(String, String)>,
    /// How many problems planning reported (skipped items).
    pub problems: u64,
    /// The packs the slots are stored in ([`Stored::pack`]).
    pub(crate) packs: Vec<PackId>,
    /// Names in the snapshot that are not items (skipped sockets, entries
    /// with problems), by directory item (`None`: the target).
    pub(crate) kept: Vec<(Option<usize>, OsString)>,
    /// Directory items whose listing could not be loaded.
    pub(crate) partial_dirs: Vec<usize>,
    /// The selection the plan was made with (`--delete` applies it too).
    pub(crate) selection: Selection,
}

impl Plan {
    /// The names from the target down to item `index`.
    pub fn path(&self, index: usize) -> Vec<&OsStr> {
        let mut names = Vec::new();
        let mut next = Some(index);
        while let Some(i) = next {
            names.push(self.items[i].name());
            next = self.items[i].parent;
        }
        names.reverse();
        names
    }

    /// The item's location inside the restored tree, e.g. `/home/ann/x`
    /// (names that are not UTF-8 are shown lossily).
    pub fn location(&self, index: usize) -> String {
        let mut s = String::new();
        for name in self.path(index) {
            s.push('/');
            s.push_str(&name.to_string_lossy());
        }
        s
    }

    /// Total bytes of file content to write.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(FilePlan::size).sum()
    }

    /// The blob slots of a file, in file order.
    pub fn blobs(&self, file: &FilePlan) -> &[BlobSlot] {
        self.slots.get(file.slots.clone()).unwrap_or(&[])
    }

    /// The (user, group) names of an item's owner.
    pub fn owner_names(&self, meta: &Meta) -> (&str, &str) {
        self.owner_names
            .get(meta.owner_names as usize)
            .map_or(("", ""), |(u, g)| (u.as_str(), g.as_str()))
    }
}

/// Walk the tree `root` and plan the restore of what `selection` selects.
/// Problems with single items (unusable names, missing blobs, unreadable
/// subtrees) are reported and skipped; only an unreadable root tree fails.
pub fn plan(
    repo: &Repository,
    root: &TreeId,
    selection: &Selection,
    report: &mut dyn FnMut(Problem),
) -> Result<Plan> {
    let tree = repo.load_tree(root)?;
    let trees = Prefetch::default();
    let mut planner = Planner {
        repo,
        selection,
        report,
        plan: Plan {
            selection: selection.clone(),
            ..Plan::default()
        },
        links: HashMap::new(),
        packs: HashMap::new(),
        owners: HashMap::new(),
        trees: &trees,
        stack: Vec::new(),
    };
    std::thread::scope(|scope| {
        for _ in 0..prefetch::helpers() {
            scope.spawn(|| trees.help(repo));
        }
        planner.enter(Frame::new(tree.nodes, String::new(), *root, None, None));
        planner.run();
        trees.close();
    });
    Ok(planner.plan)
}

/// One directory being walked.
struct Frame {
    nodes: std::vec::IntoIter<Node>,
    /// Names already handled in this directory (duplicates are skipped);
    /// only kept for a listing that is not strictly sorted by name, as
    /// restic writes them (a sorted listing cannot repeat a name).
    seen: Option<HashSet<OsString>>,
    /// Location of this directory (`""` for the root).
    location: String,
    tree: TreeId,
    /// The directory's node while it is not (yet) in the plan: directories
    /// that are not selected themselves are added only once something below
    /// them is.
    pending: Option<Node>,
    /// The directory's item once it is in the plan.
    item: Option<usize>,
    /// Names of this directory that are not restored but must be kept.
    kept: Vec<OsString>,
}

impl Frame {
    fn new(
        nodes: Vec<Node>,
        location: String,
        tree: TreeId,
        pending: Option<Node>,
        item: Option<usize>,
    ) -> Frame {
        let sorted = nodes.windows(2).all(|w| w[0].name < w[1].name);
        Frame {
            nodes: nodes.into_iter(),
            seen: (!sorted).then(HashSet::new),
            location,
            tree,
            pending,
            item,
            kept: Vec::new(),
        }
    }

    /// The location of the entry `name` of this directory.
    fn child(&self, name: &OsStr) -> String {
        format!("{}/{}", self.location, name.to_string_lossy())
    }
}

struct Planner<'a> {
    repo: &'a Repository,
    selection: &'a Selection,
    report: &'a mut dyn FnMut(Problem),
    plan: Plan,
    /// First file item of each (device, inode) with more than one link.
    links: HashMap<(u64, u64), usize>,
    /// Index of each pack in `plan.packs`.
    packs: HashMap<PackId, u32>,
    /// Index of each (user, group) pair in `plan.owner_names`.
    owners: HashMap<(String, String), u32>,
    /// Trees loaded ahead of the walk.
    trees: &'a Prefetch,
    stack: Vec<Frame>,
}

impl Planner<'_> {
    fn problem(&mut self, location: String, message: impl Into<String>) {
        self.plan.problems += 1;
        (self.report)(Problem {
            location,
            message: message.into(),
        });
    }

    /// The location of the entry `name` of the current directory.
    fn location(&self, name: &OsStr) -> String {
        self.stack
            .last()
            .map_or_else(|| format!("/{}", name.to_string_lossy()), |f| f.child(name))
    }

    /// `(selected, descend)` of the entry `name` of the current directory
    /// (its location is only built when the selection needs it).
    fn select(&self, name: &OsStr, is_dir: bool) -> (bool, bool) {
        match self.selection {
            Selection::All => (true, is_dir),
            selection => selection.select(&self.location(name), is_dir),
        }
    }

    /// Start walking a directory, announcing the subtrees the walk will
    /// descend into.
    fn enter(&mut self, frame: Frame) {
        let wanted = frame.nodes.as_slice().iter().filter_map(|node| {
            let subtree = node.subtree.filter(|_| node.node_type == NodeType::Dir)?;
            let descend = match self.selection {
                Selection::All => true,
                selection => selection.select(&frame.child(&node.name), true).1,
            };
            descend.then_some(subtree)
        });
        self.trees.want(wanted);
        self.stack.push(frame);
    }

    fn run(&mut self) {
        while let Some(frame) = self.stack.last_mut() {
            let Some(node) = frame.nodes.next() else {
                if let Some(done) = self.stack.pop() {
                    self.finish_dir(done);
                }
                continue;
            };
            if let Err(why) = check_name(&node.name) {
                let location = format!("{}/{:?}", frame.location, node.name);
                self.problem(location, format!("invalid node name: {why}; skipped"));
                continue;
            }
            if let Some(seen) = &mut frame.seen {
                if !seen.insert(node.name.clone()) {
                    let location = frame.child(&node.name);
                    self.problem(location, "duplicate name in its directory; skipped");
                    continue;
                }
            }
            self.visit(node);
        }
    }

    /// Remember the names a finished directory keeps, if it is planned.
    fn finish_dir(&mut self, frame: Frame) {
        let dir = if self.stack.is_empty() {
            Some(None)
        } else {
            frame.item.map(Some)
        };
        if let Some(dir) = dir {
            let kept = frame.kept.into_iter().map(|name| (dir, name));
            self.plan.kept.extend(kept);
        }
    }

    /// A name of the current directory that is not planned but exists in
    /// the snapshot: `--delete` must keep it.
    fn keep(&mut self, name: OsString) {
        if let Some(frame) = self.stack.last_mut() {
            frame.kept.push(name);
        }
    }

    fn visit(&mut self, node: Node) {
        let kind = match node.node_type {
            // restic does not restore sockets either.
            NodeType::Socket => return self.keep(node.name),
            NodeType::Dir => return self.visit_dir(node),
            NodeType::File => None,
            NodeType::Symlink => Some(ItemKind::Symlink),
            NodeType::Fifo => Some(ItemKind::Fifo),
            NodeType::Dev => Some(ItemKind::BlockDevice),
            NodeType::CharDev => Some(ItemKind::CharDevice),
            NodeType::Irregular | NodeType::Other(_) => {
                if self.select(&node.name, false).0 {
                    let what = format!(
                        "unsupported node type {:?}; skipped",
                        node.node_type.as_str()
                    );
                    self.problem(self.location(&node.name), what);
                }
                return self.keep(node.name);
            }
        };
        if !self.select(&node.name, false).0 {
            return;
        }
        match kind {
            Some(kind) => {
                self.add_item(node, kind);
            }
            None => self.visit_file(node),
        }
    }

    fn visit_dir(&mut self, node: Node) {
        let (selected, descend) = self.select(&node.name, true);
        let Some(subtree) = node.subtree else {
            if selected {
                self.problem(
                    self.location(&node.name),
                    "directory without subtree; skipped",
                );
            }
            return self.keep(node.name);
        };
        if !descend {
            if selected {
                self.add_item(node, ItemKind::Dir);
            }
            return;
        }
        let location = self.location(&node.name);
        if self.stack.len() > MAX_DEPTH {
            self.problem(
                location,
                format!("nested deeper than {MAX_DEPTH} levels; skipped"),
            );
            return self.keep(node.name);
        }
        if self.stack.iter().any(|f| f.tree == subtree) {
            self.problem(location, "tree contains itself (cycle); skipped");
            return self.keep(node.name);
        }
        let (pending, item) = if selected {
            (None, Some(self.add_item(node, ItemKind::Dir)))
        } else {
            (Some(node), None)
        };
        match self.trees.get(self.repo, &subtree) {
            Ok(tree) => {
                let frame = Frame::new(tree.nodes, location, subtree, pending, item);
                self.enter(frame);
            }
            Err(e) => {
                self.plan.partial_dirs.extend(item);
                self.problem(location, format!("cannot load directory: {e}"));
            }
        }
    }

    fn visit_file(&mut self, node: Node) {
        let key = (node.device_id, node.inode);
        if node.links > 1 {
            if let Some(&first) = self.links.get(&key) {
                self.add_item(node, ItemKind::HardLink { first });
                return;
            }
        }
        let first = self.plan.slots.len();
        let mut offset = 0u64;
        for id in node.content() {
            let handle = BlobHandle::new(BlobType::Data, *id);
            let stored = self
                .repo
                .lookup(&handle)
                .ok_or_else(|| Error::BlobNotInIndex(format!("data {id}")).to_string())
                .and_then(|entry| Ok((entry, self.pack(entry.pack)?)));
            let (entry, pack) = match stored {
                Ok(found) => found,
                Err(message) => {
                    self.plan.slots.truncate(first);
                    self.problem(
                        self.location(&node.name),
                        format!("{message}; file skipped"),
                    );
                    return self.keep(node.name);
                }
            };
            let length = entry.plaintext_len();
            self.plan.slots.push(BlobSlot {
                id: *id,
                offset,
                length,
                stored: Stored {
                    pack,
                    offset: entry.offset,
                    length: entry.length,
                    uncompressed_length: entry.uncompressed_length,
                },
            });
            offset += u64::from(length);
        }
        let links = node.links;
        let content = self.plan.files.len();
        let item = self.add_item(node, ItemKind::File { content });
        self.plan.files.push(FilePlan {
            item,
            slots: first..self.plan.slots.len(),
            size: offset,
        });
        if links > 1 {
            self.links.insert(key, item);
        }
    }

    /// The index of `pack` in `plan.packs`, added if new.
    fn pack(&mut self, pack: PackId) -> std::result::Result<u32, String> {
        if let Some(&k) = self.packs.get(&pack) {
            return Ok(k);
        }
        let k = u32::try_from(self.plan.packs.len())
            .map_err(|_| "too many packs for one restore".to_string())?;
        self.plan.packs.push(pack);
        self.packs.insert(pack, k);
        Ok(k)
    }

    /// The compact item for `node`.
    fn item(&mut self, parent: Option<usize>, kind: ItemKind, node: Node) -> Item {
        let mode = node.unix_mode();
        let owner = (node.user, node.group);
        let owner_names = match self.owners.get(&owner) {
            Some(&k) => k,
            None => {
                // Beyond u32::MAX pairs (never in practice) names are lost,
                // and numeric ids are used.
                let k = u32::try_from(self.plan.owner_names.len()).unwrap_or(u32::MAX);
                self.plan.owner_names.push(owner.clone());
                self.owners.insert(owner, k);
                k
            }
        };
        let rare = !node.link_target.is_empty()
            || node.device != 0
            || !node.extended_attributes.is_empty();
        let extra = rare.then(|| {
            Box::new(Extra {
                link_target: node.link_target,
                device: node.device,
                extended_attributes: node.extended_attributes,
            })
        });
        Item {
            parent,
            kind,
            name: node.name.into_boxed_os_str(),
            meta: Meta {
                mode,
                uid: node.uid,
                gid: node.gid,
                owner_names,
                atime: node.atime.unix(),
                mtime: node.mtime.unix(),
                extra,
            },
        }
    }

    /// Add an item in the innermost directory, first adding the directories
    /// leading to it that are not in the plan yet.
    fn add_item(&mut self, node: Node, kind: ItemKind) -> usize {
        let mut parent = None;
        for k in 0..self.stack.len() {
            if let Some(dir) = self.stack[k].pending.take() {
                let item = self.item(parent, ItemKind::Dir, dir);
                self.plan.items.push(item);
                self.stack[k].item = Some(self.plan.items.len() - 1);
            }
            parent = self.stack[k].item;
        }
        let item = self.item(parent, kind, node);
        self.plan.items.push(item);
        self.plan.items.len() - 1
    }
}
