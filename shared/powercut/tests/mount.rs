//! The model's rules, through a real FUSE mount and real system calls.
#![allow(clippy::unwrap_used)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use keyplan_powercut::{Durable, Mounted};

/// Mounts in a temp dir; a mount that cannot be made fails the test (never skips it).
fn mounted() -> (tempfile::TempDir, Mounted) {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mounted = Mounted::mount(&mnt).unwrap_or_else(|e| panic!("{e}"));
    (dir, mounted)
}

fn sync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

/// Cuts, unmounts, writes what survived into `<tmp>/after` and returns that path.
fn cut(dir: &tempfile::TempDir, mounted: Mounted) -> std::path::PathBuf {
    let durable: Durable = mounted.cut();
    mounted.unmount().unwrap();
    let after = dir.path().join("after");
    durable.write_to(&after).unwrap();
    after
}

#[test]
fn a_file_written_without_fsync_vanishes() {
    let (dir, m) = mounted();
    let path = m.path().join("unsynced");
    fs::write(&path, b"lost").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"lost", "readable before the cut");
    let after = cut(&dir, m);
    assert!(!after.join("unsynced").exists());
}

#[test]
fn a_file_fsynced_but_not_its_directory_vanishes() {
    let (dir, m) = mounted();
    let mut f = File::create(m.path().join("file")).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_all().unwrap();
    drop(f);
    let after = cut(&dir, m);
    assert!(!after.join("file").exists());
}

#[test]
fn fsynced_data_in_a_synced_directory_survives_and_later_writes_do_not() {
    let (dir, m) = mounted();
    fs::create_dir(m.path().join("sub")).unwrap();
    sync_dir(m.path());
    let path = m.path().join("sub/log");
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    sync_dir(&m.path().join("sub"));
    f.write_all(b"0123456789").unwrap();
    f.sync_data().unwrap();
    // A pwrite in the middle and an append after the last fdatasync: both lost.
    f.seek(SeekFrom::Start(2)).unwrap();
    f.write_all(b"XY").unwrap();
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(b"tail").unwrap();
    let mut seen = String::new();
    File::open(&path)
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    assert_eq!(seen, "01XY456789tail");
    // And a second file whose name is synced but whose data is not: it survives empty,
    // like a 0-byte file after a crash on ext4.
    fs::write(m.path().join("sub/empty-after"), b"never synced").unwrap();
    sync_dir(&m.path().join("sub"));
    drop(f);
    let after = cut(&dir, m);
    assert_eq!(fs::read(after.join("sub/log")).unwrap(), b"0123456789");
    assert_eq!(fs::read(after.join("sub/empty-after")).unwrap(), b"");
}

#[test]
fn a_rename_without_fsyncdir_is_undone_and_with_it_is_kept() {
    let (dir, m) = mounted();
    for (name, data) in [("a", "new"), ("b", "old"), ("c", "gone")] {
        let mut f = File::create(m.path().join(name)).unwrap();
        f.write_all(data.as_bytes()).unwrap();
        f.sync_all().unwrap();
    }
    sync_dir(m.path());
    // a over b, then c removed: neither made durable.
    fs::rename(m.path().join("a"), m.path().join("b")).unwrap();
    fs::remove_file(m.path().join("c")).unwrap();
    assert!(!m.path().join("a").exists());
    let durable = m.durable();
    assert_eq!(
        durable.files(),
        [
            (Path::new("a"), 3),
            (Path::new("b"), 3),
            (Path::new("c"), 4)
        ]
    );
    // A second rename, this time synced.
    let mut f = File::create(m.path().join("tmp")).unwrap();
    f.write_all(b"fresh").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs::rename(m.path().join("tmp"), m.path().join("d")).unwrap();
    sync_dir(m.path());
    let after = cut(&dir, m);
    assert!(!after.join("a").exists(), "the rename was synced with d's");
    assert_eq!(fs::read(after.join("b")).unwrap(), b"new");
    assert!(!after.join("c").exists());
    assert_eq!(fs::read(after.join("d")).unwrap(), b"fresh");
    assert!(!after.join("tmp").exists());
}

#[test]
fn after_the_cut_everything_fails_with_eio() {
    let (_dir, m) = mounted();
    let mut f = File::create(m.path().join("f")).unwrap();
    f.write_all(b"x").unwrap();
    let _ = m.cut();
    let err = f.write_all(b"y").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}");
    let err = f.sync_data().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}");
    let err = fs::write(m.path().join("g"), b"z").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}");
    assert!(m.stats().refused_after_cut >= 3);
    drop(f);
    m.unmount().unwrap();
}

#[test]
fn sled_works_on_the_mount() {
    // sled locks its db file with flock (fs2), which the kernel handles locally for FUSE, and
    // reads and writes with pread/pwrite.
    let (_dir, m) = mounted();
    let path = m.path().join("db");
    {
        let db = sled::open(&path).unwrap();
        for i in 0..100u32 {
            db.insert(i.to_be_bytes(), vec![7u8; 1000]).unwrap();
        }
        db.flush().unwrap();
    }
    let db = sled::open(&path).unwrap();
    assert_eq!(db.len(), 100);
    drop(db);
    assert!(m.stats().writes > 0);
    m.unmount().unwrap();
}
