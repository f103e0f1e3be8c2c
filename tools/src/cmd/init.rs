//! `cairn init`: create a repository (format v1 or v2, Rabin or FastCDC).

use anyhow::{bail, Result};
use cairn_core::crypto::kdf::KdfParams;
use cairn_core::repository::{ChunkerChoice, InitOptions, Repository};
use serde::Serialize;

use crate::context::Context;
use crate::output::print_json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Repository format version to use: 1, 2, "latest" or "stable"
    #[arg(
        long = "repository-version",
        default_value = "stable",
        value_name = "VERSION"
    )]
    repository_version: String,
    /// Content-defined chunker: "rabin" (restic's, the default) or "fastcdc"
    #[arg(long, default_value = "rabin", value_name = "CHUNKER")]
    chunker: String,
    /// File to read the password of the new repository from
    #[arg(long = "new-password-file", value_name = "FILE")]
    new_password_file: Option<std::path::PathBuf>,
}

#[derive(Serialize)]
struct InitJson<'a> {
    message_type: &'a str,
    id: String,
    repository: String,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let version = match args.repository_version.as_str() {
        "1" => 1,
        "2" | "latest" | "stable" => 2,
        other => bail!(
            "--repository-version: unsupported version {other:?} (want 1, 2, latest or stable)"
        ),
    };
    let chunker = match args.chunker.as_str() {
        "rabin" => ChunkerChoice::Rabin,
        "fastcdc" => ChunkerChoice::FastCdc,
        other => bail!("--chunker: unknown chunker {other:?} (want rabin or fastcdc)"),
    };
    let location = ctx.repo_location()?;
    let backend = ctx.backend()?;
    let password = ctx.new_password(args.new_password_file.as_ref())?;
    let opts = InitOptions {
        version,
        chunker,
        polynomial: None,
        kdf: KdfParams::default(),
        username: crate::cmd::key::username(),
        hostname: cairn_core::repository::hostname(),
    };
    let repo = Repository::init(backend, password.as_bytes(), &opts)?;
    let id = repo.config().id.clone();
    if ctx.json() {
        return print_json(&InitJson {
            message_type: "initialized",
            id,
            repository: location,
        });
    }
    if !ctx.global.quiet {
        println!(
            "created restic repository {} at {location}",
            &id[..10.min(id.len())]
        );
        println!();
        println!("Please note that knowledge of your password is required to access");
        println!("the repository. Losing your password means that your data is");
        println!("irrecoverably lost.");
    }
    Ok(())
}
