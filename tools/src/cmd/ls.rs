//! `cairn ls`: list the files of a snapshot, as restic 0.14 does.
//!
//! Text output is a header line (`snapshot 1a2b3c4d of [/home] filtered by
//! [] at …):`, unless `-q`) and one absolute path per line; `-l` adds mode,
//! uid, gid, size and mtime. `--json` prints the snapshot, then one object
//! per node, one per line. `DIR` arguments restrict the listing to those
//! directories' entries (their whole subtrees with `--recursive`). Also
//! home of the helpers that print Go-formatted values (`time.Time.String`,
//! `os.FileMode.String`) shared with `restore`.

use std::io::Write;

use anyhow::{bail, Result};
use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::time::GoTime;
use cairn_core::format::tree::{Node, NodeType};
use cairn_core::id::SnapshotId;
use cairn_core::tree::select::find_snapshot;
use serde::Serialize;

use crate::cmd::snapshots::FilterArgs;
use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Use a long listing format showing size and mode
    #[arg(short, long)]
    long: bool,
    /// Include files in subfolders of the listed directories
    #[arg(long)]
    recursive: bool,
    #[command(flatten)]
    filter: FilterArgs,
    /// Snapshot to list: an ID, a unique ID prefix, or "latest"
    #[arg(value_name = "SNAPSHOT")]
    snapshot: String,
    /// Only list entries of these absolute directories
    #[arg(value_name = "DIR")]
    dirs: Vec<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let dirs = args
        .dirs
        .iter()
        .map(|d| {
            if !d.starts_with('/') {
                bail!("All path filters must be absolute, starting with a forward slash '/'");
            }
            Ok(components(d))
        })
        .collect::<Result<Vec<_>>>()?;

    let opened = ctx.open_indexed()?;
    let repo = &opened.repo;
    let (id, mut sn, sub) = find_snapshot(repo, &args.snapshot, &args.filter.filter())?;
    // `snapshot:subfolder` lists that folder as if it were the root.
    if let Some(sub) = sub.as_deref() {
        sn.tree = crate::cmd::restore::subfolder_tree(repo, &id, &sn.tree, sub)?;
    }

    let mut out = std::io::stdout().lock();
    if ctx.json() {
        let line = LsSnapshot {
            snapshot: &sn,
            id: id.to_hex(),
            short_id: id.short(),
            struct_type: "snapshot",
        };
        serde_json::to_writer(&mut out, &line)?;
        writeln!(out)?;
    } else if !ctx.global.quiet {
        writeln!(
            out,
            "snapshot {} of {} filtered by {} at {}):",
            id.short(),
            go_list(&sn.paths),
            go_list(&args.dirs),
            go_time_string(&sn.time)
        )?;
    }

    let mut io_error = None;
    let walked = cairn_core::tree::walk(
        repo,
        &sn.tree,
        &mut |entry| {
            let path = format!("/{}", entry.path.to_string_lossy());
            let comps = components(&path);
            // restic: print what is within a DIR; descend into what is
            // within one (with --recursive) or leads to one.
            let within = dirs.is_empty() || dirs.iter().any(|d| has_prefix(d, &comps));
            let approaching = dirs.is_empty() || dirs.iter().any(|d| has_prefix(&comps, d));
            if within {
                let printed = if ctx.json() {
                    serde_json::to_writer(&mut out, &LsNode::new(&path, &entry.node))
                        .map_err(std::io::Error::from)
                        .and_then(|()| writeln!(out))
                } else {
                    writeln!(out, "{}", format_node(&path, &entry.node, args.long))
                };
                if let Err(e) = printed {
                    io_error = Some(e);
                    return Err(cairn_core::Error::Interrupted);
                }
            }
            Ok((within && args.recursive) || approaching)
        },
        &mut |dir, name, why| {
            let dir = format!("/{}", dir.to_string_lossy());
            eprintln!("skipping {:?} in {dir}: {why}", name);
        },
    );
    match (walked, io_error) {
        (_, Some(e)) => Err(e.into()),
        (Err(e), None) => Err(e.into()),
        (Ok(()), None) => Ok(()),
    }
}

