//! Reading from and tidying up a container root filesystem from the host side: path
//! resolution that never leaves the rootfs, `user[:group]` resolution from its
//! /etc/passwd and /etc/group, and mount stubs the runtime creates and we remove afterwards.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};

/// Resolves `path` (interpreted inside the container) to a host path under `root`, following
/// symlinks as the container would see them: absolute targets restart at `root`, `..` stops at it.
pub fn resolve_in_root(root: &Path, path: &str) -> io::Result<PathBuf> {
    let mut pending: Vec<PathBuf> = vec![PathBuf::from(path)];
    let mut resolved = PathBuf::new(); // relative to root
    let mut links = 0;
    while let Some(next) = pending.pop() {
        let mut comps: Vec<Component> = next.components().collect();
        comps.reverse();
        while let Some(comp) = comps.pop() {
            match comp {
                Component::RootDir => resolved.clear(),
                Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(name) => {
                    let candidate = resolved.join(name);
                    match fs::symlink_metadata(root.join(&candidate)) {
                        Ok(m) if m.file_type().is_symlink() => {
                            links += 1;
                            if links > 40 {
                                return Err(io::Error::from_raw_os_error(libc::ELOOP));
                            }
                            let target = fs::read_link(root.join(&candidate))?;
                            let rest: PathBuf = comps.iter().rev().collect();
                            pending.push(rest);
                            pending.push(target);
                            break;
                        }
                        _ => resolved = candidate,
                    }
                }
            }
        }
    }
    Ok(root.join(resolved))
}

/// The ids a process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub additional_gids: Vec<u32>,
    /// Home directory from /etc/passwd, if the user is listed there.
    pub home: Option<String>,
}

/// Resolves `uid[:gid]` / `name[:group]` ("" = root) against `rootfs`'s /etc/passwd and /etc/group.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser> {
    // The default user (root) needs nothing from these files but supplementary groups, so an
    // image whose /etc/passwd is unreadable (or not a file) still runs as root, as in BuildKit.
    let read = |path| match read_etc(rootfs, path) {
        Err(_) if spec.is_empty() => Ok(String::new()),
        other => other,
    };
    let passwd = read("/etc/passwd")?;
    let group = read("/etc/group")?;
    resolve_user_from(spec, &passwd, &group)
}

fn read_etc(rootfs: &Path, path: &str) -> Result<String> {
    let host =
        resolve_in_root(rootfs, path).map_err(Error::io("resolve", rootfs.join(&path[1..])))?;
    match fs::read(&host) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::Io {
            op: "read",
            path: host,
            source: e,
        }),
    }
}

/// [`resolve_user`] over the contents of /etc/passwd and /etc/group.
pub fn resolve_user_from(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser> {
    let unknown = |reason: String| Error::UnknownUser {
        user: spec.to_string(),
        reason,
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|f| f[2].parse() == Ok(uid)),
        Err(_) => Some(
            users
                .iter()
                .find(|f| f[0] == user_part)
                .ok_or_else(|| unknown(format!("no user {user_part:?} in /etc/passwd")))?,
        ),
    };
    let uid = match (user_part.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(f)) => f[2]
            .parse()
            .map_err(|_| unknown(format!("bad uid for {user_part:?} in /etc/passwd")))?,
        (Err(_), None) => return Err(unknown(format!("no user {user_part:?}"))),
    };
    let home = entry
        .and_then(|f| f.get(5))
        .filter(|h| !h.is_empty())
        .map(|h| h.to_string());
    let (gid, additional_gids) = match group_part {
        Some(g) if !g.is_empty() => {
            let gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => groups
                    .iter()
                    .find(|f| f[0] == g)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| unknown(format!("no group {g:?} in /etc/group")))?,
            };
            (gid, Vec::new())
        }
        _ => {
            let gid = entry.and_then(|f| f[3].parse().ok()).unwrap_or(0);
            let name = entry.map(|f| f[0]);
            let mut extra: Vec<u32> = groups
                .iter()
                .filter(|f| {
                    name.is_some_and(|n| f.get(3).is_some_and(|m| m.split(',').any(|m| m == n)))
                })
                .filter_map(|f| f[2].parse().ok())
                .filter(|g| *g != gid)
                .collect();
            extra.sort_unstable();
            extra.dedup();
            (gid, extra)
        }
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Mount destinations that did not exist in the rootfs before the run: the runtime creates
/// them as empty files or directories, and [`Stubs::remove`] deletes them again so they do
/// not end up in the layer.
#[derive(Debug, Default)]
pub struct Stubs {
    /// Paths to remove (host paths), deepest last.
    created: Vec<PathBuf>,
    /// Existing parent directories whose times to restore: (dir, atime, mtime).
    parents: Vec<(PathBuf, SystemTime, SystemTime)>,
}

