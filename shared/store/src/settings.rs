//! Keyplan's own record of how a log was created, kept durably beside sled's files.
//!
//! sled refuses to open a database with another compression setting or segment size than it
//! was created with, and records them in its file `conf`, which it writes without fsync: after
//! a power cut `conf` can be empty, and sled then silently accepts whatever it is given (an
//! uncompressed log opened as compressed fails with "Unknown frame descriptor"). So the store
//! keeps the settings in a file of its own, [`SETTINGS_FILE`], written durably and checked by a
//! SHA-256 line, and hands sled a fresh `conf` built from it at every open.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::durable::write_file_durably;
use crate::error::StoreError;

/// Name of the settings file in the data directory.
pub const SETTINGS_FILE: &str = "keyplan-log.settings";

/// sled's segment size for new logs (16 MiB, sled's maximum). sled writes a page to a blob
/// file of its own when it exceeds a quarter of a segment; at 16 MiB that is 4 MiB, and the
/// largest page of the log (a leaf of at most 17 records, sled's split point, each at most
/// [`crate::layout::MAX_EVENT_BYTES`] plus headers) stays below it. Logs created before this
/// keep sled's default of 512 KiB, whose 128 KiB threshold merged leaves do exceed.
pub const SEGMENT_SIZE: usize = 16 * 1024 * 1024;

/// sled's default segment size, that of logs created before [`SETTINGS_FILE`] existed.
pub const LEGACY_SEGMENT_SIZE: usize = 512 * 1024;

/// How a log was created; fixed for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// zstd compression of sled's pages.
    pub compression: bool,
    /// sled's segment size in bytes.
    pub segment_size: usize,
}

impl LogSettings {
    /// The text of the settings file: `key: value` lines, then a `sha256:` line over them.
    fn encode(&self) -> String {
        let body = format!(
            "keyplan log settings\nformat: 1\ncompression: {}\nsegment_size: {}\n",
            self.compression, self.segment_size
        );
        let digest = hex::encode(Sha256::digest(body.as_bytes()));
        format!("{body}sha256: {digest}\n")
    }

    fn decode(path: &Path, text: &str) -> Result<Self, StoreError> {
        let damaged = |what: &str| {
            StoreError::Corrupt(format!(
                "{} is damaged ({what}); it records how the log was created and must be \
                 restored from a backup, or the log recovered with `keyplan recover`",
                path.display()
            ))
        };
        let (body, digest_line) = text
            .rsplit_once("sha256: ")
            .ok_or_else(|| damaged("no checksum line"))?;
        if hex::encode(Sha256::digest(body.as_bytes())) != digest_line.trim_end() {
            return Err(damaged("checksum mismatch"));
        }
        let field = |name: &str| {
            body.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
                .ok_or_else(|| damaged(&format!("no {name} line")))
        };
        if field("format")? != "1" {
            return Err(damaged("unknown format"));
        }
        let compression = match field("compression")? {
            "true" => true,
            "false" => false,
            _ => return Err(damaged("compression is neither true nor false")),
        };
        let segment_size = field("segment_size")?
            .parse()
            .map_err(|_| damaged("segment_size is not a number"))?;
        Ok(Self {
            compression,
            segment_size,
        })
    }

    /// Reads the settings file of `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<Self>, StoreError> {
        let path = dir.join(SETTINGS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    StoreError::Corrupt(format!("{} is damaged (not text)", path.display()))
                })?;
                Self::decode(&path, &text).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the settings file of `dir` durably.
    pub fn save(&self, dir: &Path) -> Result<(), StoreError> {
        write_file_durably(&dir.join(SETTINGS_FILE), self.encode().as_bytes())?;
        Ok(())
    }
}

/// The settings of a log created before the settings file existed, read from sled's `conf`
/// (text lines such as `use_compression: true`, then a 4-byte CRC; sled treats 8 bytes or fewer
/// as no config). `None` if there is no readable `conf`.
pub(crate) fn from_sled_conf(dir: &Path) -> Result<Option<LogSettings>, StoreError> {
    let path = dir.join("conf");
    let conf = match std::fs::read(&path) {
        Ok(bytes) if bytes.len() <= 8 => return Ok(None),
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let text = String::from_utf8_lossy(&conf[..conf.len() - 4]);
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
    };
    let compression = match value("use_compression:") {
        Some("true") => true,
        Some("false") => false,
        _ => return Ok(None),
    };
    let Some(Ok(segment_size)) = value("segment_size:").map(str::parse) else {
        return Ok(None);
    };
    Ok(Some(LogSettings {
        compression,
        segment_size,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_round_trip_and_any_flipped_byte_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LogSettings {
            compression: false,
            segment_size: SEGMENT_SIZE,
        };
        settings.save(dir.path()).unwrap();
        assert_eq!(LogSettings::load(dir.path()).unwrap(), Some(settings));
        let path = dir.path().join(SETTINGS_FILE);
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            std::fs::write(&path, &bad).unwrap();
            let loaded = LogSettings::load(dir.path());
            assert!(
                matches!(loaded, Err(StoreError::Corrupt(_))),
                "flip at byte {i} gave {loaded:?}"
            );
        }
    }
}
