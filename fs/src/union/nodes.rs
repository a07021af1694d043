//! The inode table of a union mount: inode numbers by path, stable for
//! the life of the mount, and for each inode where it is visible in the
//! layers, once known. Every change passes through the mount, so the
//! table is updated by the operation that makes the change and never
//! goes stale.
//!
//! A file with several names in the upper layer (hard links made through
//! the mount, or already there) is one inode with several paths, so the
//! kernel caches its data and attributes once. Hard links within a lower
//! layer stay separate inodes: a copy-up breaks them apart, as kernel
//! overlayfs does without its index.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::layers::At;

/// The root's inode number (FUSE_ROOT_ID).
pub const ROOT: u64 = 1;

pub struct Node {
    pub rel: PathBuf,
    /// Where the entry is visible; `None` until someone needs it.
    pub at: Option<At>,
    /// The other names of a hard-linked upper file.
    aliases: Vec<PathBuf>,
}

impl Node {
    fn new(rel: PathBuf) -> Node {
        Node {
            rel,
            at: None,
            aliases: Vec::new(),
        }
    }
}

pub struct Nodes {
    by_path: HashMap<PathBuf, u64>,
    nodes: HashMap<u64, Node>,
    /// Hard-linked upper files by (device, inode) in the upper layer.
    linked: HashMap<(u64, u64), u64>,
    next: u64,
}

impl Nodes {
    pub fn new(root: At) -> Nodes {
        let mut n = Nodes {
            by_path: HashMap::new(),
            nodes: HashMap::new(),
            linked: HashMap::new(),
            next: ROOT,
        };
        n.by_path.insert(PathBuf::new(), ROOT);
        let mut node = Node::new(PathBuf::new());
        node.at = Some(root);
        n.nodes.insert(ROOT, node);
        n
    }

    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    /// The known place of `rel`, if resolved.
    pub fn at(&self, rel: &Path) -> Option<&At> {
        self.by_path.get(rel).and_then(|i| self.nodes.get(i)).and_then(|n| n.at.as_ref())
    }

    /// The inode number of `rel`, allocated on first sight.
    pub fn ino(&mut self, rel: &Path) -> u64 {
        if let Some(i) = self.by_path.get(rel) {
            return *i;
        }
        self.next += 1;
        let ino = self.next;
        self.by_path.insert(rel.to_path_buf(), ino);
        self.nodes.insert(ino, Node::new(rel.to_path_buf()));
        ino
    }

    /// Records `rel`, an upper file with several links identified by
    /// `id` (device, inode), as a name of that file's one inode. `id_of`
    /// says what a known name is now, so that an inode number the upper
    /// filesystem has reused for another file is not mistaken for it.
    pub fn link(&mut self, rel: &Path, at: At, id: (u64, u64), id_of: impl Fn(&Path) -> Option<(u64, u64)>) -> u64 {
        let known = self
            .linked
            .get(&id)
            .copied()
            .filter(|i| self.nodes.get(i).is_some_and(|n| n.rel == rel || id_of(&n.rel) == Some(id)));
        let Some(ino) = known else {
            let ino = self.set(rel, at);
            self.linked.insert(id, ino);
            return ino;
        };
        if self.by_path.get(rel) != Some(&ino) {
            self.remove(rel);
            self.by_path.insert(rel.to_path_buf(), ino);
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.aliases.push(rel.to_path_buf());
            }
        }
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.at = Some(at);
        }
        ino
    }

    /// Records where `rel` is visible; returns its inode number.
    pub fn set(&mut self, rel: &Path, at: At) -> u64 {
        let ino = self.ino(rel);
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.at = Some(at);
        }
        ino
    }

    /// Records where `rel` is visible unless it is already known.
    pub fn learn(&mut self, rel: &Path, at: impl FnOnce() -> Option<At>) -> u64 {
        let ino = self.ino(rel);
        if let Some(n) = self.nodes.get_mut(&ino) {
            if n.at.is_none() {
                n.at = at();
            }
        }
        ino
    }

    /// `rel` is gone: a new entry under the name gets a new inode number.
    /// An inode with other names lives on under one of them.
    pub fn remove(&mut self, rel: &Path) {
        let Some(ino) = self.by_path.remove(rel) else { return };
        let Some(n) = self.nodes.get_mut(&ino) else { return };
        if n.rel == rel {
            match n.aliases.pop() {
                Some(other) => n.rel = other,
                None => {
                    self.nodes.remove(&ino);
                    self.linked.retain(|_, i| *i != ino);
                }
            }
        } else {
            n.aliases.retain(|a| a != rel);
        }
    }

    /// Directory `rel` is gone: so is everything under it.
    pub fn remove_tree(&mut self, rel: &Path) {
        let under: Vec<PathBuf> = self.by_path.keys().filter(|p| p.starts_with(rel)).cloned().collect();
        for p in under {
            self.remove(&p);
        }
    }

    /// Moves `from` and everything below it to `to`, keeping inode
    /// numbers; what was at `to` is gone. The moved entries' places are
    /// forgotten (found again on next use); `to` gets `at`.
    pub fn rename(&mut self, from: &Path, to: &Path, at: At) {
        self.remove(to);
        let moved: Vec<(PathBuf, u64)> = self
            .by_path
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, ino) in moved {
            // Joining an empty remainder would add a trailing slash.
            let rest = p.strip_prefix(from).unwrap_or(Path::new(""));
            let new = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            self.by_path.remove(&p);
            self.by_path.insert(new.clone(), ino);
            if let Some(n) = self.nodes.get_mut(&ino) {
                if n.rel == p {
                    n.rel = new;
                    n.at = None;
                } else if let Some(a) = n.aliases.iter_mut().find(|a| **a == p) {
                    *a = new;
                }
            }
        }
        self.set(to, at);
    }
}
