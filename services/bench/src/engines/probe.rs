//! One storage engine under a read model's workload, measured inside its own process so that
//! its resident memory is its own: used by `keyplan-storage-probe` (one engine per process) and
//! read back by `keyplan-bench --scenario storage-engines`, which starts one probe per engine.
//!
//! The workload is the timeline's: one record per event (about the size of a timeline entry
//! with its summary template), keyed by account, business time and position so that a page is
//! one range read; events spread over 1,000 accounts, 5 % of them logged late (business time
//! up to 30 days before their neighbours); written in batches of 1,024 events, each batch with
//! the checkpoint and made durable, as the projection runner commits. Then the engine is closed
//! and reopened, and random pages (the 50 entries before a random moment of a random account)
//! are read, cold then warm.

use std::path::Path;
use std::time::Instant;

use crate::result::{Engine, ProbeResult, CACHE_MIB};

/// Accounts the events are spread over.
const ACCOUNTS: u64 = 1000;
/// Events per durable commit.
const BATCH: u64 = 1024;
/// Entries per page.
const PAGE: usize = 50;
/// Entries per chunk in the `sled-chunks` layout (the read models' layout today).
const CHUNK: u64 = 64;
/// A deterministic xorshift generator: every engine gets the same events.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Words the summaries are made of, so that values compress about as real text does.
const WORDS: [&str; 24] = [
    "met",
    "called",
    "emailed",
    "\u{1}s:",
    "\u{1}p:",
    "about",
    "renewal",
    "pricing",
    "the",
    "rollout",
    "plan",
    "review",
    "quarterly",
    "CFO",
    "procurement",
    "in",
    "person",
    "video",
    "next",
    "step",
    "proposal",
    "pilot",
    "contract",
    "security",
];

