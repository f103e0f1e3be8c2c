//! The subcommands, one module each. Every module has an `Args` struct
//! (clap) and a `run(ctx, args)` function.

use anyhow::Result;
use clap::Subcommand;

use crate::cli::Cli;
use crate::context::Context;

pub mod backup;
pub mod cat;
pub mod check;
pub mod copy;
pub mod diff;
pub mod dump;
pub mod find;
pub mod forget;
pub mod generate;
pub mod init;
pub mod key;
pub mod list;
pub mod ls;
pub mod migrate;
pub mod mount;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod rewrite;
pub mod snapshots;
pub mod stats;
pub mod tag;
pub mod unlock;
pub mod version;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Initialize a new repository
    Init(init::Args),
    /// Create a new backup of files and/or directories
    Backup(backup::Args),
    /// List all snapshots
    Snapshots(snapshots::Args),
    /// Extract the data from a snapshot
    Restore(restore::Args),
    /// List files in a snapshot
    Ls(ls::Args),
    /// Print a backed-up file to stdout, or a directory as an archive
    Dump(dump::Args),
    /// Show differences between two snapshots
    Diff(diff::Args),
    /// Find a file, a directory or restic IDs
    Find(find::Args),
    /// Scan the repository and show basic statistics
    Stats(stats::Args),
    /// Print internal objects to stdout
    Cat(cat::Args),
    /// List objects in the repository
    List(list::Args),
    /// Mount the repository
    Mount(mount::Args),
    /// Check the repository for errors
    Check(check::Args),
    /// Manage keys (passwords)
    Key(key::Args),
    /// Remove snapshots from the repository
    Forget(forget::Args),
    /// Remove unneeded data from the repository
    Prune(prune::Args),
    /// Repair the repository: index, snapshots or packs
    Repair(repair::Args),
    /// Build a new index (deprecated name of `repair index`)
    #[command(name = "rebuild-index")]
    RebuildIndex(repair::IndexArgs),
    /// Modify tags on snapshots
    Tag(tag::Args),
    /// Rewrite snapshots to exclude unwanted files
    Rewrite(rewrite::Args),
    /// Copy snapshots from one repository to another
    Copy(copy::Args),
    /// Apply migrations
    Migrate(migrate::Args),
    /// Remove locks other processes created
    Unlock(unlock::Args),
    /// Print version information
    Version(version::Args),
    /// Generate manual pages and auto-completion files (bash, fish, zsh, powershell)
    Generate(generate::Args),
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let ctx = Context::new(cli.global);
    match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Backup(a) => backup::run(&ctx, a),
        Command::Snapshots(a) => snapshots::run(&ctx, a),
        Command::Restore(a) => restore::run(&ctx, a),
        Command::Ls(a) => ls::run(&ctx, a),
        Command::Dump(a) => dump::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Find(a) => find::run(&ctx, a),
        Command::Stats(a) => stats::run(&ctx, a),
        Command::Cat(a) => cat::run(&ctx, a),
        Command::List(a) => list::run(&ctx, a),
        Command::Mount(a) => mount::run(&ctx, a),
        Command::Check(a) => check::run(&ctx, a),
        Command::Key(a) => key::run(&ctx, a),
        Command::Forget(a) => forget::run(&ctx, a),
        Command::Prune(a) => prune::run(&ctx, a),
        Command::Repair(a) => repair::run(&ctx, a),
        Command::RebuildIndex(a) => repair::run_index(&ctx, a),
        Command::Tag(a) => tag::run(&ctx, a),
        Command::Rewrite(a) => rewrite::run(&ctx, a),
        Command::Copy(a) => copy::run(&ctx, a),
        Command::Migrate(a) => migrate::run(&ctx, a),
        Command::Unlock(a) => unlock::run(&ctx, a),
        Command::Version(a) => version::run(&ctx, a),
        Command::Generate(a) => generate::run(&ctx, a),
    }
}
