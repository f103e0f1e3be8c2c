//! Which items of a snapshot a restore selects: everything, only what
//! `--include` patterns match, or everything but what `--exclude` patterns
//! match (restic's `SelectFilter`).
//!
//! Locations are paths inside the restored tree, `/`-separated and
//! absolute (`/home/ann/code`); with `snapshot:subfolder` they are relative
//! to the subfolder. Include and exclude patterns cannot be combined, so a
//! [`Selection`] holds one kind or none: that is the whole invariant.

use crate::filter::PatternSet;

/// What a restore selects.
#[derive(Clone, Debug, Default)]
pub enum Selection {
    /// Every item.
    #[default]
    All,
    /// Only items a pattern matches (with everything below them), and the
    /// directories leading to them.
    Include(PatternSet),
    /// Every item except those a pattern matches (and what is below them).
    Exclude(PatternSet),
}

impl Selection {
    /// Build a selection from include and exclude pattern sets (either may
    /// be empty). Fails when both hold patterns: restic refuses that too.
    pub fn new(include: PatternSet, exclude: PatternSet) -> crate::Result<Selection> {
        match (include.is_empty(), exclude.is_empty()) {
            (true, true) => Ok(Selection::All),
            (false, true) => Ok(Selection::Include(include)),
            (true, false) => Ok(Selection::Exclude(exclude)),
            (false, false) => Err(crate::Error::InvalidArgument(
                "exclude and include patterns are mutually exclusive".into(),
            )),
        }
    }

    /// `(selected, descend)` for the item at `location`: whether the item
    /// itself is restored, and (for directories) whether its children may be
    /// selected and so must be looked at.
    pub fn select(&self, location: &str, is_dir: bool) -> (bool, bool) {
        match self {
            Selection::All => (true, is_dir),
            Selection::Include(set) => {
                let (matched, child) = set.matches_with_child(location);
                (matched, child && is_dir)
            }
            Selection::Exclude(set) => {
                let selected = !set.matches(location);
                (selected, selected && is_dir)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> PatternSet {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        PatternSet::new(&patterns, false).unwrap()
    }

    #[test]
    fn include_walks_towards_matches_and_selects_below_them() {
        let sel = Selection::new(set(&["/home/ann/code"]), PatternSet::default()).unwrap();
        assert_eq!(sel.select("/home", true), (false, true));
        assert_eq!(sel.select("/home/ann", true), (false, true));
        assert_eq!(sel.select("/home/ann/code", true), (true, true));
        assert_eq!(sel.select("/home/ann/code/main.rs", false), (true, false));
        assert_eq!(sel.select("/etc", true), (false, false));
    }

    #[test]
    fn repeated_includes_are_one_set_so_negation_applies() {
        let sel = Selection::new(set(&["/src", "!/src/vendor"]), PatternSet::default()).unwrap();
        assert_eq!(sel.select("/src/main.rs", false), (true, false));
        assert_eq!(sel.select("/src/vendor", true), (false, false));
        assert!(!sel.select("/src/vendor/x.rs", false).0);
    }

    #[test]
    fn exclude_skips_matches_and_their_contents() {
        let sel = Selection::new(PatternSet::default(), set(&["*.o", "/tmp"])).unwrap();
        assert_eq!(sel.select("/src/a.o", false), (false, false));
        assert_eq!(sel.select("/tmp", true), (false, false));
        assert_eq!(sel.select("/src", true), (true, true));
        assert_eq!(sel.select("/src/a.c", false), (true, false));
    }

    #[test]
    fn include_and_exclude_cannot_be_combined() {
        assert!(Selection::new(set(&["/a"]), set(&["/b"])).is_err());
        assert!(matches!(
            Selection::new(PatternSet::default(), PatternSet::default()),
            Ok(Selection::All)
        ));
    }
}
