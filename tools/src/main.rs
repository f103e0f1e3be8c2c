//! `cairn`: a restic-compatible backup tool.
//!
//! Parses the command line, runs one command, and maps errors to restic's
//! exit codes: 0 success, 1 fatal error, 3 a snapshot was made but some
//! files could not be read. A closed stdout (`cairn ls | head`) is not an
//! error.

mod allocator;
mod cli;
mod cmd;
mod context;
mod output;

use std::process::ExitCode;

use clap::Parser;

use cli::Cli;

/// Exit status for "backup made, but some files were unreadable"; also used
/// by restore/check for "finished, but with errors".
pub const EXIT_INCOMPLETE: u8 = 3;

/// An error that carries its own exit code (e.g. 3 for an incomplete
/// backup), already reported to the user.
#[derive(Debug)]
pub struct ExitStatus(pub u8);

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitStatus {}

fn main() -> ExitCode {
    // restic probes whether the process holding a lock on this host is alive
    // by sending it SIGHUP; the default action would kill us and leave our
    // lock behind. A registered (no-op) handler keeps us alive.
    if let Err(e) = signal_hook::flag::register(
        signal_hook::consts::SIGHUP,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    ) {
        eprintln!("warning: cannot handle SIGHUP: {e}");
    }
    let cli = Cli::parse();
    let level = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => log::LevelFilter::Error,
        (false, 0) => log::LevelFilter::Warn,
        (false, 1) => log::LevelFilter::Info,
        (false, 2) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .parse_env("CAIRN_LOG")
        .format_timestamp(None)
        .format_target(false)
        .init();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(status) = err.downcast_ref::<ExitStatus>() {
                return ExitCode::from(status.0);
            }
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("Fatal: {}", one_line(&err));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, as restic prints fatal errors.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
