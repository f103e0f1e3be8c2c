//! Mounting and serving: mountpoint checks, the FUSE session, raising the
//! kernel's read-ahead for the mount, and unmounting cleanly on SIGINT or
//! SIGTERM (or returning when someone runs `fusermount3 -u`). SIGHUP is
//! ignored: restic sends it to probe whether a lock holder is alive.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_core::repository::Repository;
use fuser::{Config, INodeNo, MountOption, Notifier, Session, SessionACL, SessionUnmounter};
use parking_lot::Mutex;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::adapter::Adapter;
use crate::error::FsError;
use crate::inode::Ino;
use crate::layer::ReadLayer;
use crate::prefetch::PageCache;
use crate::MountOptions;

/// Why a mount could not be set up or served.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mountpoint {0} does not exist")]
    Missing(PathBuf),
    #[error("mountpoint {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("mountpoint {0} is busy: something is already mounted there")]
    Busy(PathBuf),
    #[error("mountpoint {mountpoint} overlaps the repository directory {repo}; refusing to mount (the mount would read its own repository through itself)")]
    InsideRepository { mountpoint: PathBuf, repo: PathBuf },
    #[error("FUSE is not available: {0}")]
    FuseUnavailable(String),
    #[error("cannot read the repository: {0}")]
    Layer(#[from] FsError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Check a mountpoint before mounting: it exists, is a directory, has
/// nothing mounted on it, and does not overlap `repo_dir` (a local
/// repository).
pub fn check_mountpoint(mountpoint: &Path, repo_dir: Option<&Path>) -> Result<(), MountError> {
    let meta = match std::fs::metadata(mountpoint) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MountError::Missing(mountpoint.to_path_buf()))
        }
        Err(e) => {
            return Err(MountError::Io {
                what: format!("mountpoint {}", mountpoint.display()),
                source: e,
            })
        }
    };
    if !meta.is_dir() {
        return Err(MountError::NotADirectory(mountpoint.to_path_buf()));
    }
    let abs = mountpoint.canonicalize().map_err(|e| MountError::Io {
        what: format!("mountpoint {}", mountpoint.display()),
        source: e,
    })?;
    if is_mount_point(&abs) {
        return Err(MountError::Busy(abs));
    }
    if let Some(repo) = repo_dir {
        let repo = repo.canonicalize().unwrap_or_else(|_| repo.to_path_buf());
        if abs.starts_with(&repo) || repo.starts_with(&abs) {
            return Err(MountError::InsideRepository {
                mountpoint: abs,
                repo,
            });
        }
    }
    Ok(())
}

/// True if `path` (canonical) is a mount point per /proc/self/mountinfo.
fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mountinfo(mp) == wanted)
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn fuse_available() -> Result<(), MountError> {
    if !Path::new("/dev/fuse").exists() {
        return Err(MountError::FuseUnavailable(
            "/dev/fuse does not exist (load the fuse module, or give the container the device)"
                .into(),
        ));
    }
    let is_root = nix::unistd::geteuid().is_root();
    let has_fusermount = ["fusermount3", "fusermount"].iter().any(|bin| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).exists()))
    });
    if !is_root && !has_fusermount {
        return Err(MountError::FuseUnavailable(
            "fusermount3 not found (install fuse3)".into(),
        ));
    }
    Ok(())
}

/// Mount the repository at `mountpoint` and serve it until it is unmounted
/// or the process gets SIGINT/SIGTERM (then unmount). `ready` runs
/// once the mount is live. `repo_dir` is the local repository's directory,
/// if any, for the overlap check.
pub fn mount(
    repo: Arc<Repository>,
    mountpoint: &Path,
    repo_dir: Option<&Path>,
    opts: MountOptions,
    ready: impl FnOnce(),
) -> Result<(), MountError> {
    check_mountpoint(mountpoint, repo_dir)?;
    fuse_available()?;
    // Catch the signals from now on (a process-wide handler, so it does
    // not matter which thread receives them).
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|e| MountError::Io {
        what: "installing signal handlers".into(),
        source: e,
    })?;

    let fsname = format!("cairn:{}", &repo.config().id.get(..10).unwrap_or("repo"));
    let mut options = vec![
        MountOption::RO,
        MountOption::FSName(fsname),
        MountOption::Subtype("cairn".into()),
        MountOption::NoAtime,
    ];
    if opts.allow_other && opts.default_permissions {
        options.push(MountOption::DefaultPermissions);
    }
    let mut config = Config::default();
    config.mount_options = options;
    config.acl = if opts.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(opts.fuse_threads.max(1));
    config.clone_fd = true;

    let layer = ReadLayer::new(repo, opts)?;
    let page_cache = layer.page_cache_slot();
    // When the session ends because someone else unmounted (`fusermount3
    // -u`), fuser would try to unmount again and warn; taking the mount out
    // first (its unmount then fails quietly) keeps the exit clean.
    let taker: Arc<Mutex<Option<SessionUnmounter>>> = Arc::default();
    let adapter = Adapter::new(layer).on_destroy({
        let taker = taker.clone();
        move || {
            if let Some(mut u) = taker.lock().take() {
                let _ = u.unmount();
            }
        }
    });
    let mut session =
        Session::new(adapter, mountpoint, &config).map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENOENT) if !Path::new("/dev/fuse").exists() => {
                MountError::FuseUnavailable(e.to_string())
            }
            Some(libc::EBUSY) => MountError::Busy(mountpoint.to_path_buf()),
            _ => MountError::Io {
                what: format!("mounting at {}", mountpoint.display()),
                source: e,
            },
        })?;
    *taker.lock() = Some(session.unmount_callable());
    let _ = page_cache.set(Arc::new(KernelPageCache(session.notifier())));
    let mut unmounter = session.unmount_callable();
    let server = std::thread::Builder::new()
        .name("cairn-fuse".into())
        .spawn(move || session.run())
        .map_err(|e| MountError::Io {
            what: "starting the FUSE session".into(),
            source: e,
        })?;
    raise_readahead(mountpoint);
    ready();

    let target = mountpoint.to_path_buf();
    let _waiter = std::thread::Builder::new()
        .name("cairn-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                log::info!("signal {sig}: unmounting {}", target.display());
                if let Err(e) = unmounter.unmount() {
                    log::warn!(
                        "unable to unmount {} ({e}); detaching it lazily",
                        target.display()
                    );
                    lazy_unmount(&target);
                }
            }
        });
    match server.join() {
        Ok(result) => result.map_err(|e| MountError::Io {
            what: "serving the mount".into(),
            source: e,
        }),
        Err(_) => Err(MountError::Io {
            what: "serving the mount".into(),
            source: std::io::Error::other("the FUSE session thread panicked"),
        }),
    }
}

/// The kernel's page cache of this mount, filled with FUSE's
/// `notify_store`.
struct KernelPageCache(Notifier);

impl PageCache for KernelPageCache {
    fn store(&self, ino: Ino, data: &[u8]) -> bool {
        self.0.store(INodeNo(ino.0), 0, data).is_ok()
    }
}

fn lazy_unmount(target: &Path) {
    if nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).is_ok() {
        return;
    }
    let status = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(target)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        log::error!("could not unmount {}", target.display());
    }
}

/// FUSE mounts get the kernel's default read-ahead (128 KiB), which caps
/// sequential reads. As root we can raise the mount's bdi read_ahead_kb.
fn raise_readahead(mountpoint: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(mountpoint) else {
        return;
    };
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let path = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
    match std::fs::write(&path, "1024") {
        Ok(()) => log::debug!("{path} set to 1024"),
        Err(e) => log::debug!("cannot raise {path}: {e}"),
    }
}