impl Stubs {
    /// Records which components of each destination are missing under `rootfs`.
    pub fn predict<'a>(rootfs: &Path, dests: impl IntoIterator<Item = &'a str>) -> Stubs {
        let mut stubs = Stubs::default();
        for dest in dests {
            stubs.predict_one(rootfs, dest);
        }
        stubs
    }

    fn predict_one(&mut self, rootfs: &Path, dest: &str) {
        let mut host = rootfs.to_path_buf();
        let mut missing = false;
        for comp in Path::new(dest).components() {
            let Component::Normal(name) = comp else {
                continue;
            };
            let parent = host.clone();
            host.push(name);
            if missing {
                self.push_created(host.clone());
                continue;
            }
            match fs::symlink_metadata(&host) {
                // The runtime resolves symlinks inside the rootfs itself; stop predicting.
                Ok(m) if m.file_type().is_symlink() => return,
                Ok(m) if m.is_dir() => {}
                Ok(_) => return,
                Err(_) => {
                    missing = true;
                    if let Ok(m) = fs::metadata(&parent) {
                        if let (Ok(a), Ok(t)) = (m.accessed(), m.modified()) {
                            if !self.parents.iter().any(|(p, _, _)| p == &parent) {
                                self.parents.push((parent, a, t));
                            }
                        }
                    }
                    self.push_created(host.clone());
                }
            }
        }
    }

    fn push_created(&mut self, path: PathBuf) {
        if !self.created.contains(&path) {
            self.created.push(path);
        }
    }

    /// The host paths expected to be created.
    pub fn paths(&self) -> &[PathBuf] {
        &self.created
    }

    /// Deletes stubs that are still empty (deepest first) and restores their parents' times.
    pub fn remove(&self) {
        let mut created = self.created.clone();
        created.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for path in created {
            let empty = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::read_dir(&path)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false),
                Ok(m) => m.is_file() && m.len() == 0,
                Err(_) => false,
            };
            if empty {
                let removed = if path.is_dir() {
                    fs::remove_dir(&path)
                } else {
                    fs::remove_file(&path)
                };
                if let Err(e) = removed {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove mount stub");
                }
            }
        }
        for (dir, atime, mtime) in &self.parents {
            let times = fs::FileTimes::new()
                .set_accessed(*atime)
                .set_modified(*mtime);
            if let Err(e) = fs::File::open(dir).and_then(|f| f.set_times(times)) {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot restore directory times");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:100::/home/bob:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nalice:x:1000:\nusers:x:100:\nwheel:x:10:alice,bob\naudio:x:29:bob\n";

    #[test]
    fn resolves_names_ids_and_supplementary_groups() {
        let root = resolve_user_from("", PASSWD, GROUP).unwrap();
        assert_eq!(
            (root.uid, root.gid, root.home.as_deref()),
            (0, 0, Some("/root"))
        );
        let bob = resolve_user_from("bob", PASSWD, GROUP).unwrap();
        assert_eq!(
            (bob.uid, bob.gid, bob.additional_gids),
            (1001, 100, vec![10, 29])
        );
        let alice = resolve_user_from("alice:users", PASSWD, GROUP).unwrap();
        assert_eq!(
            (alice.uid, alice.gid, alice.additional_gids),
            (1000, 100, vec![])
        );
        let numeric = resolve_user_from("1000:1000", "", "").unwrap();
        assert_eq!((numeric.uid, numeric.gid, numeric.home), (1000, 1000, None));
        let listed = resolve_user_from("1001", PASSWD, GROUP).unwrap();
        assert_eq!((listed.gid, listed.additional_gids), (100, vec![10, 29]));
        assert!(resolve_user_from("mallory", PASSWD, GROUP)
            .unwrap_err()
            .is_not_found());
        assert!(resolve_user_from("bob:nogroup", PASSWD, GROUP).is_err());
    }

    #[test]
    fn resolution_stays_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("usr/etc")).unwrap();
        std::os::unix::fs::symlink("/usr/etc", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../../../shadow", root.join("usr/etc/up")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/etc/passwd").unwrap(),
            root.join("usr/etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, "/etc/up").unwrap(),
            root.join("shadow")
        );
        assert_eq!(resolve_in_root(root, "../../x").unwrap(), root.join("x"));
    }

    #[test]
    fn stubs_are_predicted_and_only_empty_ones_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), b"x").unwrap();
        let stubs = Stubs::predict(root, ["/etc/hosts", "/etc/passwd", "/cache/deep", "/proc"]);
        assert_eq!(
            stubs.paths(),
            [
                root.join("etc/hosts"),
                root.join("cache"),
                root.join("cache/deep"),
                root.join("proc")
            ]
        );
        fs::write(root.join("etc/hosts"), b"").unwrap();
        fs::create_dir_all(root.join("cache/deep")).unwrap();
        fs::create_dir(root.join("proc")).unwrap();
        fs::write(root.join("proc/kept"), b"").unwrap();
        stubs.remove();
        assert!(!root.join("etc/hosts").exists());
        assert!(!root.join("cache").exists());
        assert!(
            root.join("proc/kept").exists(),
            "a stub something was written into is kept"
        );
        assert!(root.join("etc/passwd").exists());
    }
}
