//! `cairn version`: the program version, like restic's.

use anyhow::Result;
use serde::Serialize;

use crate::context::Context;
use crate::output::print_json;

#[derive(clap::Args, Debug)]
pub struct Args {}

#[derive(Serialize)]
struct VersionJson<'a> {
    message_type: &'a str,
    version: &'a str,
    go_version: &'a str,
    go_os: &'a str,
    go_arch: &'a str,
}

pub fn run(ctx: &Context, _args: Args) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    if ctx.json() {
        return print_json(&VersionJson {
            message_type: "version",
            version,
            go_version: "rust",
            go_os: std::env::consts::OS,
            go_arch: std::env::consts::ARCH,
        });
    }
    println!(
        "cairn {version} compiled with rust on {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    Ok(())
}
