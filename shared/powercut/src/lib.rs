//! A power-cut simulator: a FUSE filesystem that keeps only what was made durable.
//!
//! Mount it with [`Mounted::mount`], run a program whose data lives in the mount, then
//! [`Mounted::cut`] the power at any moment: from then on every filesystem operation fails with
//! `EIO`, and what survived (see [`model`] for the rules: file contents need `fsync` or
//! `fdatasync` on the file, directory entries need `fsync` on the directory) can be written into
//! a real directory with [`Durable::write_to`] to restart the program on it.
//!
//! Mounting needs `/dev/fuse` and root (the mount is made with `mount(2)` directly; no
//! `fusermount`, no libfuse).

pub mod model;

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileHandle, FopenFlags, Generation, INodeNo, LockOwner,
    MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

pub use model::{Durable, DurableEntry, Model, Stats};

/// Errors of the simulator itself (not of the program under test).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The FUSE mount could not be made.
    #[error(
        "cannot mount the power-cut filesystem at {path}: {source} (it needs /dev/fuse and root; \
         in a container, run it with --device /dev/fuse --cap-add SYS_ADMIN)"
    )]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `/dev/fuse` is missing.
    #[error("cannot mount the power-cut filesystem: /dev/fuse does not exist (load the fuse kernel module, or give the container the device)")]
    NoFuseDevice,
    /// Unmounting failed.
    #[error("cannot unmount the power-cut filesystem at {path}: {source}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing the durable state into a real directory failed.
    #[error("cannot write the durable state into {path}: {source}")]
    Write {
        /// The file or directory being written.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The directory to write the durable state into already exists.
    #[error("{0} already exists: the durable state goes into a fresh directory")]
    TargetExists(PathBuf),
}

/// How long the kernel may cache attributes and names (only this mount changes them).
const TTL: Duration = Duration::from_secs(1);

/// The FUSE filesystem: a shared [`Model`].
#[derive(Debug, Clone, Default)]
pub struct PowerCutFs {
    model: Arc<Mutex<Model>>,
}

