//! The differential check against buildah: the same Dockerfiles are built by Debian's buildah
//! (`bud --layers --runtime runc`) and by hoist from the same locally made busybox image, both
//! results are exported as OCI images and unpacked with umoci, and the two root filesystems
//! (paths, file types, modes, owners, link targets, file digests, hard-link groups) and the
//! image configs (Env, Cmd, Entrypoint, WorkingDir, User, Labels, ExposedPorts, Volumes,
//! StopSignal) are compared.
//!
//! Differences that are buildah's own artefacts are listed in [`BUILDAH_ARTEFACTS`] with the
//! reason, printed when they occur, and counted as differences in the match rate; any other
//! difference fails the test. History entries and timestamps are not compared (each builder
//! words `created_by` its own way, and times differ by construction).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::util::{
    build_oci, busybox_image, out_path, run_ok, skopeo_inspect, umoci_unpack, unpack_oci_archive,
    Dir,
};

/// One Dockerfile built by both tools. `{BASE}` in it stands for the busybox image.
struct Case {
    /// Name, used for tags and directories.
    name: &'static str,
    /// The Dockerfile, with `{BASE}` for the base image reference.
    dockerfile: &'static str,
    /// Context files: path, contents, mode.
    files: &'static [(&'static str, &'static str, u32)],
}

