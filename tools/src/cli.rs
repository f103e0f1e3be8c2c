//! The command line: global options shared by every command, and the
//! subcommands. Names, flags and environment variables follow restic so that
//! restic scripts work with `cairn` in its place; every `RESTIC_*` variable
//! may also be spelled `CAIRN_*` (the `CAIRN_` one wins).

use std::path::PathBuf;

use clap::{Args, Parser};

use crate::cmd::Command;

#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = "A fast, restic-compatible backup tool",
    long_about = "cairn backs up files into restic repositories (format v1 and v2) and reads what restic wrote."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Repository to back up to or restore from (env: RESTIC_REPOSITORY)
    #[arg(short = 'r', long = "repo", global = true, value_name = "REPOSITORY")]
    pub repo: Option<String>,

    /// Read the repository location from a file (env: RESTIC_REPOSITORY_FILE)
    #[arg(long = "repository-file", global = true, value_name = "FILE")]
    pub repository_file: Option<PathBuf>,

    /// File to read the repository password from (env: RESTIC_PASSWORD_FILE)
    #[arg(
        short = 'p',
        long = "password-file",
        global = true,
        value_name = "FILE"
    )]
    pub password_file: Option<PathBuf>,

    /// Shell command to obtain the repository password from (env: RESTIC_PASSWORD_COMMAND)
    #[arg(long = "password-command", global = true, value_name = "COMMAND")]
    pub password_command: Option<String>,

    /// Key ID of key to try decrypting first (env: RESTIC_KEY_HINT)
    #[arg(long = "key-hint", global = true, value_name = "KEY")]
    pub key_hint: Option<String>,

    /// Set output mode to JSON for commands that support it
    #[arg(long, global = true)]
    pub json: bool,

    /// Do not output comprehensive progress report
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Be verbose (specify multiple times or a level using --verbose=n)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Do not lock the repository, this allows some operations on read-only repositories
    #[arg(long = "no-lock", global = true)]
    pub no_lock: bool,

    /// Compression mode (only available for repository format version 2): auto, off or max (env: RESTIC_COMPRESSION)
    #[arg(long, global = true, value_name = "MODE")]
    pub compression: Option<String>,

    /// Set target pack size in MiB (env: RESTIC_PACK_SIZE)
    #[arg(long = "pack-size", global = true, value_name = "SIZE")]
    pub pack_size: Option<usize>,

    /// Set the cache directory (accepted for compatibility; cairn keeps no cache yet)
    #[arg(long = "cache-dir", global = true, value_name = "DIR", hide = true)]
    pub cache_dir: Option<PathBuf>,

    /// Do not use a local cache (accepted for compatibility)
    #[arg(long = "no-cache", global = true)]
    pub no_cache: bool,

    /// Set a http user agent / limits etc. are not supported; accepted options for scripts
    #[arg(long = "cleanup-cache", global = true, hide = true)]
    pub cleanup_cache: bool,
}
