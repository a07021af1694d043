//! loopvol: volumes with a size quota. Each volume is an ext4 filesystem
//! in a sparse image file (`-o size=100M`, default 1G) under the plugin's
//! home, loop-mounted while any container uses it: a container filling it
//! gets ENOSPC instead of filling the host.
//!
//! Needs mkfs.ext4 (e2fsprogs), mount and umount (util-linux), and root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use berth_plugin::error::{DriverError, Result};
use berth_plugin::volume::{CreateRequest, MountRequest, Volume, VolumeDriver};
use berth_plugin::Served;

const DEFAULT_SIZE: u64 = 1 << 30;
/// ext4 needs room for its own metadata below this.
const MIN_SIZE: u64 = 8 << 20;

struct Loops {
    home: PathBuf,
    /// Per volume, the containers that have it mounted.
    users: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

fn invalid(what: String, reason: &str) -> DriverError {
    DriverError::InvalidArgument {
        what,
        reason: reason.into(),
    }
}

/// `100M`, `2G`, `512k` or bytes.
fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (n, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult = match c.to_ascii_lowercase() {
                'k' => 1u64 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                _ => return Err(invalid(format!("size {s:?}"), "unit must be k, M, G or T")),
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    let n: u64 = n.parse().map_err(|_| invalid(format!("size {s:?}"), "not a number"))?;
    let size = n.checked_mul(mult).ok_or_else(|| invalid(format!("size {s:?}"), "too large"))?;
    if size < MIN_SIZE {
        return Err(invalid(format!("size {s:?}"), "must be at least 8M"));
    }
    Ok(size)
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().map_err(|e| DriverError::Driver(format!("run {cmd:?}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(DriverError::Driver(format!(
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

impl Loops {
    fn open(home: &Path) -> Result<Loops> {
        for d in ["images", "mounts"] {
            let p = home.join(d);
            std::fs::create_dir_all(&p).map_err(|e| DriverError::io("create", &p, e))?;
        }
        Ok(Loops {
            home: home.to_path_buf(),
            users: Mutex::new(BTreeMap::new()),
        })
    }

    fn image(&self, name: &str) -> PathBuf {
        self.home.join("images").join(format!("{name}.ext4"))
    }

    fn mountpoint(&self, name: &str) -> PathBuf {
        self.home.join("mounts").join(name)
    }

    fn check_name(name: &str) -> Result<()> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(invalid(format!("volume name {name:?}"), "not a file name"));
        }
        Ok(())
    }

    /// The image of an existing volume.
    fn existing(&self, name: &str) -> Result<PathBuf> {
        let image = self.image(name);
        if Self::check_name(name).is_err() || !image.is_file() {
            return Err(DriverError::NotFound {
                kind: "volume",
                name: name.into(),
            });
        }
        Ok(image)
    }

    fn mounted(&self, name: &str) -> bool {
        let target = self.mountpoint(name);
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(target.to_string_lossy().as_ref())))
            .unwrap_or(false)
    }
}

impl VolumeDriver for Loops {
    fn create(&self, req: &CreateRequest) -> Result<()> {
        Self::check_name(&req.name)?;
        let mut size = DEFAULT_SIZE;
        for (k, v) in &req.opts {
            match k.as_str() {
                "size" => size = parse_size(v)?,
                _ => return Err(invalid(format!("option {k:?}"), "loopvol takes size only")),
            }
        }
        let image = self.image(&req.name);
        let _held = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(m) = std::fs::metadata(&image) {
            if m.len() == size {
                return Ok(());
            }
            return Err(DriverError::Conflict {
                kind: "volume",
                name: req.name.clone(),
                reason: format!("exists with size {}", m.len()),
            });
        }
        // Made under a temporary name: a volume exists only once whole.
        let partial = image.with_extension("partial");
        let made = (|| {
            let f = std::fs::File::create(&partial).map_err(|e| DriverError::io("create", &partial, e))?;
            f.set_len(size).map_err(|e| DriverError::io("size", &partial, e))?;
            run(Command::new("mkfs.ext4").args(["-q", "-F", "-m", "0"]).arg(&partial))?;
            std::fs::rename(&partial, &image).map_err(|e| DriverError::io("rename", &partial, e))
        })();
        if made.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        made
    }

    fn remove(&self, name: &str) -> Result<()> {
        let image = self.existing(name)?;
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if users.get(name).is_some_and(|u| !u.is_empty()) {
            return Err(DriverError::Conflict {
                kind: "volume",
                name: name.into(),
                reason: "in use".into(),
            });
        }
        std::fs::remove_file(&image).map_err(|e| DriverError::io("remove", &image, e))?;
        let _ = std::fs::remove_dir(self.mountpoint(name));
        Ok(())
    }

    fn mount(&self, req: &MountRequest) -> Result<PathBuf> {
        let image = self.existing(&req.name)?;
        let target = self.mountpoint(&req.name);
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let held = users.entry(req.name.clone()).or_default();
        if held.is_empty() && !self.mounted(&req.name) {
            std::fs::create_dir_all(&target).map_err(|e| DriverError::io("create", &target, e))?;
            run(Command::new("mount").args(["-t", "ext4", "-o", "loop"]).arg(&image).arg(&target))?;
        }
        held.insert(req.id.clone());
        Ok(target)
    }

    fn unmount(&self, req: &MountRequest) -> Result<()> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let Some(held) = users.get_mut(&req.name).filter(|h| h.contains(&req.id)) else {
            return Err(DriverError::NotFound {
                kind: "mount of volume",
                name: format!("{} by {}", req.name, req.id),
            });
        };
        if held.len() == 1 {
            // The last user: the filesystem goes (its loop device with it).
            run(Command::new("umount").arg(self.mountpoint(&req.name)))?;
        }
        held.remove(&req.id);
        Ok(())
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        self.existing(name)?;
        Ok(self.mountpoint(name))
    }

    fn get(&self, name: &str) -> Result<Volume> {
        let image = self.existing(name)?;
        let size = std::fs::metadata(&image).map(|m| m.len()).unwrap_or(0);
        Ok(Volume {
            name: name.into(),
            mountpoint: if self.mounted(name) {
                self.mountpoint(name).display().to_string()
            } else {
                String::new()
            },
            status: BTreeMap::from([("size".to_string(), size.into())]),
        })
    }

    fn list(&self) -> Result<Vec<Volume>> {
        let dir = self.home.join("images");
        let entries = std::fs::read_dir(&dir).map_err(|e| DriverError::io("read", &dir, e))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".ext4").map(str::to_string))
            .collect();
        names.sort();
        names.iter().map(|n| self.get(n)).collect()
    }
}

berth_plugin::export_plugin!(Served::new("loopvol").volume(Loops::open));
