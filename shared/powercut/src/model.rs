//! The in-memory filesystem behind the mount, with two states per inode: what a process sees
//! (`current`) and what would survive a power cut (`durable`).
//!
//! The rules, deliberately the pessimistic reading of POSIX:
//! - a regular file's contents (and size) become durable only at `fsync`/`fdatasync` on it;
//! - a directory's entries (creations, renames, unlinks in it) become durable only at `fsync`
//!   on the directory itself;
//! - nothing else is ever written back: no page cache flushes, no journal commits, no `sync()`.
//!
//! A gentler variant, [`Model::with_journaled_entries`], makes every directory change durable at
//! once (as a metadata journal that commits before anything else would): it separates bugs in
//! syncing file contents from bugs in syncing directories.
//!
//! After [`Model::freeze`] every operation fails with `EIO`, as a disk that lost power would.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fuser::{Errno, FileAttr, FileType, INodeNo};

/// The root directory's inode number.
pub const ROOT: u64 = 1;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const BLOCK: u64 = 4096;

/// Counters of what the filesystem was asked to do, to tell what a run exercised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `write` calls.
    pub writes: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// `fsync`/`fdatasync` calls on regular files.
    pub fsyncs: u64,
    /// `fsync` calls on directories.
    pub fsyncdirs: u64,
    /// Files and directories created.
    pub creates: u64,
    /// Renames.
    pub renames: u64,
    /// Unlinks and rmdirs.
    pub unlinks: u64,
    /// Operations refused with `EIO` because the power had been cut.
    pub refused_after_cut: u64,
}

#[derive(Debug, Clone)]
enum Content {
    File {
        current: Vec<u8>,
        durable: Vec<u8>,
    },
    Dir {
        current: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
        parent: u64,
    },
}

#[derive(Debug, Clone)]
struct Node {
    content: Content,
    perm: u16,
    links: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

impl Node {
    fn new(content: Content, perm: u16) -> Node {
        let now = SystemTime::now();
        Node {
            content,
            perm,
            links: 1,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.content, Content::Dir { .. })
    }
}

/// One entry of the durable state: a path relative to the filesystem's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurableEntry {
    /// A directory.
    Dir(PathBuf),
    /// A regular file with the contents last made durable.
    File(PathBuf, Vec<u8>),
}

/// What survived the power cut, parents before children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durable {
    /// Directories and files, each directory listed before what it holds.
    pub entries: Vec<DurableEntry>,
}

/// The filesystem's state.
#[derive(Debug)]
pub struct Model {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    frozen: bool,
    journaled_entries: bool,
    stats: Stats,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

type Res<T> = Result<T, Errno>;

impl Model {
    /// An empty filesystem: a root directory that exists durably (it is the mount point).
    pub fn new() -> Model {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node::new(
                Content::Dir {
                    current: BTreeMap::new(),
                    durable: BTreeMap::new(),
                    parent: ROOT,
                },
                0o755,
            ),
        );
        Model {
            nodes,
            next_ino: ROOT + 1,
            frozen: false,
            journaled_entries: false,
            stats: Stats::default(),
        }
    }

    /// As [`Model::new`], but every directory change (create, mkdir, rename, unlink) is durable
    /// as soon as it is made; file contents still need `fsync`.
    pub fn with_journaled_entries() -> Model {
        Model {
            journaled_entries: true,
            ..Model::new()
        }
    }

    /// In the journaled variant, makes `dir`'s entries durable now.
    fn journal(&mut self, dir: u64) {
        if !self.journaled_entries {
            return;
        }
        if let Some(Node {
            content: Content::Dir {
                current, durable, ..
            },
            ..
        }) = self.nodes.get_mut(&dir)
        {
            durable.clone_from(current);
        }
    }

    /// What the filesystem was asked to do so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether the power has been cut.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    fn live(&mut self) -> Res<()> {
        if self.frozen {
            self.stats.refused_after_cut += 1;
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }

    fn node(&self, ino: u64) -> Res<&Node> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Res<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn entries(&self, dir: u64) -> Res<&BTreeMap<OsString, u64>> {
        match &self.node(dir)?.content {
            Content::Dir { current, .. } => Ok(current),
            Content::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: u64) -> Res<&mut BTreeMap<OsString, u64>> {
        match &mut self.node_mut(dir)?.content {
            Content::Dir { current, .. } => Ok(current),
            Content::File { .. } => Err(Errno::ENOTDIR),
        }
    }

    fn touch(&mut self, ino: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            let now = SystemTime::now();
            node.mtime = now;
            node.ctime = now;
        }
    }

