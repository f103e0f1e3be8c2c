//! `cairn key`: list, add, remove keys and change the password.

use anyhow::{bail, Result};
use cairn_core::backend::FileType;
use cairn_core::crypto::kdf::KdfParams;
use cairn_core::id::KeyId;
use cairn_core::repository::{hostname, LockKind};
use clap::Subcommand;
use serde::Serialize;

use crate::context::Context;
use crate::output::{print_json, Table};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// List keys (passwords)
    List,
    /// Add a new key (password)
    Add(NewKeyArgs),
    /// Remove a key by id
    Remove {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Change the password of the current key
    Passwd(NewKeyArgs),
}

#[derive(clap::Args, Debug)]
struct NewKeyArgs {
    /// File to read the new password from
    #[arg(long = "new-password-file", value_name = "FILE")]
    new_password_file: Option<std::path::PathBuf>,
    /// The username for the new key
    #[arg(long)]
    user: Option<String>,
    /// The hostname for the new key
    #[arg(long)]
    host: Option<String>,
}

#[derive(Serialize)]
struct KeyJson {
    current: bool,
    id: String,
    #[serde(rename = "userName")]
    user_name: String,
    #[serde(rename = "hostName")]
    host_name: String,
    created: String,
}

/// The name of the user running cairn.
pub fn username() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default()
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    match args.action {
        Action::List => {
            let opened = ctx.open_locked(LockKind::Shared)?;
            let keys = opened.repo.list_keys()?;
            let created = |k: &cairn_core::repository::KeyInfo| {
                k.created
                    .map(|c| {
                        c.with_timezone(&chrono::Local)
                            .format("%Y-%m-%d %H:%M:%S")
                            .to_string()
                    })
                    .unwrap_or_default()
            };
            if ctx.json() {
                let list: Vec<KeyJson> = keys
                    .iter()
                    .map(|k| KeyJson {
                        current: k.current,
                        id: k.id.to_hex(),
                        user_name: k.username.clone(),
                        host_name: k.hostname.clone(),
                        created: created(k),
                    })
                    .collect();
                return print_json(&list);
            }
            let mut table = Table::new(&[" ID", "User", "Host", "Created"]);
            for k in &keys {
                let mark = if k.current { "*" } else { " " };
                table.row(vec![
                    format!("{mark}{}", k.id.short()),
                    k.username.clone(),
                    k.hostname.clone(),
                    created(k),
                ]);
            }
            table.write(&mut std::io::stdout().lock())?;
            Ok(())
        }
        Action::Add(a) => {
            let opened = ctx.open_locked(LockKind::Shared)?;
            let password = ctx.new_password(a.new_password_file.as_ref())?;
            let id = opened.repo.add_key(
                password.as_bytes(),
                KdfParams::default(),
                &a.user.unwrap_or_else(username),
                &a.host.unwrap_or_else(hostname),
            )?;
            println!("saved new key as <Key {}>", id.short());
            Ok(())
        }
        Action::Remove { id } => {
            let opened = ctx.open_locked(LockKind::Exclusive)?;
            let id = KeyId(opened.repo.find_id(FileType::Key, &id)?);
            if id == opened.repo.key_id() {
                bail!("refusing to remove key currently used to access repository");
            }
            opened.repo.remove_key(&id)?;
            println!("removed key {id}");
            Ok(())
        }
        Action::Passwd(a) => {
            let mut opened = ctx.open_locked(LockKind::Exclusive)?;
            let password = ctx.new_password(a.new_password_file.as_ref())?;
            opened.repo.change_password(
                password.as_bytes(),
                KdfParams::default(),
                &a.user.unwrap_or_else(username),
                &a.host.unwrap_or_else(hostname),
            )?;
            println!("saved new key");
            Ok(())
        }
    }
}
