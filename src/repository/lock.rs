//! Repository locks, compatible with restic's.
//!
//! A lock is an unpacked `locks/<id>` file naming host, user and pid. Many
//! shared locks may coexist; an exclusive lock excludes every other lock.
//! A lock is stale — and ignored — when it has not been refreshed for 30
//! minutes, or when it was made on this host by a process that no longer
//! exists. Held locks are refreshed every 5 minutes by writing a new lock
//! file and removing the old one, exactly as restic does, so restic and cairn
//! see each other's locks.
//!
//! Taking a lock is restic's protocol: look for conflicting locks, write
//! ours, look again, and on a conflict remove ours and fail. restic sleeps
//! 200 ms between writing and looking again, for object stores whose
//! listings lag behind writes. cairn looks again at once: its backends
//! (a local directory, memory) list a file as soon as `write` returns, and
//! with such a backend the second look alone excludes every race. Of two
//! processes locking at the same time, the one whose lock file appears
//! second lists the directory after the first one's appeared, sees it and
//! backs off (both may back off; never both proceed). This holds against
//! restic too, which looks again after its own write and sleep. A backend
//! with lagging listings (an object store) would need restic's pause
//! (`waitBeforeLockCheck`) back.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossbeam_channel::{bounded, Sender};

use crate::backend::{Backend, FileType};
use crate::compression::{self, CompressionMode};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::format::lock::LockFile;
use crate::format::time::GoTime;
use crate::id::{Id, LockId};

use super::Repository;

/// A lock older than this is stale (restic: 30 minutes).
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// Held locks are rewritten this often (restic: 5 minutes).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Shared (backup, restore, check…) or exclusive (prune, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// Writes lock files; owned by the refresh thread.
#[derive(Clone)]
struct LockWriter {
    backend: Arc<dyn Backend>,
    key: MasterKey,
    version: u32,
    compression: CompressionMode,
}

impl LockWriter {
    fn write(&self, lock: &LockFile) -> Result<LockId> {
        let plain = compression::encode_unpacked(&lock.to_json(), self.version, self.compression);
        let data = self.key.encrypt(&plain);
        let id = Id::hash(&data);
        self.backend.write(FileType::Lock, &id.to_hex(), &data)?;
        Ok(LockId(id))
    }
}

/// A held lock; dropping it removes the lock file.
pub struct LockGuard {
    id: Arc<parking_lot::Mutex<LockId>>,
    backend: Arc<dyn Backend>,
    stop: Option<Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl LockGuard {
    /// The id of the current lock file.
    pub fn id(&self) -> LockId {
        *self.id.lock()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let id = self.id.lock().to_hex();
        if let Err(e) = self.backend.remove(FileType::Lock, &id) {
            log::warn!("could not remove lock {id}: {e}");
        }
    }
}

/// The identity we write into our lock files.
fn this_process(exclusive: bool) -> LockFile {
    let uid = nix::unistd::getuid();
    LockFile {
        time: GoTime::now(),
        exclusive,
        hostname: hostname(),
        username: nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default(),
        pid: std::process::id() as i64,
        uid: uid.as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    }
}

/// This machine's host name, as restic records it.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// True if a lock is stale: too old, or left by a dead process on this host.
pub fn is_stale(lock: &LockFile, now: DateTime<Utc>) -> bool {
    let age = now.signed_duration_since(lock.time.to_utc());
    if age.to_std().map(|a| a > STALE_AFTER).unwrap_or(false) {
        return true;
    }
    if lock.hostname != hostname() {
        return false;
    }
    !process_exists(lock.pid)
}

fn process_exists(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        // EPERM: it exists but belongs to someone else.
        Err(_) => true,
    }
}

fn describe_lock(id: &Id, lock: &LockFile) -> String {
    format!(
        "{}by PID {} on {} by {} (UID {}, GID {})\nlock was created at {} (storage ID {})",
        if lock.exclusive { "exclusively " } else { "" },
        lock.pid,
        lock.hostname,
        lock.username,
        lock.uid,
        lock.gid,
        lock.time,
        id.short()
    )
}

impl Repository {
    fn lock_writer(&self) -> LockWriter {
        LockWriter {
            backend: self.backend.clone(),
            key: self.key.clone(),
            version: self.version(),
            compression: self.compression,
        }
    }

    /// Every lock file with its contents. Locks that vanish while being read
    /// are skipped; unreadable ones are reported as a warning and skipped.
    pub fn list_locks(&self) -> Result<Vec<(LockId, LockFile)>> {
        let mut locks = Vec::new();
        for id in self.list_ids(FileType::Lock)? {
            match self.load_json::<LockFile>(FileType::Lock, &id.to_hex()) {
                Ok(lock) => locks.push((LockId(id), lock)),
                Err(Error::NotFound(_)) => {}
                Err(e) => log::warn!("ignoring unreadable lock {}: {e}", id.short()),
            }
        }
        Ok(locks)
    }