/// One event: (key, value).
fn entry(rng: &mut Rng, position: u64) -> (u64, Vec<u8>, Vec<u8>) {
    let account = rng.next() % ACCOUNTS;
    let base = 1_700_000_000 + position as i64 * 10;
    let occurred = if rng.next() % 20 == 0 {
        base - (rng.next() % (30 * 86_400)) as i64
    } else {
        base
    };
    let mut key = Vec::with_capacity(20);
    key.extend_from_slice(&(account as u32).to_be_bytes());
    key.extend_from_slice(&((occurred as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&position.to_be_bytes());
    // A timeline entry: ids, type, actor, times, a summary template and its subjects.
    let mut value = Vec::with_capacity(192);
    value.extend_from_slice(&position.to_le_bytes());
    value.extend_from_slice(&rng.next().to_le_bytes());
    value.extend_from_slice(&rng.next().to_le_bytes());
    value.extend_from_slice(b"InteractionLogged\x08dana.kim");
    value.extend_from_slice(&occurred.to_le_bytes());
    value.extend_from_slice(&base.to_le_bytes());
    let words = 12 + rng.next() % 12;
    for _ in 0..words {
        value.extend_from_slice(WORDS[(rng.next() % WORDS.len() as u64) as usize].as_bytes());
        value.push(b' ');
    }
    value.extend_from_slice(
        format!(
            "s:stk-{:04}\x02p:kam-{:02}",
            rng.next() % 40,
            rng.next() % 8
        )
        .as_bytes(),
    );
    (account, key, value)
}

/// Resident memory of this process, MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Bytes of the files under `path`.
pub fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What each engine must do: write a durable batch, reopen, read a page.
trait Store {
    /// Writes `entries` and the checkpoint atomically, durably.
    fn commit(&mut self, entries: &[(u64, Vec<u8>, Vec<u8>)], checkpoint: u64)
        -> Result<(), Error>;
    /// The (at most) 50 entries of `account` before `before` (business time), newest first.
    fn page(&self, account: u64, before: i64) -> Result<usize, Error>;
}

fn page_bounds(account: u64, before: i64) -> (Vec<u8>, Vec<u8>) {
    let mut low = (account as u32).to_be_bytes().to_vec();
    low.extend_from_slice(&[0; 16]);
    let mut high = (account as u32).to_be_bytes().to_vec();
    high.extend_from_slice(&((before as u64) ^ (1 << 63)).to_be_bytes());
    (low, high)
}

struct SledKeys(sled::Db);

impl Store for SledKeys {
    fn commit(
        &mut self,
        entries: &[(u64, Vec<u8>, Vec<u8>)],
        checkpoint: u64,
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for (_, k, v) in entries {
            batch.insert(k.as_slice(), v.as_slice());
        }
        batch.insert(b"\xffcheckpoint".as_slice(), &checkpoint.to_be_bytes());
        self.0.apply_batch(batch)?;
        self.0.flush()?;
        Ok(())
    }

    fn page(&self, account: u64, before: i64) -> Result<usize, Error> {
        let (low, high) = page_bounds(account, before);
        let mut n = 0;
        for item in self.0.range(low..high).rev().take(PAGE) {
            let (_, v) = item?;
            n += usize::from(!v.is_empty());
        }
        Ok(n)
    }
}

/// The read models' layout today: per account, chunks of 64 entries in position order; the
/// open chunk is held in memory and rewritten at every commit that touches it.
struct SledChunks {
    db: sled::Db,
    open: Vec<(u64, Vec<u8>)>,
}

impl SledChunks {
    fn chunk_key(account: u64, chunk: u64) -> [u8; 12] {
        let mut key = [0; 12];
        key[..4].copy_from_slice(&(account as u32).to_be_bytes());
        key[4..].copy_from_slice(&chunk.to_be_bytes());
        key
    }
}

impl Store for SledChunks {
    fn commit(
        &mut self,
        entries: &[(u64, Vec<u8>, Vec<u8>)],
        checkpoint: u64,
    ) -> Result<(), Error> {
        if self.open.is_empty() {
            self.open = vec![(0, Vec::new()); ACCOUNTS as usize];
        }
        let mut touched = std::collections::BTreeSet::new();
        let mut batch = sled::Batch::default();
        for (account, k, v) in entries {
            let (count, bytes) = &mut self.open[*account as usize];
            bytes.extend_from_slice(&(k.len() as u32).to_le_bytes());
            bytes.extend_from_slice(k);
            bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
            bytes.extend_from_slice(v);
            *count += 1;
            if *count % CHUNK == 0 {
                batch.insert(
                    &Self::chunk_key(*account, *count / CHUNK - 1),
                    bytes.as_slice(),
                );
                bytes.clear();
                touched.remove(account);
            } else {
                touched.insert(*account);
            }
        }
        for account in touched {
            let (count, bytes) = &self.open[account as usize];
            batch.insert(&Self::chunk_key(account, count / CHUNK), bytes.as_slice());
        }
        batch.insert(b"\xffcheckpoint".as_slice(), &checkpoint.to_be_bytes());
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    fn page(&self, account: u64, _before: i64) -> Result<usize, Error> {
        let low = Self::chunk_key(account, 0);
        let high = Self::chunk_key(account, u64::MAX);
        let mut n = 0;
        for item in self.db.range(low..high).rev().take(2) {
            let (_, chunk) = item?;
            let mut rest: &[u8] = &chunk;
            while rest.len() >= 4 && n < PAGE {
                let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                rest = rest.get(4 + len..).ok_or("cut chunk")?;
                if rest.len() < 4 {
                    return Err("cut chunk".into());
                }
                let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                rest = rest.get(4 + len..).ok_or("cut chunk")?;
                n += 1;
            }
        }
        Ok(n)
    }
}

const TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("timeline");

struct Redb(redb::Database);

impl Store for Redb {
    fn commit(
        &mut self,
        entries: &[(u64, Vec<u8>, Vec<u8>)],
        checkpoint: u64,
    ) -> Result<(), Error> {
        let tx = self.0.begin_write()?;
        {
            let mut table = tx.open_table(TABLE)?;
            for (_, k, v) in entries {
                table.insert(k.as_slice(), v.as_slice())?;
            }
            table.insert(
                b"\xffcheckpoint".as_slice(),
                checkpoint.to_be_bytes().as_slice(),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn page(&self, account: u64, before: i64) -> Result<usize, Error> {
        use redb::ReadableDatabase;
        let (low, high) = page_bounds(account, before);
        let tx = self.0.begin_read()?;
        let table = tx.open_table(TABLE)?;
        let mut n = 0;
        for item in table
            .range(low.as_slice()..high.as_slice())?
            .rev()
            .take(PAGE)
        {
            let (_, v) = item?;
            n += usize::from(!v.value().is_empty());
        }
        Ok(n)
    }
}

struct Fjall {
    db: fjall::Database,
    entries: fjall::Keyspace,
}

impl Store for Fjall {
    fn commit(
        &mut self,
        entries: &[(u64, Vec<u8>, Vec<u8>)],
        checkpoint: u64,
    ) -> Result<(), Error> {
        let mut batch = self.db.batch();
        for (_, k, v) in entries {
            batch.insert(&self.entries, k.as_slice(), v.as_slice());
        }
        batch.insert(
            &self.entries,
            b"\xffcheckpoint".as_slice(),
            checkpoint.to_be_bytes().as_slice(),
        );
        batch.commit()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }

    fn page(&self, account: u64, before: i64) -> Result<usize, Error> {
        let (low, high) = page_bounds(account, before);
        let mut n = 0;
        for item in self.entries.range(low..high).rev().take(PAGE) {
            let v = item.value()?;
            n += usize::from(!v.is_empty());
        }
        Ok(n)
    }
}

fn open(engine: Engine, dir: &Path) -> Result<Box<dyn Store>, Error> {
    let cache = CACHE_MIB * 1024 * 1024;
    Ok(match engine {
        Engine::SledKeys | Engine::SledChunks => {
            let db = sled::Config::new().path(dir).cache_capacity(cache).open()?;
            if engine == Engine::SledKeys {
                Box::new(SledKeys(db))
            } else {
                Box::new(SledChunks {
                    db,
                    open: Vec::new(),
                })
            }
        }
        Engine::Redb => {
            std::fs::create_dir_all(dir)?;
            Box::new(Redb(
                redb::Database::builder()
                    .set_cache_size(cache as usize)
                    .create(dir.join("timeline.redb"))?,
            ))
        }
        Engine::Fjall => {
            let db = fjall::Database::builder(dir).cache_size(cache).open()?;
            let entries = db.keyspace("timeline", fjall::KeyspaceCreateOptions::default)?;
            Box::new(Fjall { db, entries })
        }
    })
}

/// Runs the workload for `engine` in `dir` with `entries` events and `pages` page reads.
pub fn run(engine: Engine, dir: &Path, entries: u64, pages: usize) -> Result<ProbeResult, Error> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut store = open(engine, dir)?;
    let mut payload_bytes = 0;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH as usize);
    for position in 1..=entries {
        let e = entry(&mut rng, position);
        payload_bytes += (e.1.len() + e.2.len()) as u64;
        batch.push(e);
        if batch.len() as u64 == BATCH || position == entries {
            store.commit(&batch, position)?;
            batch.clear();
        }
    }
    let load_s = started.elapsed().as_secs_f64();
    let rss_after_load_mib = rss_mib();
    drop(store);
    let disk_bytes = dir_bytes(dir);
    let started = Instant::now();
    let store = open(engine, dir)?;
    let reopen_s = started.elapsed().as_secs_f64();
    let rss_after_reopen_mib = rss_mib();
    let newest = 1_700_000_000 + entries as i64 * 10;
    let mut latencies = Vec::with_capacity(pages);
    let mut entries_read = 0;
    for _ in 0..pages {
        let account = rng.next() % ACCOUNTS;
        // Most pages are near the present; some go back in history.
        let before = if rng.next() % 4 == 0 {
            1_700_000_000 + (rng.next() % (entries * 10)) as i64
        } else {
            newest
        };
        let t = Instant::now();
        entries_read += store.page(account, before)? as u64;
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(ProbeResult {
        engine,
        entries,
        payload_bytes,
        load_entries_per_s: entries as f64 / load_s,
        rss_after_load_mib,
        disk_bytes,
        reopen_s,
        rss_after_reopen_mib,
        page_us: [percentile(&latencies, 0.5), percentile(&latencies, 0.99)],
        rss_after_reads_mib: rss_mib(),
        entries_read,
    })
}