impl PowerCutFs {
    /// A filesystem over `model`.
    pub fn new(model: Model) -> PowerCutFs {
        PowerCutFs {
            model: Arc::new(Mutex::new(model)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Model> {
        // A panic while holding the lock leaves a consistent model (each operation checks
        // before it changes anything), so keep serving.
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

fn reply_entry(reply: ReplyEntry, r: Result<fuser::FileAttr, Errno>) {
    match r {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn reply_empty(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl fuser::Filesystem for PowerCutFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        reply_entry(reply, self.lock().lookup(parent.0, name));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.lock().getattr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = self
            .lock()
            .setattr(ino.0, mode, size, atime.map(time), mtime.map(time));
        match r {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply_entry(reply, self.lock().create(parent.0, name, mode & !umask));
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        reply_entry(reply, self.lock().mkdir(parent.0, name, mode & !umask));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.lock().remove(parent.0, name, false));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.lock().remove(parent.0, name, true));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return reply.error(Errno::EINVAL);
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        reply_empty(
            reply,
            self.lock()
                .rename(parent.0, name, newparent.0, newname, noreplace),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // Direct I/O: every read and write reaches the model (no page cache in between), so
        // that after the cut the program sees EIO rather than cached pages.
        match self.lock().open(ino.0, false) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self.lock().create(parent.0, name, mode & !umask) {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.lock().read(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.lock().write(ino.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() makes nothing durable.
        reply_empty(reply, self.lock().noop());
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.lock().fsync(ino.0));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.lock().open(ino.0, true) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.lock().readdir(ino.0) {
            Ok(entries) => entries,
            Err(e) => return reply.error(e),
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(skip) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.lock().fsync(ino.0));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let mut model = self.lock();
        if let Err(e) = model.noop() {
            return reply.error(e);
        }
        const BLOCKS: u64 = 1 << 24; // 64 GiB of 4 KiB blocks
        let used = model.used_bytes().div_ceil(4096).min(BLOCKS);
        let files = model.inode_count();
        reply.statfs(
            BLOCKS,
            BLOCKS - used,
            BLOCKS - used,
            1 << 20,
            (1 << 20) - files.min(1 << 20),
            4096,
            255,
            4096,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply_empty(reply, self.lock().getattr(ino.0).map(|_| ()));
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.lock().fallocate(ino.0, offset, length, mode));
    }
}

/// A mounted power-cut filesystem. Dropping it unmounts it.
#[derive(Debug)]
pub struct Mounted {
    fs: PowerCutFs,
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
}

impl Mounted {
    /// Mounts an empty power-cut filesystem at `mountpoint` (an existing, empty directory).
    /// The root directory itself counts as durable; nothing in it does yet.
    ///
    /// # Errors
    /// [`Error::NoFuseDevice`] or [`Error::Mount`] when the mount cannot be made.
    pub fn mount(mountpoint: &Path) -> Result<Mounted, Error> {
        Mounted::mount_model(mountpoint, Model::new())
    }

    /// As [`Mounted::mount`], over a given model (e.g. [`Model::with_journaled_entries`]).
    ///
    /// # Errors
    /// [`Error::NoFuseDevice`] or [`Error::Mount`] when the mount cannot be made.
    pub fn mount_model(mountpoint: &Path, model: Model) -> Result<Mounted, Error> {
        if !Path::new("/dev/fuse").exists() {
            return Err(Error::NoFuseDevice);
        }
        let fs = PowerCutFs::new(model);
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("keyplan-powercut".into()),
            MountOption::Subtype("powercut".into()),
            MountOption::DefaultPermissions,
        ];
        config.n_threads = Some(2);
        let session =
            fuser::spawn_mount(fs.clone(), mountpoint, &config).map_err(|source| Error::Mount {
                path: mountpoint.to_owned(),
                source,
            })?;
        Ok(Mounted {
            fs,
            session: Some(session),
            mountpoint: mountpoint.to_owned(),
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Cuts the power, atomically: every later operation fails with `EIO` (the program keeps
    /// running until you kill it, but can no longer change anything). Returns what survived.
    /// Cutting twice returns the same state.
    pub fn cut(&self) -> Durable {
        self.fs.lock().freeze()
    }

    /// What would survive a cut now, without cutting.
    pub fn durable(&self) -> Durable {
        self.fs.lock().durable()
    }

    /// What the filesystem was asked to do so far.
    pub fn stats(&self) -> Stats {
        self.fs.lock().stats()
    }

    /// Unmounts. If files are still open in the mount (`EBUSY`), detaches it lazily instead
    /// (`umount -l`): it disappears from the namespace now and goes once they are closed.
    ///
    /// # Errors
    /// [`Error::Unmount`] when neither works.
    pub fn unmount(mut self) -> Result<(), Error> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), Error> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(source) => {
                let lazy = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&self.mountpoint)
                    .status();
                match lazy {
                    Ok(status) if status.success() => Ok(()),
                    _ => Err(Error::Unmount {
                        path: self.mountpoint.clone(),
                        source,
                    }),
                }
            }
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        // Best effort: a test that failed must not leave a dead mount behind.
        let _ = self.unmount_inner();
    }
}

impl Durable {
    /// Writes the durable state into `into`, which must not exist yet: directories as
    /// directories, files with their durable contents.
    ///
    /// # Errors
    /// [`Error::TargetExists`], or [`Error::Write`] when the real filesystem fails.
    pub fn write_to(&self, into: &Path) -> Result<(), Error> {
        if into.exists() {
            return Err(Error::TargetExists(into.to_owned()));
        }
        let fail = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Write { path, source }
        };
        std::fs::create_dir_all(into).map_err(fail(into))?;
        for entry in &self.entries {
            match entry {
                DurableEntry::Dir(p) => {
                    let path = into.join(p);
                    std::fs::create_dir(&path).map_err(fail(&path))?;
                }
                DurableEntry::File(p, data) => {
                    let path = into.join(p);
                    std::fs::write(&path, data).map_err(fail(&path))?;
                }
            }
        }
        Ok(())
    }

    /// The durable files and their sizes, for reports.
    pub fn files(&self) -> Vec<(&Path, usize)> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                DurableEntry::File(p, data) => Some((p.as_path(), data.len())),
                DurableEntry::Dir(_) => None,
            })
            .collect()
    }
}
