//! `cairn cat`: print internal objects (decrypted) to stdout.

use std::io::Write;

use anyhow::{bail, Context as _, Result};
use cairn_core::backend::FileType;
use cairn_core::blob::{BlobHandle, BlobType};
use cairn_core::id::{BlobId, KeyId, SnapshotId};
use cairn_core::tree::select::{find_snapshot, SnapshotFilter};

use crate::context::Context;
use crate::output::print_json_pretty;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// One of: config, index, snapshot, key, masterkey, lock, pack, blob, tree
    #[arg(value_name = "TYPE")]
    tpe: String,
    /// The object's id (for tree: snapshot[:subfolder])
    #[arg(value_name = "ID")]
    id: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let need_id = || -> Result<&str> {
        match args.id.as_deref() {
            Some(id) => Ok(id),
            None => bail!("type {:?} needs an ID", args.tpe),
        }
    };
    let opened = ctx.open_locked(cairn_core::repository::LockKind::Shared)?;
    let repo = &opened.repo;
    let mut out = std::io::stdout().lock();
    match args.tpe.as_str() {
        "config" => print_json_pretty(repo.config()),
        "masterkey" => print_json_pretty(repo.key()),
        "key" => {
            let id = KeyId(repo.find_id(FileType::Key, need_id()?)?);
            print_json_pretty(&repo.load_key_file(&id)?)
        }
        "snapshot" => {
            let id = SnapshotId(repo.find_id(FileType::Snapshot, need_id()?)?);
            print_json_pretty(&repo.load_snapshot(&id)?)
        }
        "index" | "lock" => {
            let tpe = if args.tpe == "index" { FileType::Index } else { FileType::Lock };
            let id = repo.find_id(tpe, need_id()?)?;
            let plain = repo.load_unpacked(tpe, &id.to_hex())?;
            let value: serde_json::Value =
                serde_json::from_slice(&plain).with_context(|| format!("{} {id} is not JSON", args.tpe))?;
            print_json_pretty(&value)
        }
        "pack" => {
            let id = repo.find_id(FileType::Pack, need_id()?)?;
            let data = repo.backend().read(FileType::Pack, &id.to_hex())?;
            if cairn_core::Id::hash(&data) != id {
                bail!("pack {id}: content hash does not match its id: the pack is corrupted");
            }
            out.write_all(&data)?;
            Ok(())
        }
        "blob" => {
            repo.load_index()?;
            let id = BlobId(cairn_core::Id::from_hex(need_id()?)?);
            for tpe in [BlobType::Data, BlobType::Tree] {
                if repo.lookup(&BlobHandle::new(tpe, id)).is_some() {
                    out.write_all(&repo.load_blob(tpe, &id)?)?;
                    return Ok(());
                }
            }
            bail!("blob {id} not found")
        }
        "tree" => {
            repo.load_index()?;
            let (_, sn, sub) = find_snapshot(repo, need_id()?, &SnapshotFilter::default())?;
            let tree_id = match sub.as_deref() {
                None | Some("") | Some("/") => sn.tree,
                Some(path) => cairn_core::tree::resolve_path(repo, &sn.tree, path)?
                    .and_then(|n| n.subtree)
                    .with_context(|| format!("path {path} is not a directory"))?,
            };
            out.write_all(&repo.load_blob(BlobType::Tree, &BlobId::from(tree_id))?)?;
            Ok(())
        }
        other => bail!("invalid type {other:?} (want config, index, snapshot, key, masterkey, lock, pack, blob or tree)"),
    }
}