    fn check_other_locks(&self, kind: LockKind, own: Option<LockId>) -> Result<()> {
        let now = Utc::now();
        for (id, lock) in self.list_locks()? {
            if Some(id) == own || is_stale(&lock, now) {
                continue;
            }
            if kind == LockKind::Exclusive || lock.exclusive {
                return Err(Error::Locked(describe_lock(&id.0, &lock)));
            }
        }
        Ok(())
    }

    /// Take a lock, failing at once if a conflicting non-stale lock exists.
    pub fn lock(&self, kind: LockKind) -> Result<LockGuard> {
        self.check_other_locks(kind, None)?;
        let writer = self.lock_writer();
        let exclusive = kind == LockKind::Exclusive;
        let first = writer.write(&this_process(exclusive))?;
        let guard_id = Arc::new(parking_lot::Mutex::new(first));
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let mut guard = LockGuard {
            id: guard_id.clone(),
            backend: self.backend.clone(),
            stop: Some(stop_tx),
            refresher: None,
        };
        // No pause before looking again (see the module docs). On conflict,
        // dropping the guard removes our lock file again.
        self.check_other_locks(kind, Some(first))?;
        guard.refresher = Some(std::thread::spawn(move || loop {
            match stop_rx.recv_timeout(REFRESH_INTERVAL) {
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    match writer.write(&this_process(exclusive)) {
                        Ok(new) => {
                            let old = std::mem::replace(&mut *guard_id.lock(), new);
                            if let Err(e) = writer.backend.remove(FileType::Lock, &old.to_hex()) {
                                log::warn!("could not remove old lock {}: {e}", old.short());
                            }
                        }
                        Err(e) => log::warn!("could not refresh lock: {e}"),
                    }
                }
                _ => return,
            }
        }));
        Ok(guard)
    }

    /// Remove stale locks (or, with `all`, every lock). Returns how many
    /// were removed.
    pub fn remove_locks(&self, all: bool) -> Result<usize> {
        let now = Utc::now();
        let mut removed = 0;
        for id in self.list_ids(FileType::Lock)? {
            let remove = all
                || match self.load_json::<LockFile>(FileType::Lock, &id.to_hex()) {
                    Ok(lock) => is_stale(&lock, now),
                    Err(Error::NotFound(_)) => false,
                    // restic removes locks it cannot read as well.
                    Err(_) => true,
                };
            if remove {
                match self.backend.remove(FileType::Lock, &id.to_hex()) {
                    Ok(()) => removed += 1,
                    Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;
    use crate::backend::{MemBackend, Observed, Op};
    use crate::crypto::kdf::KdfParams;
    use crate::repository::InitOptions;

    /// A hook run right after the first lock file is written: another
    /// process that passed its own first look at the same moment as we did.
    type Hook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

    /// A repository whose first lock write is followed by another host's
    /// lock of kind `theirs`.
    fn racing_repo(theirs: LockKind) -> (Hook, Repository) {
        let hook: Hook = Arc::default();
        let pending = Arc::clone(&hook);
        let be = Arc::new(Observed::new(MemBackend::new(), move |op: Op<'_>| {
            if let Op::Write {
                tpe: FileType::Lock,
                ..
            } = op
            {
                // Taken out first: the hook writes through this backend.
                let hook = pending.lock().take();
                if let Some(hook) = hook {
                    hook();
                }
            }
        }));
        let opts = InitOptions {
            kdf: KdfParams::insecure_fast(),
            ..InitOptions::default()
        };
        let repo = Repository::init(be.clone(), b"pw", &opts).unwrap();
        let writer = repo.lock_writer();
        let other = LockFile {
            hostname: format!("not-{}", hostname()),
            pid: 1,
            ..this_process(theirs == LockKind::Exclusive)
        };
        *hook.lock() = Some(Box::new(move || {
            writer.write(&other).unwrap();
        }));
        (hook, repo)
    }

    #[test]
    fn a_lock_written_during_ours_is_seen_and_ours_withdrawn() {
        for (ours, theirs) in [
            (LockKind::Exclusive, LockKind::Shared),
            (LockKind::Shared, LockKind::Exclusive),
            (LockKind::Exclusive, LockKind::Exclusive),
        ] {
            let (hook, repo) = racing_repo(theirs);
            let err = repo.lock(ours).err();
            assert!(
                matches!(err, Some(Error::Locked(_))),
                "{ours:?} against {theirs:?}: {err:?}"
            );
            // Only the other process's lock is left.
            let left = repo.list_locks().unwrap();
            assert_eq!(left.len(), 1, "{ours:?} against {theirs:?}");
            assert_ne!(left[0].1.hostname, hostname());
            assert!(hook.lock().is_none(), "the race happened");
        }
    }

    #[test]
    fn shared_locks_taken_at_once_coexist() {
        let (_, repo) = racing_repo(LockKind::Shared);
        let guard = repo.lock(LockKind::Shared).unwrap();
        assert_eq!(repo.list_locks().unwrap().len(), 2);
        drop(guard);
        assert_eq!(repo.list_locks().unwrap().len(), 1);
    }
}
