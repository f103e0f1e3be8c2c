//! Backup engine tests.
