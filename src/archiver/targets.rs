//! The shape of a snapshot's tree, decided from the backup targets before
//! anything is read (restic's `archiver.Tree`).
//!
//! Each target contributes its path components from the file system root
//! down: `/tmp/x/y` becomes `tmp` → `x` → `y`, where `tmp` and `x` are
//! *intermediate* directories (their own metadata is saved, but only the
//! listed children) and `y` is a *leaf* (saved completely). A relative
//! target keeps its relative components, as in restic: `src/d1` becomes
//! `src` → `d1`, with `src` read from the working directory. Two top-level
//! names that come from different roots (`/tmp` and a relative `tmp`) are
//! told apart as `tmp` and `tmp-1`.
//!
//! Invariants after [`TargetTree::new`]: a node is either a leaf (`path`
//! set, no children) or intermediate (`info_path` set, children). A target
//! that is also the parent of another target is *unrolled*: it becomes
//! intermediate and every entry of its directory becomes a leaf, so the
//! result is the same as backing up the parent alone.
//!
//! All paths stored here are absolute and cleaned (relative targets are
//! resolved against the working directory given to [`TargetTree::new`]).

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::path::{absolute, clean, components, join, root_directory};
use crate::error::{Error, Result};

/// One node of the target tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetTree {
    /// Children by name, in byte order.
    pub nodes: BTreeMap<OsString, TargetTree>,
    /// Leaf: back up everything at this path.
    pub path: Option<PathBuf>,
    /// Intermediate: the directory whose metadata this node gets.
    pub info_path: Option<PathBuf>,
    /// restic's `Root` of a top-level node (`/`, `.`, `..`, …) as written,
    /// to tell apart equal names from different roots.
    root: Vec<u8>,
}

impl TargetTree {
    /// The tree for `targets` (as given on the command line), relative
    /// ones resolved against `cwd`. Duplicate targets are ignored.
    pub fn new(targets: &[PathBuf], cwd: &Path) -> Result<TargetTree> {
        let mut tree = TargetTree::default();
        let mut seen = HashSet::new();
        for target in targets {
            let cleaned = clean(target.as_os_str().as_bytes());
            if seen.insert(cleaned.clone()) {
                tree.add(&cleaned, cwd)?;
            }
        }
        tree.unroll()?;
        Ok(tree)
    }

    /// True for a leaf node.
    pub fn is_leaf(&self) -> bool {
        self.path.is_some()
    }

    /// Add one cleaned target at the top level.
    fn add(&mut self, target: &[u8], cwd: &Path) -> Result<()> {
        let comps = components(target);
        let Some(first) = comps.first() else {
            return Err(invalid(target, "invalid path (no path components)"));
        };
        let root = root_directory(target);
        let abs_target = absolute(Path::new(std::ffi::OsStr::from_bytes(target)), cwd);
        let abs_root = absolute(Path::new(std::ffi::OsStr::from_bytes(&root)), cwd);

        let mut name = first.clone();
        let mut suffix = 0u64;
        let mut node = TargetTree {
            root: root.clone(),
            ..TargetTree::default()
        };
        loop {
            let key = OsString::from_vec(name.clone());
            let Some(other) = self.nodes.get(&key) else {
                break;
            };
            suffix += 1;
            if other.root == root {
                node = self.nodes.remove(&key).unwrap_or_default();
                break;
            }
            name = first.clone();
            name.extend_from_slice(format!("-{suffix}").as_bytes());
        }

        if comps.len() > 1 {
            let subroot = join(&abs_root, std::ffi::OsStr::from_bytes(first));
            node.add_below(&abs_target, &subroot, &comps[1..])?;
            node.info_path = Some(subroot);
        } else {
            node.path = Some(abs_target);
        }
        self.nodes.insert(OsString::from_vec(name), node);
        Ok(())
    }

    /// Add the remaining components `comps` of `target` below this node,
    /// whose directory is `dir`.
    fn add_below(&mut self, target: &Path, dir: &Path, comps: &[Vec<u8>]) -> Result<()> {
        let Some((first, rest)) = comps.split_first() else {
            return Err(invalid(target.as_os_str().as_bytes(), "invalid path"));
        };
        let name = OsString::from_vec(first.clone());
        if rest.is_empty() {
            let node = self.nodes.entry(name).or_default();
            if node.path.is_some() {
                return Err(invalid(
                    target.as_os_str().as_bytes(),
                    "path is already set for target",
                ));
            }
            node.path = Some(target.to_path_buf());
            return Ok(());
        }
        let subdir = join(dir, &name);
        let node = self.nodes.entry(name).or_default();
        node.info_path = Some(subdir.clone());
        node.add_below(target, &subdir, rest)
    }

    /// Turn leaves that have children (a target inside another target)
    /// into intermediate nodes listing their whole directory.
    fn unroll(&mut self) -> Result<()> {
        if let (Some(dir), false) = (&self.path, self.nodes.is_empty()) {
            let dir = dir.clone();
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| Error::io(format!("open {}", dir.display()), e))?;
            for entry in entries {
                let entry =
                    entry.map_err(|e| Error::io(format!("readdir {}", dir.display()), e))?;
                let name = entry.file_name();
                let path = join(&dir, &name);
                let node = self.nodes.entry(name).or_default();
                match &node.path {
                    None => node.path = Some(path),
                    Some(existing) if *existing == path => {}
                    _ => {
                        return Err(invalid(
                            path.as_os_str().as_bytes(),
                            "tree unrollTree: collision on path",
                        ))
                    }
                }
            }
            self.info_path.get_or_insert(dir);
            self.path = None;
        }
        for node in self.nodes.values_mut() {
            node.unroll()?;
        }
        Ok(())
    }
}