/// The Dockerfiles compared.
const CASES: &[Case] = &[
    Case {
        name: "files",
        dockerfile: "FROM {BASE}\n\
            RUN mkdir -p /data/sticky /data/private /data/owned /data/doomed-dir/sub /data/opaque \\\n\
             && chmod 1777 /data/sticky && chmod 0700 /data/private \\\n\
             && chown nobody:nogroup /data/owned \\\n\
             && echo keep > /data/keep.txt && chmod 0640 /data/keep.txt \\\n\
             && echo doomed > /data/doomed.txt \\\n\
             && touch /data/doomed-dir/sub/f /data/opaque/old1 /data/opaque/old2 \\\n\
             && echo setuid > /data/suid && chmod 4755 /data/suid \\\n\
             && echo setgid > /data/sgid && chmod 2750 /data/sgid \\\n\
             && : > /data/empty && chmod 0600 /data/empty\n\
            RUN rm /data/doomed.txt && rm -rf /data/doomed-dir \\\n\
             && rm -rf /data/opaque && mkdir /data/opaque && echo fresh > /data/opaque/new \\\n\
             && ln -s /data/keep.txt /data/abs-link && ln -s keep.txt /data/rel-link \\\n\
             && ln -s /nonexistent/target /data/dangling-link \\\n\
             && echo same > /data/same.txt && ln /data/same.txt /data/same.hardlink \\\n\
             && ln /data/keep.txt /data/keep.hardlink \\\n\
             && echo owned > /data/owned/file && chown 1000:1000 /data/owned/file && chmod 0600 /data/owned/file \\\n\
             && chmod 0644 /data/suid && chmod 4755 /data/suid \\\n\
             && rm /bin/vi\n\
            COPY payload.txt /data/copied.txt\n\
            COPY --chown=1000:1000 payload.txt /data/copied-owned.txt\n\
            COPY tree/ /data/tree/\n\
            COPY run.sh /usr/local/bin/\n",
        files: &[
            ("payload.txt", "payload\n", 0o644),
            ("run.sh", "#!/bin/sh\necho run\n", 0o755),
            ("tree/a.txt", "a\n", 0o644),
            ("tree/sub/b.txt", "b\n", 0o600),
            ("tree/sub/deeper/c.bin", "c\0c\n", 0o640),
        ],
    },
    Case {
        name: "config",
        dockerfile: "FROM {BASE}\n\
            ENV APP_HOME=/srv/app MODE=\"diff test\"\n\
            ENV PATH=/srv/app/bin:$PATH\n\
            WORKDIR $APP_HOME\n\
            RUN echo \"$APP_HOME $MODE\" > where.txt && mkdir bin \\\n\
             && printf '#!/bin/sh\\necho hi\\n' > bin/hi && chmod 755 bin/hi\n\
            USER 1000:1000\n\
            RUN id -u > /tmp/uid.txt && echo \"$HOME\" > /tmp/home.txt\n\
            USER root\n\
            LABEL org.example.name=\"diff\" org.example.multi=\"a b c\"\n\
            EXPOSE 8080 53/udp\n\
            VOLUME /var/cache/app\n\
            STOPSIGNAL SIGINT\n\
            ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
            CMD [\"echo hello\"]\n",
        files: &[],
    },
    Case {
        name: "multistage",
        dockerfile: "FROM {BASE} AS build\n\
            WORKDIR /src\n\
            COPY hello.sh lib.txt ./\n\
            RUN mkdir -p /out/bin /out/share \\\n\
             && cp hello.sh /out/bin/hello && chmod 755 /out/bin/hello \\\n\
             && ln -s hello /out/bin/hi && cp lib.txt /out/share/ && echo built > /out/stamp\n\
            \n\
            FROM {BASE} AS unused\n\
            RUN echo never > /never\n\
            \n\
            FROM {BASE}\n\
            COPY --from=build /out/ /opt/app/\n\
            COPY --from=build --chown=65534:65534 /out/stamp /opt/stamp\n\
            RUN rm /opt/app/stamp && mkdir -p /var/log/app && chown 65534:65534 /var/log/app\n\
            ENV PATH=/opt/app/bin:$PATH\n\
            USER 65534\n\
            WORKDIR /opt/app\n\
            CMD [\"hello\"]\n",
        files: &[("hello.sh", "#!/bin/sh\necho hello from stage\n", 0o755), ("lib.txt", "shared data\n", 0o644)],
    },
];

/// A difference that is a known artefact of buildah, not of hoist, and why.
struct Artefact {
    /// A path in the rootfs, or `config:FIELD`.
    item: &'static str,
    /// The kind of difference.
    kind: DiffKind,
    /// Why buildah's image has it.
    why: &'static str,
}

/// buildah's known artefacts. They are listed, printed and counted, never filtered out silently.
const BUILDAH_ARTEFACTS: &[Artefact] = &[
    Artefact {
        item: "/etc/hostname",
        kind: DiffKind::OnlyIn("buildah"),
        why: "buildah bind-mounts /etc/hostname into RUN containers and leaves the empty mount point \
              file (mode 0755) in the RUN layer when the base has none",
    },
    Artefact {
        item: "/etc/hosts",
        kind: DiffKind::OnlyIn("buildah"),
        why: "likewise the /etc/hosts mount point of RUN containers (empty, mode 0755)",
    },
    Artefact {
        item: "/etc/resolv.conf",
        kind: DiffKind::OnlyIn("buildah"),
        why: "likewise the /etc/resolv.conf mount point of RUN containers (empty, mode 0755)",
    },
    Artefact {
        item: "/run",
        kind: DiffKind::OnlyIn("buildah"),
        why: "buildah mounts a tmpfs on /run in RUN containers and leaves the directory in the layer",
    },
    Artefact {
        item: "config:Env order",
        kind: DiffKind::Attr("value"),
        why: "`ENV` of a variable the image already has (PATH): buildah moves it to the end of Env, \
              BuildKit replaces it in place and so does hoist; the variables and values are compared \
              separately (config:Env) and must match",
    },
    Artefact {
        item: "config:Labels.io.buildah.version",
        kind: DiffKind::OnlyIn("buildah"),
        why: "buildah stamps its version as a label on every image it commits",
    },
];

/// How two items differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiffKind {
    /// The item exists only in this tool's image.
    OnlyIn(&'static str),
    /// Both have it, and this attribute differs.
    Attr(&'static str),
}

/// One difference between the two images.
#[derive(Debug, Clone)]
struct Difference {
    /// Path (with leading slash) or `config:FIELD`.
    item: String,
    /// How they differ.
    kind: DiffKind,
    /// buildah's value.
    buildah: String,
    /// hoist's value.
    hoist: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DiffKind::OnlyIn(tool) => write!(
                f,
                "{}: only in {tool} ({}{})",
                self.item, self.buildah, self.hoist
            ),
            DiffKind::Attr(attr) => {
                write!(
                    f,
                    "{}: {attr} differs: buildah {} / hoist {}",
                    self.item, self.buildah, self.hoist
                )
            }
        }
    }
}

impl Difference {
    /// The artefact entry that explains this difference, if any.
    fn known(&self) -> Option<&'static Artefact> {
        BUILDAH_ARTEFACTS
            .iter()
            .find(|a| a.item == self.item && a.kind == self.kind)
    }
}