/// The components of a `/`-separated path, cleaned like Go's `path.Clean`.
fn components(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

/// restic's `fs.HasPathPrefix(base, p)`: `p` is `base` or below it.
fn has_prefix(base: &[String], p: &[String]) -> bool {
    p.len() >= base.len() && base.iter().zip(p).all(|(a, b)| a == b)
}

/// A Go `[]string` printed with `%v`: `[a b c]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `time.Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
/// Zone abbreviations are not available portably; like Go for a zone
/// without a name, the offset stands in for it (`UTC` for offset 0).
pub fn go_time_string(t: &GoTime) -> String {
    let dt = t.as_datetime();
    let nanos = dt.timestamp_subsec_nanos().min(999_999_999);
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let offset = dt.offset().local_minus_utc() / 60;
    let sign = if offset < 0 { '-' } else { '+' };
    let zone = format!("{sign}{:02}{:02}", offset.abs() / 60, offset.abs() % 60);
    let name = if offset == 0 {
        "UTC".to_string()
    } else {
        zone.clone()
    };
    format!("{}{frac} {zone} {name}", dt.format("%Y-%m-%d %H:%M:%S"))
}

/// restic's `Snapshot.String()`: `<Snapshot 1a2b3c4d of [/home] at … by
/// user@host>`.
pub fn snapshot_string(id: &SnapshotId, sn: &Snapshot) -> String {
    format!(
        "<Snapshot {} of {} at {} by {}@{}>",
        id.short(),
        go_list(&sn.paths),
        go_time_string(&sn.time),
        sn.username,
        sn.hostname
    )
}

// Go's os.FileMode type bits, for the long format.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_NAMED_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_CHAR_DEVICE: u32 = 1 << 21;

/// Go's `os.FileMode.String()`, e.g. `drwxr-xr-x`, `-rwsr-xr-x` is
/// `urwxr-xr-x` in Go.
pub fn go_mode_string(mode: u32) -> String {
    const TYPES: &[u8; 13] = b"dalTLDpSugct?";
    let mut s = String::with_capacity(14);
    for (i, c) in TYPES.iter().enumerate() {
        if mode & (1 << (31 - i)) != 0 {
            s.push(char::from(*c));
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    for (i, c) in b"rwxrwxrwx".iter().enumerate() {
        s.push(if mode & (1 << (8 - i)) != 0 {
            char::from(*c)
        } else {
            '-'
        });
    }
    s
}

/// One line of text output (restic's `formatNode`).
pub(crate) fn format_node(path: &str, node: &Node, long: bool) -> String {
    if !long {
        return path.to_string();
    }
    let (type_bits, target) = match node.node_type {
        NodeType::Dir => (GO_DIR, String::new()),
        NodeType::Symlink => (
            GO_SYMLINK,
            format!(" -> {}", node.link_target.to_string_lossy()),
        ),
        NodeType::Dev => (GO_DEVICE, String::new()),
        NodeType::CharDev => (GO_DEVICE | GO_CHAR_DEVICE, String::new()),
        NodeType::Fifo => (GO_NAMED_PIPE, String::new()),
        NodeType::Socket => (GO_SOCKET, String::new()),
        _ => (0, String::new()),
    };
    format!(
        "{} {:>5} {:>5} {:>6} {} {path}{target}",
        go_mode_string(type_bits | node.mode),
        node.uid,
        node.gid,
        node.size,
        node.mtime.to_local().format("%Y-%m-%d %H:%M:%S"),
    )
}

/// The snapshot line of `ls --json`.
#[derive(Serialize)]
struct LsSnapshot<'a> {
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    id: String,
    short_id: String,
    struct_type: &'static str,
}

/// A node line of `ls --json` (restic's `lsNodeJSON`).
#[derive(Serialize)]
struct LsNode<'a> {
    name: String,
    #[serde(rename = "type")]
    node_type: &'a str,
    path: &'a str,
    uid: u32,
    gid: u32,
    /// Regular files only, even when 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "is_zero")]
    mode: u32,
    permissions: String,
    mtime: GoTime,
    atime: GoTime,
    ctime: GoTime,
    struct_type: &'static str,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl<'a> LsNode<'a> {
    fn new(path: &'a str, node: &'a Node) -> Self {
        LsNode {
            name: node.name.to_string_lossy().into_owned(),
            node_type: node.node_type.as_str(),
            path,
            uid: node.uid,
            gid: node.gid,
            size: node.is_file().then_some(node.size),
            mode: node.mode,
            permissions: go_mode_string(node.mode),
            mtime: node.mtime,
            atime: node.atime,
            ctime: node.ctime,
            struct_type: "node",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings_like_go() {
        assert_eq!(go_mode_string(0o644), "-rw-r--r--");
        assert_eq!(go_mode_string(GO_DIR | 0o755), "drwxr-xr-x");
        assert_eq!(go_mode_string(GO_SYMLINK | 0o777), "Lrwxrwxrwx");
        assert_eq!(go_mode_string((1 << 23) | 0o755), "urwxr-xr-x");
        assert_eq!(go_mode_string(GO_DIR | (1 << 20) | 0o777), "dtrwxrwxrwx");
        assert_eq!(
            go_mode_string(GO_DEVICE | GO_CHAR_DEVICE | 0o666),
            "Dcrw-rw-rw-"
        );
    }

    #[test]
    fn time_strings_like_go() {
        let t = GoTime::parse("2022-08-25T10:11:12.1234Z").unwrap();
        assert_eq!(go_time_string(&t), "2022-08-25 10:11:12.1234 +0000 UTC");
        let t = GoTime::parse("2022-08-25T10:11:12+02:00").unwrap();
        assert_eq!(go_time_string(&t), "2022-08-25 10:11:12 +0200 +0200");
    }

    #[test]
    fn dir_filters_like_restic() {
        let dir = components("/home/ann/");
        assert_eq!(dir, vec!["home", "ann"]);
        assert!(has_prefix(&dir, &components("/home/ann/x")));
        assert!(has_prefix(&dir, &components("/home/ann")));
        assert!(!has_prefix(&dir, &components("/home/anna")));
        assert!(has_prefix(&components("/home"), &dir));
        assert_eq!(go_list(&[]), "[]");
        assert_eq!(go_list(&["/a".into(), "/b".into()]), "[/a /b]");
    }

    #[test]
    fn long_format_and_json_node() {
        let mut node = Node::new("link", NodeType::Symlink);
        node.mode = GO_SYMLINK | 0o777;
        node.uid = 1000;
        node.link_target = "target".into();
        let line = format_node("/x/link", &node, true);
        assert!(line.starts_with("Lrwxrwxrwx  1000     0      0 "), "{line}");
        assert!(line.ends_with(" /x/link -> target"), "{line}");

        let mut file = Node::new("f", NodeType::File);
        file.mode = 0o600;
        let json = serde_json::to_value(LsNode::new("/f", &file)).unwrap();
        assert_eq!(json["size"], 0);
        assert_eq!(json["permissions"], "-rw-------");
        assert_eq!(json["struct_type"], "node");
        assert_eq!(json["mtime"], "0001-01-01T00:00:00Z");
        let dir = Node::new("d", NodeType::Dir);
        let json = serde_json::to_value(LsNode::new("/d", &dir)).unwrap();
        assert!(json.get("size").is_none() && json.get("mode").is_none());
    }
}
