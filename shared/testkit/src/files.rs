//! Copies of data directories, as an operator's `cp -a` of a stopped node's makes them.

use std::path::Path;

/// Copies the directory `from` into `to` (created), files and subdirectories; returns the
/// bytes copied. Anything else (a symlink, a socket) is refused: a node's data directory holds
/// none, and copying one silently would hide that.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            bytes += copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            bytes += std::fs::copy(entry.path(), &target)?;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} is neither a file nor a directory",
                    entry.path().display()
                ),
            ));
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_tree_is_copied_whole_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("a/b")).unwrap();
        std::fs::write(from.join("top"), b"12345").unwrap();
        std::fs::write(from.join("a/b/deep"), b"678").unwrap();
        let to = dir.path().join("to");
        assert_eq!(copy_dir(&from, &to).unwrap(), 8);
        assert_eq!(std::fs::read(to.join("a/b/deep")).unwrap(), b"678");
        assert_eq!(std::fs::read(to.join("top")).unwrap(), b"12345");
        std::os::unix::fs::symlink(from.join("top"), from.join("link")).unwrap();
        let refused = copy_dir(&from, &dir.path().join("again")).unwrap_err();
        assert!(refused.to_string().contains("neither a file"), "{refused}");
    }
}