/// restic's `resolveRelativeTargets`: every target cleaned, and a target
/// without path components (`.`, `..`, `/`) replaced by the entries of that
/// directory (read relative to `cwd`), in byte order.
pub fn resolve_relative_targets(targets: &[PathBuf], cwd: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::with_capacity(targets.len());
    for target in targets {
        let cleaned = PathBuf::from(OsString::from_vec(clean(target.as_os_str().as_bytes())));
        if !components(cleaned.as_os_str().as_bytes()).is_empty() {
            out.push(cleaned);
            continue;
        }
        let mut names = Vec::new();
        let dir = absolute(&cleaned, cwd);
        let entries =
            std::fs::read_dir(&dir).map_err(|e| Error::io(format!("open {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("readdir {}", dir.display()), e))?;
            names.push(entry.file_name());
        }
        names.sort();
        out.extend(names.iter().map(|n| join(&cleaned, n)));
    }
    Ok(out)
}

fn invalid(path: &[u8], reason: &str) -> Error {
    Error::InvalidPath {
        path: PathBuf::from(OsString::from_vec(path.to_vec())),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(targets: &[&str], cwd: &Path) -> TargetTree {
        let targets: Vec<PathBuf> = targets.iter().map(PathBuf::from).collect();
        TargetTree::new(&targets, cwd).unwrap()
    }

    fn names(t: &TargetTree) -> Vec<String> {
        t.nodes
            .keys()
            .map(|k| k.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn absolute_targets_share_intermediate_directories() {
        let t = tree(&["/tmp/a/d1", "/tmp/a/d2", "/etc"], Path::new("/"));
        assert_eq!(names(&t), ["etc", "tmp"]);
        assert_eq!(
            t.nodes["etc".as_ref() as &std::ffi::OsStr].path,
            Some("/etc".into())
        );
        let tmp = &t.nodes[std::ffi::OsStr::new("tmp")];
        assert_eq!(tmp.info_path, Some("/tmp".into()));
        let a = &tmp.nodes[std::ffi::OsStr::new("a")];
        assert_eq!(a.info_path, Some("/tmp/a".into()));
        assert_eq!(names(a), ["d1", "d2"]);
        assert_eq!(
            a.nodes[std::ffi::OsStr::new("d2")].path,
            Some("/tmp/a/d2".into())
        );
    }

    #[test]
    fn relative_targets_keep_relative_shape_and_conflicts_get_suffixes() {
        let t = tree(&["src/d1", "/src", "../src"], Path::new("/home/u/w"));
        // "src/d1" (root "."), "/src" (root "/"), "../src" (root "..").
        assert_eq!(names(&t), ["src", "src-1", "src-2"]);
        let rel = &t.nodes[std::ffi::OsStr::new("src")];
        assert_eq!(rel.info_path, Some("/home/u/w/src".into()));
        assert_eq!(
            rel.nodes[std::ffi::OsStr::new("d1")].path,
            Some("/home/u/w/src/d1".into())
        );
        assert_eq!(
            t.nodes[std::ffi::OsStr::new("src-1")].path,
            Some("/src".into())
        );
        assert_eq!(
            t.nodes[std::ffi::OsStr::new("src-2")].path,
            Some("/home/u/src".into())
        );
    }

    #[test]
    fn nested_targets_are_unrolled_and_duplicates_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir(base.join("sub")).unwrap();
        std::fs::write(base.join("f"), b"x").unwrap();
        for order in [
            [base.to_path_buf(), base.join("sub")],
            [base.join("sub"), base.to_path_buf()],
        ] {
            let mut targets = order.to_vec();
            targets.push(base.join("sub"));
            let t = TargetTree::new(&targets, Path::new("/")).unwrap();
            // Walk down to the temp dir.
            let mut node = &t;
            for comp in components(base.as_os_str().as_bytes()) {
                node = &node.nodes[&OsString::from_vec(comp)];
            }
            assert!(!node.is_leaf());
            assert_eq!(node.info_path.as_deref(), Some(base));
            assert_eq!(names(node), ["f", "sub"]);
            assert_eq!(
                node.nodes[std::ffi::OsStr::new("f")].path,
                Some(base.join("f"))
            );
            assert_eq!(
                node.nodes[std::ffi::OsStr::new("sub")].path,
                Some(base.join("sub"))
            );
        }
    }

    #[test]
    fn targets_without_components() {
        assert!(TargetTree::new(&[PathBuf::from("/")], Path::new("/")).is_err());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b"), b"").unwrap();
        std::fs::write(dir.path().join("a"), b"").unwrap();
        let targets = [PathBuf::from("x/.."), PathBuf::from("/tmp/q/")];
        let resolved = resolve_relative_targets(&targets, dir.path()).unwrap();
        assert_eq!(
            resolved,
            [
                PathBuf::from("a"),
                PathBuf::from("b"),
                PathBuf::from("/tmp/q")
            ]
        );
    }
}
