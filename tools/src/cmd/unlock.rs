//! `cairn unlock`: remove stale locks (or all with `--remove-all`).

use anyhow::Result;

use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove all locks, even non-stale ones
    #[arg(long = "remove-all")]
    remove_all: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let repo = ctx.open()?;
    let n = repo.remove_locks(args.remove_all)?;
    if !ctx.global.quiet {
        println!("successfully removed {n} locks");
    }
    Ok(())
}