    /// The attributes of `ino`.
    pub fn attr(&self, ino: u64) -> Res<FileAttr> {
        let node = self.node(ino)?;
        let (kind, size, nlink) = match &node.content {
            Content::File { current, .. } => {
                (FileType::RegularFile, current.len() as u64, node.links)
            }
            Content::Dir { current, .. } => {
                let subdirs = current
                    .values()
                    .filter(|i| self.nodes.get(i).is_some_and(Node::is_dir))
                    .count();
                (FileType::Directory, BLOCK, 2 + subdirs as u32)
            }
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: node.atime,
            mtime: node.mtime,
            ctime: node.ctime,
            crtime: node.ctime,
            kind,
            perm: node.perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: BLOCK as u32,
            flags: 0,
        })
    }

    /// `getattr`.
    pub fn getattr(&mut self, ino: u64) -> Res<FileAttr> {
        self.live()?;
        self.attr(ino)
    }

    /// `lookup`.
    pub fn lookup(&mut self, parent: u64, name: &OsStr) -> Res<FileAttr> {
        self.live()?;
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        self.attr(ino)
    }

    /// `setattr`: size (truncate or extend with zeros), mode and times.
    pub fn setattr(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        size: Option<u64>,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> Res<FileAttr> {
        self.live()?;
        let node = self.node_mut(ino)?;
        if let Some(size) = size {
            match &mut node.content {
                Content::File { current, .. } => {
                    current.resize(usize::try_from(size).map_err(|_| Errno::EFBIG)?, 0);
                }
                Content::Dir { .. } => return Err(Errno::EISDIR),
            }
            let now = SystemTime::now();
            node.mtime = now;
            node.ctime = now;
        }
        if let Some(mode) = mode {
            node.perm = (mode & 0o7777) as u16;
            node.ctime = SystemTime::now();
        }
        if let Some(atime) = atime {
            node.atime = atime;
        }
        if let Some(mtime) = mtime {
            node.mtime = mtime;
        }
        self.attr(ino)
    }

    fn insert_new(&mut self, parent: u64, name: &OsStr, content: Content, perm: u16) -> Res<u64> {
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        if self.entries(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node::new(content, perm));
        self.entries_mut(parent)?.insert(name.to_owned(), ino);
        self.journal(parent);
        self.touch(parent);
        self.stats.creates += 1;
        Ok(ino)
    }

    /// `create`/`mknod` of a regular file.
    pub fn create(&mut self, parent: u64, name: &OsStr, mode: u32) -> Res<FileAttr> {
        self.live()?;
        if mode & S_IFMT != 0 && mode & S_IFMT != S_IFREG {
            return Err(Errno::EPERM);
        }
        let content = Content::File {
            current: Vec::new(),
            durable: Vec::new(),
        };
        let ino = self.insert_new(parent, name, content, (mode & 0o7777) as u16)?;
        self.attr(ino)
    }

    /// `mkdir`.
    pub fn mkdir(&mut self, parent: u64, name: &OsStr, mode: u32) -> Res<FileAttr> {
        self.live()?;
        let content = Content::Dir {
            current: BTreeMap::new(),
            durable: BTreeMap::new(),
            parent,
        };
        let ino = self.insert_new(parent, name, content, (mode & 0o7777) as u16)?;
        self.attr(ino)
    }

    /// `unlink` (`dir` false) or `rmdir` (`dir` true). The inode stays: an open file keeps
    /// working, and a durable entry may still name it.
    pub fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Res<()> {
        self.live()?;
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        let node = self.node(ino)?;
        match (&node.content, dir) {
            (Content::Dir { .. }, false) => return Err(Errno::EISDIR),
            (Content::File { .. }, true) => return Err(Errno::ENOTDIR),
            (Content::Dir { current, .. }, true) if !current.is_empty() => {
                return Err(Errno::ENOTEMPTY)
            }
            _ => {}
        }
        self.entries_mut(parent)?.remove(name);
        self.journal(parent);
        let node = self.node_mut(ino)?;
        node.links = node.links.saturating_sub(1);
        node.ctime = SystemTime::now();
        self.touch(parent);
        self.stats.unlinks += 1;
        Ok(())
    }

    fn is_ancestor(&self, ancestor: u64, mut dir: u64) -> bool {
        let mut seen = HashSet::new();
        loop {
            if dir == ancestor {
                return true;
            }
            if dir == ROOT || !seen.insert(dir) {
                return false;
            }
            match self.nodes.get(&dir).map(|n| &n.content) {
                Some(Content::Dir { parent, .. }) => dir = *parent,
                _ => return false,
            }
        }
    }

    /// `rename`, replacing an existing target as POSIX says; `noreplace` for
    /// `RENAME_NOREPLACE`.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        noreplace: bool,
    ) -> Res<()> {
        self.live()?;
        if new_name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        let moving_dir = self.node(ino)?.is_dir();
        self.entries(new_parent)?;
        if moving_dir && self.is_ancestor(ino, new_parent) {
            return Err(Errno::EINVAL);
        }
        if let Some(&target) = self.entries(new_parent)?.get(new_name) {
            if target == ino {
                return Ok(());
            }
            if noreplace {
                return Err(Errno::EEXIST);
            }
            match (&self.node(target)?.content, moving_dir) {
                (Content::Dir { .. }, false) => return Err(Errno::EISDIR),
                (Content::File { .. }, true) => return Err(Errno::ENOTDIR),
                (Content::Dir { current, .. }, true) if !current.is_empty() => {
                    return Err(Errno::ENOTEMPTY)
                }
                _ => {}
            }
            let target = self.node_mut(target)?;
            target.links = target.links.saturating_sub(1);
        }
        self.entries_mut(parent)?.remove(name);
        self.entries_mut(new_parent)?
            .insert(new_name.to_owned(), ino);
        self.journal(parent);
        self.journal(new_parent);
        let node = self.node_mut(ino)?;
        node.ctime = SystemTime::now();
        if let Content::Dir { parent: p, .. } = &mut node.content {
            *p = new_parent;
        }
        self.touch(parent);
        self.touch(new_parent);
        self.stats.renames += 1;
        Ok(())
    }

    /// `read`.
    pub fn read(&mut self, ino: u64, offset: u64, size: u32) -> Res<Vec<u8>> {
        self.live()?;
        match &self.node(ino)?.content {
            Content::File { current, .. } => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(current.len());
                let end = start.saturating_add(size as usize).min(current.len());
                Ok(current[start..end].to_vec())
            }
            Content::Dir { .. } => Err(Errno::EISDIR),
        }
    }

    /// `write` at `offset` (a hole before it reads as zeros).
    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Res<u32> {
        self.live()?;
        let len = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
        let node = self.node_mut(ino)?;
        match &mut node.content {
            Content::File { current, .. } => {
                let start = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
                let end = start.checked_add(data.len()).ok_or(Errno::EFBIG)?;
                if current.len() < end {
                    current.resize(end, 0);
                }
                current[start..end].copy_from_slice(data);
            }
            Content::Dir { .. } => return Err(Errno::EISDIR),
        }
        let now = SystemTime::now();
        node.mtime = now;
        node.ctime = now;
        self.stats.writes += 1;
        self.stats.bytes_written += u64::from(len);
        Ok(len)
    }

    /// `fallocate` mode 0 (extend the file with zeros); other modes are not supported.
    pub fn fallocate(&mut self, ino: u64, offset: u64, length: u64, mode: i32) -> Res<()> {
        self.live()?;
        if mode != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        match &mut self.node_mut(ino)?.content {
            Content::File { current, .. } => {
                let end = offset.checked_add(length).ok_or(Errno::EFBIG)?;
                let end = usize::try_from(end).map_err(|_| Errno::EFBIG)?;
                if current.len() < end {
                    current.resize(end, 0);
                }
                Ok(())
            }
            Content::Dir { .. } => Err(Errno::EISDIR),
        }
    }

    /// `fsync`/`fdatasync` on a file makes its contents durable; on a directory, its entries.
    pub fn fsync(&mut self, ino: u64) -> Res<()> {
        self.live()?;
        match &mut self.node_mut(ino)?.content {
            Content::File { current, durable } => {
                durable.clone_from(current);
                self.stats.fsyncs += 1;
            }
            Content::Dir {
                current, durable, ..
            } => {
                durable.clone_from(current);
                self.stats.fsyncdirs += 1;
            }
        }
        Ok(())
    }

    /// The entries of directory `ino`, as (inode, type, name).
    pub fn readdir(&mut self, ino: u64) -> Res<Vec<(u64, FileType, OsString)>> {
        self.live()?;
        let Content::Dir {
            current, parent, ..
        } = &self.node(ino)?.content
        else {
            return Err(Errno::ENOTDIR);
        };
        let mut out = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (*parent, FileType::Directory, OsString::from("..")),
        ];
        for (name, &child) in current {
            let kind = if self.node(child)?.is_dir() {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            out.push((child, kind, name.clone()));
        }
        Ok(out)
    }

    /// Checks that `ino` exists and is a file (`dir` false) or a directory (`dir` true).
    pub fn open(&mut self, ino: u64, dir: bool) -> Res<()> {
        self.live()?;
        match (self.node(ino)?.is_dir(), dir) {
            (true, false) => Err(Errno::EISDIR),
            (false, true) => Err(Errno::ENOTDIR),
            _ => Ok(()),
        }
    }

    /// Operations that change nothing (`flush`, `release`, `statfs`...): they still fail
    /// after the cut.
    pub fn noop(&mut self) -> Res<()> {
        self.live()
    }

    /// Bytes held by the current state, for `statfs`.
    pub fn used_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match &n.content {
                Content::File { current, .. } => current.len() as u64,
                Content::Dir { .. } => BLOCK,
            })
            .sum()
    }

    /// Number of inodes, for `statfs`.
    pub fn inode_count(&self) -> u64 {
        self.nodes.len() as u64
    }

    /// Cuts the power: from now on every operation fails with `EIO`. Returns what survived:
    /// the durable entries reachable from the root through durable entries, each file with
    /// its durable contents.
    pub fn freeze(&mut self) -> Durable {
        self.frozen = true;
        self.durable()
    }

    /// What would survive a cut now.
    pub fn durable(&self) -> Durable {
        let mut out = Durable::default();
        let mut visited = HashSet::from([ROOT]);
        self.collect(ROOT, Path::new(""), &mut visited, &mut out);
        out
    }

    fn collect(&self, dir: u64, path: &Path, visited: &mut HashSet<u64>, out: &mut Durable) {
        let Some(Node {
            content: Content::Dir { durable, .. },
            ..
        }) = self.nodes.get(&dir)
        else {
            return;
        };
        for (name, &ino) in durable {
            let child_path = path.join(name);
            match self.nodes.get(&ino).map(|n| &n.content) {
                Some(Content::File { durable, .. }) => {
                    out.entries
                        .push(DurableEntry::File(child_path, durable.clone()));
                }
                // A directory renamed into its own durable subtree would loop: a real
                // filesystem's journal could not produce that, so keep the first path.
                Some(Content::Dir { .. }) if visited.insert(ino) => {
                    out.entries.push(DurableEntry::Dir(child_path.clone()));
                    self.collect(ino, &child_path, visited, out);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(d: &Durable) -> Vec<String> {
        d.entries
            .iter()
            .map(|e| match e {
                DurableEntry::Dir(p) => format!("{}/", p.display()),
                DurableEntry::File(p, data) => format!("{}={}", p.display(), data.len()),
            })
            .collect()
    }

    #[test]
    fn only_synced_names_and_contents_survive() -> Result<(), Errno> {
        let mut m = Model::new();
        let a = m.create(ROOT, OsStr::new("a"), 0o644)?.ino.0;
        m.write(a, 0, b"hello")?;
        m.fsync(a)?;
        assert!(names(&m.durable()).is_empty(), "name not synced yet");
        m.fsync(ROOT)?;
        m.write(a, 5, b" world")?;
        assert_eq!(names(&m.durable()), ["a=5"]);
        let d = m.mkdir(ROOT, OsStr::new("d"), 0o755)?.ino.0;
        let b = m.create(d, OsStr::new("b"), 0o644)?.ino.0;
        m.write(b, 0, b"x")?;
        m.fsync(b)?;
        m.fsync(d)?;
        assert_eq!(
            names(&m.durable()),
            ["a=5"],
            "d itself is not in the root yet"
        );
        m.fsync(ROOT)?;
        assert_eq!(names(&m.durable()), ["a=5", "d/", "d/b=1"]);
        Ok(())
    }

    #[test]
    fn renames_and_unlinks_are_undone_without_fsyncdir() -> Result<(), Errno> {
        let mut m = Model::new();
        let a = m.create(ROOT, OsStr::new("a"), 0o644)?.ino.0;
        let b = m.create(ROOT, OsStr::new("b"), 0o644)?.ino.0;
        m.write(a, 0, b"new")?;
        m.write(b, 0, b"old!")?;
        m.fsync(a)?;
        m.fsync(b)?;
        m.fsync(ROOT)?;
        m.rename(ROOT, OsStr::new("a"), ROOT, OsStr::new("b"), false)?;
        assert_eq!(m.lookup(ROOT, OsStr::new("b"))?.size, 3);
        assert_eq!(names(&m.durable()), ["a=3", "b=4"]);
        m.fsync(ROOT)?;
        assert_eq!(names(&m.durable()), ["b=3"]);
        m.remove(ROOT, OsStr::new("b"), false)?;
        assert_eq!(names(&m.freeze()), ["b=3"]);
        assert_eq!(m.lookup(ROOT, OsStr::new("b")), Err(Errno::EIO));
        Ok(())
    }

    #[test]
    fn journaled_entries_are_durable_at_once_but_contents_are_not() -> Result<(), Errno> {
        let mut m = Model::with_journaled_entries();
        let d = m.mkdir(ROOT, OsStr::new("d"), 0o755)?.ino.0;
        let a = m.create(d, OsStr::new("a"), 0o644)?.ino.0;
        m.write(a, 0, b"abc")?;
        assert_eq!(names(&m.durable()), ["d/", "d/a=0"]);
        m.fsync(a)?;
        m.rename(d, OsStr::new("a"), ROOT, OsStr::new("b"), false)?;
        assert_eq!(names(&m.durable()), ["b=3", "d/"]);
        Ok(())
    }
}