/// What the comparison looks at for one path of a rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// "dir", "file", "symlink", or another type name.
    kind: &'static str,
    /// Permission bits with setuid/setgid/sticky, octal.
    mode: String,
    /// "uid:gid".
    owner: String,
    /// Symlink target.
    link: String,
    /// sha256 of a regular file's contents.
    digest: String,
    /// For a file with several links: all its paths in this rootfs, sorted.
    hardlinks: String,
}

impl Entry {
    /// The attributes, named, in comparison order.
    fn attrs(&self) -> [(&'static str, &str); 6] {
        [
            ("type", self.kind),
            ("mode", &self.mode),
            ("owner", &self.owner),
            ("link target", &self.link),
            ("content digest", &self.digest),
            ("hard links", &self.hardlinks),
        ]
    }

    /// A short description for "only in" differences.
    fn describe(&self) -> String {
        let extra = if !self.link.is_empty() {
            format!(" -> {}", self.link)
        } else if self.kind == "file" {
            format!(" {}", &self.digest[..12])
        } else {
            String::new()
        };
        format!("{} {} {}{extra}", self.kind, self.mode, self.owner)
    }
}

/// Reads a whole rootfs: every path (with leading slash) to its entry.
fn snapshot(rootfs: &Path) -> BTreeMap<String, Entry> {
    let mut entries = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    walk(rootfs, rootfs, &mut entries, &mut inodes);
    for paths in inodes.values().filter(|p| p.len() > 1) {
        let group = paths.join(" ");
        for path in paths {
            if let Some(e) = entries.get_mut(path) {
                e.hardlinks = group.clone();
            }
        }
    }
    entries
}

/// Records `dir`'s children (recursively) into `entries`; regular files by inode into `inodes`.
fn walk(
    root: &Path,
    dir: &Path,
    entries: &mut BTreeMap<String, Entry>,
    inodes: &mut BTreeMap<u64, Vec<String>>,
) {
    let mut children: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|d| d.expect("dir entry").path())
        .collect();
    children.sort();
    for path in children {
        let meta =
            fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
        let rel = format!(
            "/{}",
            path.strip_prefix(root).expect("under root").display()
        );
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else {
            "special"
        };
        let link = if ft.is_symlink() {
            fs::read_link(&path)
                .map(|t| t.display().to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let digest = if ft.is_file() {
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            hex::encode(Sha256::digest(&bytes))
        } else {
            String::new()
        };
        if ft.is_file() && meta.nlink() > 1 {
            inodes.entry(meta.ino()).or_default().push(rel.clone());
        }
        let entry = Entry {
            kind,
            // Symlink permission bits mean nothing on Linux; umoci sets them as it likes.
            mode: if ft.is_symlink() {
                String::new()
            } else {
                format!("{:04o}", meta.mode() & 0o7777)
            },
            owner: format!("{}:{}", meta.uid(), meta.gid()),
            link,
            digest,
            hardlinks: String::new(),
        };
        entries.insert(rel, entry);
        if ft.is_dir() {
            walk(root, &path, entries, inodes);
        }
    }
}

/// The config fields compared, flattened to `field` / `Labels.KEY` -> value text.
fn config_fields(config: &serde_json::Value) -> BTreeMap<String, String> {
    let c = &config["config"];
    let mut out = BTreeMap::new();
    // Env twice: its variables (sorted), and their order, which builders treat differently.
    let env: Vec<String> = c["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut sorted = env.clone();
    sorted.sort();
    out.insert("Env".to_string(), sorted.join(" "));
    let names: Vec<&str> = env
        .iter()
        .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k))
        .collect();
    out.insert("Env order".to_string(), names.join(" "));
    for field in ["Cmd", "Entrypoint", "WorkingDir", "User", "StopSignal"] {
        let value = &c[field];
        let text = match value {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.insert(field.to_string(), text);
    }
    for field in ["ExposedPorts", "Volumes"] {
        let keys: BTreeSet<String> = c[field]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        out.insert(
            field.to_string(),
            keys.into_iter().collect::<Vec<_>>().join(" "),
        );
    }
    if let Some(labels) = c["Labels"].as_object() {
        for (k, v) in labels {
            out.insert(
                format!("Labels.{k}"),
                v.as_str().unwrap_or_default().to_string(),
            );
        }
    }
    out
}

/// Counts of one comparison.
#[derive(Debug, Default)]
struct Tally {
    /// Paths both images share unchanged with the base image: not counted below.
    base_paths: usize,
    /// Paths compared (the builds added or changed them in at least one image).
    paths: usize,
    /// Of these, identical in both.
    paths_same: usize,
    /// Config fields compared.
    fields: usize,
    /// Of these, identical.
    fields_same: usize,
}

/// Compares two rootfs snapshots and configs; returns every difference.
fn compare(
    base: &BTreeMap<String, Entry>,
    buildah: &BTreeMap<String, Entry>,
    hoist: &BTreeMap<String, Entry>,
    buildah_config: &BTreeMap<String, String>,
    hoist_config: &BTreeMap<String, String>,
    tally: &mut Tally,
) -> Vec<Difference> {
    let mut diffs = Vec::new();
    let paths: BTreeSet<&String> = buildah.keys().chain(hoist.keys()).collect();
    for path in paths {
        let (b, h) = (buildah.get(path), hoist.get(path));
        if b.is_some() && b == h && base.get(path) == b {
            tally.base_paths += 1;
            continue;
        }
        tally.paths += 1;
        match (b, h) {
            (Some(b), Some(h)) if b == h => tally.paths_same += 1,
            (Some(b), Some(h)) => {
                for ((attr, bv), (_, hv)) in b.attrs().into_iter().zip(h.attrs()) {
                    if bv != hv {
                        diffs.push(Difference {
                            item: path.clone(),
                            kind: DiffKind::Attr(attr),
                            buildah: bv.to_string(),
                            hoist: hv.to_string(),
                        });
                    }
                }
            }
            (Some(b), None) => diffs.push(Difference {
                item: path.clone(),
                kind: DiffKind::OnlyIn("buildah"),
                buildah: b.describe(),
                hoist: String::new(),
            }),
            (None, Some(h)) => diffs.push(Difference {
                item: path.clone(),
                kind: DiffKind::OnlyIn("hoist"),
                buildah: String::new(),
                hoist: h.describe(),
            }),
            (None, None) => unreachable!("the path came from one of the maps"),
        }
    }
    let fields: BTreeSet<&String> = buildah_config.keys().chain(hoist_config.keys()).collect();
    for field in fields {
        tally.fields += 1;
        let item = format!("config:{field}");
        match (buildah_config.get(field), hoist_config.get(field)) {
            (Some(b), Some(h)) if b == h => tally.fields_same += 1,
            (Some(b), Some(h)) => diffs.push(Difference {
                item,
                kind: DiffKind::Attr("value"),
                buildah: b.clone(),
                hoist: h.clone(),
            }),
            (Some(b), None) => diffs.push(Difference {
                item,
                kind: DiffKind::OnlyIn("buildah"),
                buildah: b.clone(),
                hoist: String::new(),
            }),
            (None, Some(h)) => diffs.push(Difference {
                item,
                kind: DiffKind::OnlyIn("hoist"),
                buildah: String::new(),
                hoist: h.clone(),
            }),
            (None, None) => unreachable!("the field came from one of the maps"),
        }
    }
    diffs
}

/// Debian's buildah with private storage under one directory, cleaned up on drop.
struct Buildah {
    /// Holds `root/` and `runroot/`.
    dir: PathBuf,
}

impl Buildah {
    /// Private storage in `dir`.
    fn new(dir: PathBuf) -> Buildah {
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        Buildah { dir }
    }

    /// `buildah` with the global flags selecting this storage.
    fn command(&self) -> Command {
        let mut cmd = Command::new("buildah");
        cmd.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .args(["--storage-driver", "overlay"]);
        cmd
    }

    /// `buildah bud --layers --runtime runc` of `context`, then a push of the image to the OCI
    /// layout `layout` (tag `latest`).
    fn build_to_layout(&self, context: &Path, tag: &str, layout: &Path) {
        run_ok(
            self.command()
                .args(["bud", "--layers", "--runtime", "runc", "-t", tag, "-f"])
                .arg(context.join("Dockerfile"))
                .arg(context),
        );
        run_ok(
            self.command()
                .args(["push", "-q", tag])
                .arg(format!("oci:{}:latest", layout.display())),
        );
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        let _ = self.command().args(["rm", "--all"]).output();
        let _ = self.command().args(["rmi", "--all", "--force"]).output();
        let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
        let prefix = self.dir.display().to_string();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        points.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for point in points {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Builds one case with both tools (buildah with its own storage under the case's directory)
/// and compares the results.
fn run_case(case: &Case, base: &BTreeMap<String, Entry>) -> (Tally, Vec<Difference>) {
    // hoist: FROM busybox, bound to the fixture layout as a named context.
    let case_dir = Dir::new(&format!("differential-{}", case.name));
    for (path, contents, mode) in case.files {
        case_dir.write_file_mode(path, contents, *mode);
    }
    let (archive, _) = build_oci(
        &case_dir,
        case.name,
        &case.dockerfile.replace("{BASE}", "busybox"),
        &[],
    );
    let hoist_rootfs = unpack_oci_archive(&archive, &out_path(&case_dir, "hoist-unpacked"));
    let hoist_config = skopeo_inspect(
        &format!("oci-archive:{}", archive.display()),
        &["--config", "--raw"],
    );

    // buildah: the same context, FROM the same layout through its oci: transport.
    let buildah = Buildah::new(out_path(&case_dir, "buildah-storage"));
    let from = format!("oci:{}:latest", busybox_image().dir.display());
    case_dir.write_file("Dockerfile", case.dockerfile.replace("{BASE}", &from));
    let layout = out_path(&case_dir, "buildah-oci");
    buildah.build_to_layout(
        case_dir.path(),
        &format!("localhost/differential/{}", case.name),
        &layout,
    );
    let buildah_rootfs = umoci_unpack(&layout, "latest", &out_path(&case_dir, "buildah-bundle"));
    let buildah_config = skopeo_inspect(
        &format!("oci:{}:latest", layout.display()),
        &["--config", "--raw"],
    );

    let mut tally = Tally::default();
    let diffs = compare(
        base,
        &snapshot(&buildah_rootfs),
        &snapshot(&hoist_rootfs),
        &config_fields(&buildah_config),
        &config_fields(&hoist_config),
        &mut tally,
    );
    (tally, diffs)
}

#[test]
fn buildah_and_hoist_build_the_same_images() {
    let dir = Dir::new("buildah_and_hoist_build_the_same_images");
    let base_layout = busybox_image();
    let base_rootfs = umoci_unpack(&base_layout.dir, "latest", &out_path(&dir, "base-bundle"));
    let base = snapshot(&base_rootfs);

    // The cases are independent: build them side by side.
    let results: Vec<(Tally, Vec<Difference>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = CASES
            .iter()
            .map(|case| scope.spawn(|| run_case(case, &base)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });

    let mut report = String::new();
    let mut unexplained = Vec::new();
    let mut total = Tally::default();
    for (case, (tally, diffs)) in CASES.iter().zip(results) {
        report += &format!(
            "case {:<10} paths: {}/{} identical ({} base paths unchanged in both); config fields: {}/{} identical\n",
            case.name, tally.paths_same, tally.paths, tally.base_paths, tally.fields_same, tally.fields
        );
        for d in &diffs {
            match d.known() {
                Some(a) => {
                    report += &format!("    known buildah artefact: {d}\n        why: {}\n", a.why)
                }
                None => {
                    report += &format!("    UNEXPLAINED: {d}\n");
                    unexplained.push(format!("{}: {d}", case.name));
                }
            }
        }
        total.base_paths += tally.base_paths;
        total.paths += tally.paths;
        total.paths_same += tally.paths_same;
        total.fields += tally.fields;
        total.fields_same += tally.fields_same;
    }
    let same = total.paths_same + total.fields_same;
    let all = total.paths + total.fields;
    let rate = 100.0 * same as f64 / all.max(1) as f64;
    report += &format!(
        "differential match rate: {same}/{all} items identical ({rate:.1}%): {}/{} built paths, {}/{} config fields; \
         {} unexplained differences\n",
        total.paths_same,
        total.paths,
        total.fields_same,
        total.fields,
        unexplained.len()
    );
    eprintln!("{report}");
    assert!(
        unexplained.is_empty(),
        "differences from buildah that are not known artefacts:\n{report}"
    );
}
