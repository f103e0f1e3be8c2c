//! `cairn tag`: set, add or remove snapshot tags, as restic's `tag`. A
//! changed snapshot is saved as a new file (its `original` pointing at the
//! first snapshot of the chain) and the old file is removed afterwards.

use anyhow::{bail, Result};
use cairn_core::backend::FileType;
use cairn_core::format::snapshot::parse_tag_list;
use cairn_core::repository::LockKind;

use crate::cmd::snapshots::FilterArgs;
use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    filter: FilterArgs,
    /// Tags which will replace the existing tags in the format `tag[,tag,...]` (can be given multiple times)
    #[arg(long = "set", value_name = "tags")]
    set: Vec<String>,
    /// Tags which will be added to the existing tags in the format `tag[,tag,...]` (can be given multiple times)
    #[arg(long = "add", value_name = "tags")]
    add: Vec<String>,
    /// Tags which will be removed from the existing tags in the format `tag[,tag,...]` (can be given multiple times)
    #[arg(long = "remove", value_name = "tags")]
    remove: Vec<String>,
    /// Snapshot IDs to change (default: all matching the filters)
    #[arg(value_name = "snapshot ID")]
    ids: Vec<String>,
}

fn flatten(lists: &[String]) -> Vec<String> {
    lists
        .iter()
        .flat_map(|l| parse_tag_list(l))
        .filter(|t| !t.is_empty())
        .collect()
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    if args.set.is_empty() && args.add.is_empty() && args.remove.is_empty() {
        bail!("nothing to do");
    }
    if !args.set.is_empty() && (!args.add.is_empty() || !args.remove.is_empty()) {
        bail!("--set and --add/--remove cannot be given at the same time");
    }
    let (set, add, remove) = (
        flatten(&args.set),
        flatten(&args.add),
        flatten(&args.remove),
    );
    let repo = ctx.open()?;
    let _lock = repo.lock(LockKind::Exclusive)?;
    let filter = args.filter.filter();
    let targets = cairn_core::tree::select::select_snapshots(&repo, &args.ids, &filter)?;
    let mut changed = 0;
    for (id, mut sn) in targets {
        let modified = if !args.set.is_empty() {
            let differ = sn.tags != set;
            sn.tags = set.clone();
            differ
        } else {
            let added = sn.add_tags(&add);
            let removed = sn.remove_tags(&remove);
            added || removed
        };
        if !modified {
            continue;
        }
        if sn.original.is_none() {
            sn.original = Some(id);
        }
        let new = repo.save_snapshot(&sn)?;
        repo.backend().remove(FileType::Snapshot, &id.to_hex())?;
        if ctx.global.verbose >= 1 {
            println!("old snapshot ID: {id} -> new snapshot ID: {new}");
        }
        changed += 1;
    }
    if !ctx.global.quiet {
        if changed == 0 {
            println!("no snapshots were modified");
        } else {
            println!("modified tags on {changed} snapshots");
        }
    }
    Ok(())
}
