//! [`Observed`]: a backend that shows every successful operation to a
//! callback after passing it on to the backend it wraps.
//!
//! For tests and measurements that count what a component reads (pack
//! bytes, ranged reads) or that make something happen between two
//! operations (another process's lock appearing right after ours is
//! written). The callback runs after the operation returned `Ok`, on the
//! calling thread; it may call back into the same backend.

use super::{Backend, FileInfo, FileType};
use crate::error::Result;

/// A successful backend operation, as an [`Observed`] backend reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    List(FileType),
    /// A whole-file read that returned `length` bytes.
    Read {
        tpe: FileType,
        name: &'a str,
        length: u64,
    },
    /// A ranged read at `offset` that returned `length` bytes.
    ReadRange {
        tpe: FileType,
        name: &'a str,
        offset: u64,
        length: u64,
    },
    Write {
        tpe: FileType,
        name: &'a str,
        length: u64,
    },
    Remove {
        tpe: FileType,
        name: &'a str,
    },
    Stat {
        tpe: FileType,
        name: &'a str,
    },
}

/// See the module docs.
pub struct Observed<B, F> {
    inner: B,
    observe: F,
}

impl<B: Backend, F: Fn(Op<'_>) + Send + Sync> Observed<B, F> {
    /// Wrap `inner`, reporting to `observe`.
    pub fn new(inner: B, observe: F) -> Self {
        Observed { inner, observe }
    }
}

impl<B: Backend, F: Fn(Op<'_>) + Send + Sync> Backend for Observed<B, F> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<()> {
        self.inner.create()
    }

    fn list(&self, tpe: FileType) -> Result<Vec<FileInfo>> {
        let files = self.inner.list(tpe)?;
        (self.observe)(Op::List(tpe));
        Ok(files)
    }

    fn read(&self, tpe: FileType, name: &str) -> Result<Vec<u8>> {
        let data = self.inner.read(tpe, name)?;
        let length = data.len() as u64;
        (self.observe)(Op::Read { tpe, name, length });
        Ok(data)
    }

    fn read_range(&self, tpe: FileType, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let data = self.inner.read_range(tpe, name, offset, length)?;
        let length = data.len() as u64;
        (self.observe)(Op::ReadRange {
            tpe,
            name,
            offset,
            length,
        });
        Ok(data)
    }

    fn write(&self, tpe: FileType, name: &str, data: &[u8]) -> Result<()> {
        self.inner.write(tpe, name, data)?;
        let length = data.len() as u64;
        (self.observe)(Op::Write { tpe, name, length });
        Ok(())
    }

    fn remove(&self, tpe: FileType, name: &str) -> Result<()> {
        self.inner.remove(tpe, name)?;
        (self.observe)(Op::Remove { tpe, name });
        Ok(())
    }

    fn stat(&self, tpe: FileType, name: &str) -> Result<u64> {
        let size = self.inner.stat(tpe, name)?;
        (self.observe)(Op::Stat { tpe, name });
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemBackend;
    use parking_lot::Mutex;

    #[test]
    fn every_successful_operation_is_reported_after_it_happened() {
        let seen = Mutex::new(Vec::new());
        let be = Observed::new(MemBackend::new(), |op: Op<'_>| {
            seen.lock().push(format!("{op:?}"));
        });
        let (p, name) = (FileType::Pack, &"ab".repeat(32)[..]);
        be.create().unwrap();
        be.write(p, name, b"0123456789").unwrap();
        assert_eq!(be.read(p, name).unwrap().len(), 10);
        assert_eq!(be.read_range(p, name, 2, 3).unwrap(), b"234");
        assert!(be.read(p, &"cd".repeat(32)).is_err());
        assert_eq!(be.stat(p, name).unwrap(), 10);
        assert_eq!(be.list(p).unwrap().len(), 1);
        be.remove(p, name).unwrap();
        let want = [
            Op::Write {
                tpe: p,
                name,
                length: 10,
            },
            Op::Read {
                tpe: p,
                name,
                length: 10,
            },
            Op::ReadRange {
                tpe: p,
                name,
                offset: 2,
                length: 3,
            },
            Op::Stat { tpe: p, name },
            Op::List(p),
            Op::Remove { tpe: p, name },
        ];
        let want: Vec<String> = want.iter().map(|op| format!("{op:?}")).collect();
        assert_eq!(*seen.lock(), want);
    }
}
