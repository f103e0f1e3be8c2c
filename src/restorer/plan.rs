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

use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::format::tree::{Node, NodeType};
use crate::id::{BlobId, TreeId};
use crate::repository::Repository;
use crate::tree::{check_name, MAX_DEPTH};

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

/// One file-system object to create.
#[derive(Clone, Debug)]
pub struct Item {
    /// The directory item this one is in; `None` for the target itself.
    pub parent: Option<usize>,
    pub kind: ItemKind,
    /// The node from the snapshot (its name is the item's name; the file
    /// content list is moved into the [`FilePlan`]).
    pub node: Node,
}

impl Item {
    /// The item's name within its directory.
    pub fn name(&self) -> &OsStr {
        &self.node.name
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
}

/// The content of one regular file.
#[derive(Clone, Debug)]
pub struct FilePlan {
    /// The [`Item`] of the file.
    pub item: usize,
    /// The blobs in file order.
    pub blobs: Vec<BlobSlot>,
}

impl FilePlan {
    /// The file's size once restored: the sum of its blob lengths.
    pub fn size(&self) -> u64 {
        self.blobs
            .last()
            .map_or(0, |b| b.offset + u64::from(b.length))
    }
}

/// Everything a restore will create; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
    pub files: Vec<FilePlan>,
    /// How many problems planning reported (skipped items).
    pub problems: u64,
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
    let mut planner = Planner {
        repo,
        selection,
        report,
        plan: Plan {
            selection: selection.clone(),
            ..Plan::default()
        },
        links: HashMap::new(),
        stack: vec![Frame {
            nodes: tree.nodes.into_iter(),
            seen: HashSet::new(),
            location: String::new(),
            tree: *root,
            pending: None,
            item: None,
            kept: Vec::new(),
        }],
    };
    planner.run();
    Ok(planner.plan)
}

/// One directory being walked.
struct Frame {
    nodes: std::vec::IntoIter<Node>,
    /// Names already handled in this directory (duplicates are skipped).
    seen: HashSet<OsString>,
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

struct Planner<'a> {
    repo: &'a Repository,
    selection: &'a Selection,
    report: &'a mut dyn FnMut(Problem),
    plan: Plan,
    /// First file item of each (device, inode) with more than one link.
    links: HashMap<(u64, u64), usize>,
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

    fn run(&mut self) {
        while let Some(frame) = self.stack.last_mut() {
            let Some(node) = frame.nodes.next() else {
                if let Some(done) = self.stack.pop() {
                    self.finish_dir(done);
                }
                continue;
            };
            let parent_location = frame.location.clone();
            let location = format!("{parent_location}/{}", node.name.to_string_lossy());
            if let Err(why) = check_name(&node.name) {
                self.problem(
                    format!("{}/{:?}", parent_location, node.name),
                    format!("invalid node name: {why}; skipped"),
                );
                continue;
            }
            if !frame.seen.insert(node.name.clone()) {
                self.problem(location, "duplicate name in its directory; skipped");
                continue;
            }
            self.visit(node, location);
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

    fn visit(&mut self, node: Node, location: String) {
        let kind = match node.node_type {
            // restic does not restore sockets either.
            NodeType::Socket => return self.keep(node.name),
            NodeType::Dir => return self.visit_dir(node, location),
            NodeType::File => None,
            NodeType::Symlink => Some(ItemKind::Symlink),
            NodeType::Fifo => Some(ItemKind::Fifo),
            NodeType::Dev => Some(ItemKind::BlockDevice),
            NodeType::CharDev => Some(ItemKind::CharDevice),
            NodeType::Irregular | NodeType::Other(_) => {
                let what = format!(
                    "unsupported node type {:?}; skipped",
                    node.node_type.as_str()
                );
                if self.selection.select(&location, false).0 {
                    self.problem(location, what);
                }
                return self.keep(node.name);
            }
        };
        if !self.selection.select(&location, false).0 {
            return;
        }
        match kind {
            Some(kind) => {
                self.add_item(node, kind);
            }
            None => self.visit_file(node, location),
        }
    }

    fn visit_dir(&mut self, node: Node, location: String) {
        let (selected, descend) = self.selection.select(&location, true);
        let Some(subtree) = node.subtree else {
            if selected {
                self.problem(location, "directory without subtree; skipped");
            }
            return self.keep(node.name);
        };
        if !descend {
            if selected {
                self.add_item(node, ItemKind::Dir);
            }
            return;
        }
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
        match self.repo.load_tree(&subtree) {
            Ok(tree) => self.stack.push(Frame {
                nodes: tree.nodes.into_iter(),
                seen: HashSet::new(),
                location,
                tree: subtree,
                pending,
                item,
                kept: Vec::new(),
            }),
            Err(e) => {
                self.plan.partial_dirs.extend(item);
                self.problem(location, format!("cannot load directory: {e}"));
            }
        }
    }

    fn visit_file(&mut self, mut node: Node, location: String) {
        let key = (node.device_id, node.inode);
        if node.links > 1 {
            if let Some(&first) = self.links.get(&key) {
                node.content = None;
                self.add_item(node, ItemKind::HardLink { first });
                return;
            }
        }
        let mut blobs = Vec::with_capacity(node.content().len());
        let mut offset = 0u64;
        for id in node.content() {
            let Some(entry) = self.repo.lookup(&BlobHandle::new(BlobType::Data, *id)) else {
                let message = Error::BlobNotInIndex(format!("data {id}")).to_string();
                self.problem(location, format!("{message}; file skipped"));
                return self.keep(node.name.clone());
            };
            let length = entry.plaintext_len();
            blobs.push(BlobSlot {
                id: *id,
                offset,
                length,
            });
            offset += u64::from(length);
        }
        node.content = None;
        let links = node.links;
        let content = self.plan.files.len();
        let item = self.add_item(node, ItemKind::File { content });
        self.plan.files.push(FilePlan { item, blobs });
        if links > 1 {
            self.links.insert(key, item);
        }
    }

    /// Add an item in the innermost directory, first adding the directories
    /// leading to it that are not in the plan yet.
    fn add_item(&mut self, node: Node, kind: ItemKind) -> usize {
        let mut parent = None;
        for frame in &mut self.stack {
            if let Some(dir) = frame.pending.take() {
                self.plan.items.push(Item {
                    parent,
                    kind: ItemKind::Dir,
                    node: dir,
                });
                frame.item = Some(self.plan.items.len() - 1);
            }
            parent = frame.item;
        }
        self.plan.items.push(Item { parent, kind, node });
        self.plan.items.len() - 1
    }
}
