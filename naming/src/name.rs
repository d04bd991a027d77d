//! Zone names and `ZONE/PATH` names, checked before they reach storage.

use crate::NamingError;

/// The longest zone name.
pub const MAX_ZONE: usize = 64;
/// The longest target path inside a zone.
pub const MAX_PATH: usize = 1024;

/// Checks a zone name: 1 to 64 characters of `a-z`, `0-9`, `.`, `_`, `-`,
/// not starting with `.`.
pub fn check_zone(zone: &str) -> Result<(), NamingError> {
    let ok = !zone.is_empty()
        && zone.len() <= MAX_ZONE
        && !zone.starts_with('.')
        && zone
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(NamingError::Invalid(format!(
            "{zone:?} is not a zone name: use 1 to {MAX_ZONE} of a-z, 0-9, '.', '_', '-' \
             (not starting with '.')"
        )))
    }
}

/// Checks a target path: relative, `/`-separated, no empty, `.` or `..`
/// component, no NUL or control characters, at most 1024 bytes.
pub fn check_path(path: &str) -> Result<(), NamingError> {
    let bad = path.is_empty()
        || path.len() > MAX_PATH
        || path.chars().any(char::is_control)
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        Err(NamingError::Invalid(format!(
            "{path:?} is not a name: use a relative path like app or app/linux \
             (no empty, '.' or '..' parts, at most {MAX_PATH} bytes)"
        )))
    } else {
        Ok(())
    }
}

/// Splits `ZONE/PATH` (`release/myapp`) into a checked zone and path.
pub fn split(name: &str) -> Result<(&str, &str), NamingError> {
    let (zone, path) = name.split_once('/').ok_or_else(|| {
        NamingError::Invalid(format!("{name:?} is not ZONE/NAME (like release/myapp)"))
    })?;
    check_zone(zone)?;
    check_path(path)?;
    Ok((zone, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_zone_and_path() {
        assert_eq!(split("release/myapp").unwrap(), ("release", "myapp"));
        assert_eq!(split("release/a/b.tar").unwrap(), ("release", "a/b.tar"));
        for bad in [
            "", "release", "release/", "/x", "Rel/x", "r/../x", "r/a//b", "r/a/", "r/.", "r/a\0b",
            ".r/x",
        ] {
            assert!(split(bad).is_err(), "{bad:?}");
        }
        assert!(check_zone(&"z".repeat(65)).is_err());
        assert!(check_path(&"p".repeat(1025)).is_err());
    }
}
