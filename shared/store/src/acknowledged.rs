//! The acknowledged high-water mark: the last position the store has acknowledged, and its
//! event's hash, kept durably outside sled.
//!
//! sled's recovery stops at the first message it cannot read and serves what came before, so a
//! damaged `db` (a flipped byte, a lost write) opens as a shorter log without a word, and new
//! appends would then reuse positions that were acknowledged and published. This file is the
//! witness sled lacks: the writer updates it (and `fdatasync`s it) after each commit and before
//! answering, and the store refuses to open a log that ends before it, or whose event there has
//! another hash (see [`crate::EventStore::open`]).
//!
//! # Format
//! Two 64-byte slots, at offsets 0 and [`SLOT_STRIDE`], written in turn, so that a write torn
//! by a power cut damages only the slot being written, whose value was not yet acknowledged.
//! A slot: magic `KPACK001`, sequence (u64 LE), position (u64 LE), hash (32 bytes), then the
//! first 8 bytes of the SHA-256 of the 56 bytes before. The valid slot with the higher
//! sequence wins. The file has a fixed size, so `fdatasync` writes no metadata.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::durable::sync_dir;
use crate::error::StoreError;
use crate::layout::HASH_LEN;

/// Name of the file in the data directory.
pub const ACKNOWLEDGED_FILE: &str = "keyplan-acknowledged";

const MAGIC: &[u8; 8] = b"KPACK001";
const SLOT_LEN: usize = 64;
/// Distance between the two slots: separate disk sectors and pages.
const SLOT_STRIDE: u64 = 4096;
const FILE_LEN: u64 = 2 * SLOT_STRIDE;

/// What the store last acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Acknowledged {
    /// The last acknowledged global position (0: nothing yet).
    pub position: u64,
    /// The hash of the event at that position (zeros for position 0).
    pub hash: [u8; HASH_LEN],
}

/// The open file, written by the store's writer only.
#[derive(Debug)]
pub(crate) struct AcknowledgedFile {
    file: File,
    sequence: u64,
    sync: bool,
}

fn encode(sequence: u64, ack: &Acknowledged) -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    slot[..8].copy_from_slice(MAGIC);
    slot[8..16].copy_from_slice(&sequence.to_le_bytes());
    slot[16..24].copy_from_slice(&ack.position.to_le_bytes());
    slot[24..56].copy_from_slice(&ack.hash);
    let digest = Sha256::digest(&slot[..56]);
    slot[56..].copy_from_slice(&digest[..8]);
    slot
}

/// A slot's (sequence, value), or `None` if it does not check.
fn decode(slot: &[u8]) -> Option<(u64, Acknowledged)> {
    if slot.len() != SLOT_LEN || &slot[..8] != MAGIC {
        return None;
    }
    if Sha256::digest(&slot[..56])[..8] != slot[56..] {
        return None;
    }
    let sequence = u64::from_le_bytes(slot[8..16].try_into().ok()?);
    let position = u64::from_le_bytes(slot[16..24].try_into().ok()?);
    let hash: [u8; HASH_LEN] = slot[24..56].try_into().ok()?;
    Some((sequence, Acknowledged { position, hash }))
}

impl AcknowledgedFile {
    /// Creates the file for a new log (position 0), durably, name included.
    pub fn create(dir: &Path, sync: bool) -> Result<Self, StoreError> {
        let path = dir.join(ACKNOWLEDGED_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.set_len(FILE_LEN)?;
        let mut this = Self {
            file,
            sequence: 0,
            sync: true,
        };
        this.record(&Acknowledged::default())?;
        this.file.sync_all()?;
        sync_dir(dir)?;
        this.sync = sync;
        Ok(this)
    }

    /// Opens an existing file and reads what it says was acknowledged; `None` if there is no
    /// file.
    pub fn open(dir: &Path, sync: bool) -> Result<Option<(Self, Acknowledged)>, StoreError> {
        let path = dir.join(ACKNOWLEDGED_FILE);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut best: Option<(u64, Acknowledged)> = None;
        for offset in [0, SLOT_STRIDE] {
            let mut slot = [0u8; SLOT_LEN];
            if file.read_exact_at(&mut slot, offset).is_err() {
                continue;
            }
            if let Some(found) = decode(&slot) {
                if best.is_none_or(|(seq, _)| found.0 > seq) {
                    best = Some(found);
                }
            }
        }
        let Some((sequence, ack)) = best else {
            return Err(StoreError::Corrupt(format!(
                "{} is damaged: neither of its two records checks, so what this node \
                 acknowledged is unknown; run `keyplan recover` to rebuild the log from JetStream",
                path.display()
            )));
        };
        Ok(Some((
            Self {
                file,
                sequence,
                sync,
            },
            ack,
        )))
    }

    /// Records `ack` durably (unless syncing is off, for benchmarks only).
    pub fn record(&mut self, ack: &Acknowledged) -> std::io::Result<()> {
        let sequence = self.sequence + 1;
        let offset = (sequence % 2) * SLOT_STRIDE;
        self.file.write_all_at(&encode(sequence, ack), offset)?;
        if self.sync {
            self.file.sync_data()?;
        }
        self.sequence = sequence;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_newest_valid_slot_wins_and_a_torn_slot_falls_back_to_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = AcknowledgedFile::create(dir.path(), true).unwrap();
        let first = Acknowledged {
            position: 7,
            hash: [7; HASH_LEN],
        };
        let second = Acknowledged {
            position: 9,
            hash: [9; HASH_LEN],
        };
        file.record(&first).unwrap();
        file.record(&second).unwrap();
        let sequence = file.sequence;
        drop(file);
        let (_, read) = AcknowledgedFile::open(dir.path(), true).unwrap().unwrap();
        assert_eq!(read, second);

        // Damage the newer slot: the older value is what remains provable.
        let path = dir.path().join(ACKNOWLEDGED_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let newer = ((sequence % 2) * SLOT_STRIDE) as usize;
        bytes[newer + 20] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let (_, read) = AcknowledgedFile::open(dir.path(), true).unwrap().unwrap();
        assert_eq!(read, first);

        // Both damaged: refused, naming the file.
        let older = FILE_LEN as usize - SLOT_STRIDE as usize - newer;
        bytes[older + 3] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let err = AcknowledgedFile::open(dir.path(), true).unwrap_err();
        assert!(err.to_string().contains(ACKNOWLEDGED_FILE), "{err}");
    }
}
