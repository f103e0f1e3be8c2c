//! `cairn mount`: serve the repository as a read-only FUSE filesystem in
//! the foreground until Ctrl-C, SIGTERM or `umount`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::cmd::snapshots::FilterArgs;
use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    filter: FilterArgs,
    /// Use 'root' as the owner of files and dirs
    #[arg(long)]
    owner_root: bool,
    /// Allow other users to access the data in the mounted directory
    #[arg(long)]
    allow_other: bool,
    /// For 'allow-other', ignore Unix permissions and allow users to read all snapshot files
    #[arg(long)]
    no_default_permissions: bool,
    /// Set template for path names (can be specified multiple times;
    /// %i short id, %I long id, %u user, %h host, %t tags, %T time)
    #[arg(long = "path-template", value_name = "TEMPLATE")]
    path_templates: Vec<String>,
    /// Set Go time layout to use for times
    #[arg(long, value_name = "TEMPLATE", default_value = cairn_fs::timefmt::RFC3339)]
    time_template: String,
    /// Size of the data cache (bytes, or with a K/M/G suffix)
    #[arg(long, value_name = "SIZE", default_value = "512M")]
    cache_size: String,
    /// Do not show the history/ view
    #[arg(long)]
    no_history: bool,
    /// Threads serving FUSE requests (default: number of CPUs, 2..8)
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Where to mount the repository
    #[arg(value_name = "MOUNTPOINT")]
    mountpoint: PathBuf,
}

/// Parse `1024`, `64K`, `512M`, `2G` (binary units).
fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => bail!("invalid size {s:?}: unknown unit {c:?}"),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = num
        .trim()
        .parse()
        .with_context(|| format!("invalid size {s:?}"))?;
    n.checked_mul(1 << shift)
        .with_context(|| format!("size {s:?} is too large"))
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let tt = &args.time_template;
    if tt.is_empty() {
        bail!("time template string cannot be empty");
    }
    if tt.starts_with('/') || tt.ends_with('/') {
        bail!("time template string cannot start or end with '/'");
    }
    let repo_dir = ctx.repo_location().ok().and_then(|loc| {
        let path = loc.strip_prefix("local:").unwrap_or(&loc).to_string();
        (!path.contains("://")).then(|| PathBuf::from(path))
    });
    cairn_fs::check_mountpoint(&args.mountpoint, repo_dir.as_deref())?;

    let mut opts = cairn_fs::MountOptions {
        filter: args.filter.filter(),
        owner_root: args.owner_root,
        allow_other: args.allow_other,
        default_permissions: !args.no_default_permissions,
        time_template: args.time_template.clone(),
        cache_size: parse_size(&args.cache_size)?,
        history: !args.no_history,
        reload_interval: Duration::from_secs(5),
        ..Default::default()
    };
    if !args.path_templates.is_empty() {
        opts.path_templates = args.path_templates.clone();
    }
    if let Some(n) = args.threads {
        opts.fuse_threads = n.clamp(1, 64);
    }
    // Tree cache: an eighth of the data cache, at least 16 MiB.
    opts.tree_cache_size = (opts.cache_size / 8).max(16 << 20);
    opts.readahead = (opts.cache_size / 4).min(64 << 20);

    let opened = ctx.open_indexed()?;
    let (repo, _lock) = (Arc::new(opened.repo), opened.lock);
    let quiet = ctx.global.quiet;
    let mountpoint = args.mountpoint.clone();
    cairn_fs::mount(repo, &args.mountpoint, repo_dir.as_deref(), opts, || {
        if !quiet {
            println!("Now serving the repository at {}", mountpoint.display());
            println!("Use another terminal or tool to browse the contents of this folder.");
            println!("When finished, quit with Ctrl-c here or umount the mountpoint.");
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert!(parse_size("12X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
