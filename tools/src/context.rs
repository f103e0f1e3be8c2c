//! Resolving what every command needs from the global options and the
//! environment: the repository location, the password, and an opened (and
//! locked) repository. No global state: commands receive a `Context`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use cairn_core::backend::{Backend, LocalBackend};
use cairn_core::compression::CompressionMode;
use cairn_core::repository::{LockGuard, LockKind, OpenOptions, Repository};

use crate::cli::GlobalArgs;

/// Read an environment variable by its restic name (`RESTIC_X`), letting
/// `CAIRN_X` take precedence. Empty values count as unset.
pub fn env(suffix: &str) -> Option<String> {
    ["CAIRN_", "RESTIC_"]
        .iter()
        .filter_map(|p| std::env::var(format!("{p}{suffix}")).ok())
        .find(|v| !v.is_empty())
}

/// What commands share: the global options, resolved lazily.
pub struct Context {
    pub global: GlobalArgs,
}

/// An open repository and the lock held on it (if any). Keep it alive for
/// as long as the repository is used.
pub struct Opened {
    pub repo: Repository,
    pub lock: Option<LockGuard>,
}

impl Context {
    pub fn new(global: GlobalArgs) -> Self {
        Context { global }
    }

    /// True for `--json`.
    pub fn json(&self) -> bool {
        self.global.json
    }

    /// The repository location from `-r`, `--repository-file` or the
    /// environment.
    pub fn repo_location(&self) -> Result<String> {
        if let Some(r) = &self.global.repo {
            return Ok(r.clone());
        }
        let file = self
            .global
            .repository_file
            .clone()
            .or_else(|| env("REPOSITORY_FILE").map(PathBuf::from));
        if let Some(file) = file {
            return read_trimmed(&file, "repository file");
        }
        if let Some(r) = env("REPOSITORY") {
            return Ok(r);
        }
        bail!("Please specify repository location (-r or --repository-file)")
    }

    /// The backend for the repository location.
    pub fn backend(&self) -> Result<Arc<dyn Backend>> {
        let location = self.repo_location()?;
        backend_for(&location)
    }

    /// The password, from (in restic's order) `--password-command`,
    /// `--password-file`, `RESTIC_PASSWORD`, or a prompt on a terminal.
    pub fn password(&self) -> Result<String> {
        let command = self
            .global
            .password_command
            .clone()
            .or_else(|| env("PASSWORD_COMMAND"));
        let file = self
            .global
            .password_file
            .clone()
            .or_else(|| env("PASSWORD_FILE").map(PathBuf::from));
        match resolve_password(command, file, env("PASSWORD"))? {
            Some(p) => Ok(p),
            None => self.prompt("enter password for repository: "),
        }
    }

    /// Ask for a password on the terminal; an error without one.
    pub fn prompt(&self, prompt: &str) -> Result<String> {
        if !std::io::stdin().is_terminal() {
            bail!("no password given: set RESTIC_PASSWORD, --password-file or --password-command (stdin is not a terminal)");
        }
        let p = rpassword::prompt_password(prompt).context("reading password")?;
        if p.is_empty() {
            bail!("an empty password is not allowed");
        }
        Ok(p)
    }

    /// A new password for `init` and `key add/passwd`: `--new-password-file`,
    /// else the normal password sources, else a prompt asked twice.
    pub fn new_password(&self, new_password_file: Option<&PathBuf>) -> Result<String> {
        if let Some(file) = new_password_file {
            return read_trimmed(file, "password file");
        }
        if !std::io::stdin().is_terminal() {
            return self.password();
        }
        let a = self.prompt("enter password for new repository: ")?;
        let b = self.prompt("enter password again: ")?;
        if a != b {
            bail!("passwords do not match");
        }
        Ok(a)
    }

    /// Compression mode from `--compression` or `RESTIC_COMPRESSION`.
    pub fn compression(&self) -> Result<CompressionMode> {
        match self
            .global
            .compression
            .clone()
            .or_else(|| env("COMPRESSION"))
        {
            Some(s) => s.parse().map_err(|e| anyhow::anyhow!("--compression: {e}")),
            None => Ok(CompressionMode::Auto),
        }
    }

    /// Open the repository without locking it.
    pub fn open(&self) -> Result<Repository> {
        let backend = self.backend()?;
        let password = self.password()?;
        let opts = OpenOptions {
            key_hint: self.global.key_hint.clone().or_else(|| env("KEY_HINT")),
            compression: self.compression()?,
        };
        let mut repo = Repository::open(backend, password.as_bytes(), &opts)?;
        let pack_size = match self.global.pack_size {
            Some(s) => Some(s),
            None => env("PACK_SIZE")
                .map(|s| s.parse::<usize>())
                .transpose()
                .context("RESTIC_PACK_SIZE")?,
        };
        if let Some(mib) = pack_size {
            if !(4..=128).contains(&mib) {
                bail!("--pack-size: must be between 4 and 128 MiB");
            }
            repo.set_pack_size(mib << 20);
        }
        Ok(repo)
    }

    /// Open the repository and take a lock of the given kind (none with
    /// `--no-lock`, which only read-only commands honour).
    pub fn open_locked(&self, kind: LockKind) -> Result<Opened> {
        let repo = self.open()?;
        let lock = if self.global.no_lock && kind == LockKind::Shared {
            None
        } else {
            Some(repo.lock(kind)?)
        };
        Ok(Opened { repo, lock })
    }

    /// Open, lock (shared) and load the index: what read commands need.
    pub fn open_indexed(&self) -> Result<Opened> {
        let opened = self.open_locked(LockKind::Shared)?;
        opened.repo.load_index()?;
        Ok(opened)
    }
}

/// The backend for a location string: a path or `local:PATH`.
pub fn backend_for(location: &str) -> Result<Arc<dyn Backend>> {
    let path = match location.split_once(':') {
        Some(("local", p)) => p,
        Some((scheme, _))
            if ["sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone"].contains(&scheme) =>
        {
            bail!("repository {location:?}: the {scheme} backend is not supported yet")
        }
        _ => location,
    };
    Ok(Arc::new(LocalBackend::new(path)))
}

/// A file's contents without surrounding white space (password and
/// repository files, as restic reads them).
pub fn read_trimmed(path: &std::path::Path, what: &str) -> Result<String> {
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("reading {what} {}", path.display()))?;
    Ok(s.trim().to_string())
}

/// A password from a command, a file or an environment value, in restic's
/// order; `None` when none is given. Command and file exclude each other.
pub fn resolve_password(
    command: Option<String>,
    file: Option<PathBuf>,
    env_value: Option<String>,
) -> Result<Option<String>> {
    if command.is_some() && file.is_some() {
        bail!("Password file and command are mutually exclusive options");
    }
    if let Some(command) = command {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running password command {command:?}"))?;
        if !out.status.success() {
            bail!("password command {command:?} failed: {}", out.status);
        }
        return Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ));
    }
    if let Some(file) = file {
        return read_trimmed(&file, "password file").map(Some);
    }
    Ok(env_value)
}
