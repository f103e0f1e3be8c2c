//! `cairn generate`: shell completions (clap_complete) and man pages
//! (clap_mangen), with restic's flags.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write bash completion file ("-" for stdout)
    #[arg(long = "bash-completion", value_name = "FILE")]
    bash: Option<PathBuf>,
    /// Write fish completion file ("-" for stdout)
    #[arg(long = "fish-completion", value_name = "FILE")]
    fish: Option<PathBuf>,
    /// Write zsh completion file ("-" for stdout)
    #[arg(long = "zsh-completion", value_name = "FILE")]
    zsh: Option<PathBuf>,
    /// Write powershell completion file ("-" for stdout)
    #[arg(long = "powershell-completion", value_name = "FILE")]
    powershell: Option<PathBuf>,
    /// Write man pages to directory
    #[arg(long = "man", value_name = "DIRECTORY")]
    man: Option<PathBuf>,
}

pub fn run(_ctx: &Context, args: Args) -> Result<()> {
    let shells = [
        (Shell::Bash, &args.bash),
        (Shell::Fish, &args.fish),
        (Shell::Zsh, &args.zsh),
        (Shell::PowerShell, &args.powershell),
    ];
    let mut did = false;
    for (shell, target) in shells {
        if let Some(path) = target {
            let mut cmd = Cli::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "cairn", &mut buf);
            write_to(path, &buf)?;
            did = true;
        }
    }
    if let Some(dir) = &args.man {
        write_man_pages(dir)?;
        did = true;
    }
    if !did {
        bail!("nothing to do, please specify at least one output file or directory");
    }
    Ok(())
}

fn write_to(path: &Path, data: &[u8]) -> Result<()> {
    if path.as_os_str() == "-" {
        std::io::stdout().write_all(data)?;
        return Ok(());
    }
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let root = Cli::command();
    let page = |cmd: clap::Command, name: &str| -> Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut f = File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        clap_mangen::Man::new(cmd).render(&mut f)?;
        println!("writing man page {}", path.display());
        Ok(())
    };
    for sub in root.get_subcommands() {
        let name = format!("cairn-{}", sub.get_name());
        page(sub.clone().name(name.clone()), &name)?;
    }
    page(root, "cairn")
}
