//! The subcommands, one module each. Every module has an `Args` struct
//! (clap) and a `run(ctx, args)` function.

use anyhow::Result;
use clap::Subcommand;

use crate::cli::Cli;
use crate::context::Context;

pub mod backup;
pub mod cat;
pub mod check;
pub mod generate;
pub mod init;
pub mod key;
pub mod list;
pub mod ls;
pub mod mount;
pub mod restore;
pub mod snapshots;
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
        Command::Cat(a) => cat::run(&ctx, a),
        Command::List(a) => list::run(&ctx, a),
        Command::Mount(a) => mount::run(&ctx, a),
        Command::Check(a) => check::run(&ctx, a),
        Command::Key(a) => key::run(&ctx, a),
        Command::Unlock(a) => unlock::run(&ctx, a),
        Command::Version(a) => version::run(&ctx, a),
        Command::Generate(a) => generate::run(&ctx, a),
    }
}
