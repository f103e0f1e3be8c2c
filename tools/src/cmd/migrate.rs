//! `cairn migrate`: list or apply repository migrations. The one migration
//! is restic's `upgrade_repo_v2`: a v1 repository becomes v2 (compression
//! allowed for new data) after its structure checks out.

use anyhow::{bail, Result};
use cairn_core::maintenance::check::{self, CheckOptions};
use cairn_core::repository::LockKind;

use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Migrations to apply (none: list the available ones)
    #[arg(value_name = "name")]
    names: Vec<String>,
    /// Apply a migration even if it is not recommended
    #[arg(short, long)]
    force: bool,
}

const UPGRADE_V2: &str = "upgrade_repo_v2";

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let _lock = repo.lock(LockKind::Exclusive)?;
    if args.names.is_empty() {
        println!("available migrations:");
        if repo.version() < 2 {
            println!("  {UPGRADE_V2}\tupgrade a repository to version 2");
        }
        return Ok(());
    }
    for name in &args.names {
        if name != UPGRADE_V2 {
            bail!("migration {name} not found");
        }
        if repo.version() >= 2 {
            if args.force {
                println!("repository is already at version {}", repo.version());
                continue;
            }
            bail!("migration {UPGRADE_V2} cannot be applied: repository is already upgraded to version {}", repo.version());
        }
        println!("checking repository before the migration");
        let report = check::check(&repo, &CheckOptions::default(), &mut |_| {})?;
        if !report.is_ok() {
            for f in report.errors() {
                eprintln!("{f}");
            }
            bail!("the repository has errors: fix them before upgrading it");
        }
        println!("applying migration {UPGRADE_V2}");
        let mut config = repo.config().clone();
        config.version = 2;
        repo.replace_config(&config)?;
    }
    Ok(())
}
