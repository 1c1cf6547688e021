//! Builds the OCI runtime spec (config.json) for one exec step with the oci-spec crate.
//! Pure: no I/O, so every rule here is unit-tested.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::error::{Error, Result};
use crate::request::{ExecRequest, MountKind, Network};
use crate::rootfs::ResolvedUser;

/// PATH used when the request's environment has none (Docker's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set.
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability, indexed by its kernel bit number (insecure steps get those the host has).
const ALL_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Paths hidden from non-insecure steps (as Docker does).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths read-only for non-insecure steps (as Docker does).
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Host files bind-mounted over the container's /etc files for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    /// Source of /etc/hosts.
    pub hosts: PathBuf,
    /// Source of /etc/resolv.conf.
    pub resolv_conf: PathBuf,
    /// Source of /etc/hostname.
    pub hostname: PathBuf,
}

/// The hostname a request runs with.
pub fn hostname(req: &ExecRequest) -> &str {
    if req.hostname.is_empty() {
        "hoist"
    } else {
        &req.hostname
    }
}

/// Builds the runtime spec for `req` running as `user` in cgroup `/hoist/<id>`; `host_caps` is
/// the bounding set of this process (a bit mask), which no container can exceed.
pub fn build_spec(
    req: &ExecRequest,
    user: &ResolvedUser,
    id: &str,
    etc: &EtcFiles,
    host_caps: u64,
) -> Result<Spec> {
    validate(req)?;
    let caps = capabilities(req.insecure, host_caps)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(req.args.clone())
        .env(environment(req, user))
        .cwd(if req.cwd.is_empty() {
            "/"
        } else {
            req.cwd.as_str()
        })
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids.clone())
                .build()
                .map_err(spec_err)?,
        )
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .inheritable(HashSet::new())
                .ambient(HashSet::new())
                .build()
                .map_err(spec_err)?,
        )
        .no_new_privileges(false)
        .build()
        .map_err(spec_err)?;
    let (masked, readonly): (&[&str], &[&str]) = if req.insecure {
        (&[], &[])
    } else {
        (MASKED_PATHS, READONLY_PATHS)
    };
    let linux = LinuxBuilder::default()
        .namespaces(namespaces(req.network)?)
        .cgroups_path(PathBuf::from(format!("/hoist/{id}")))
        .resources(
            LinuxResourcesBuilder::default()
                .devices(vec![LinuxDeviceCgroupBuilder::default()
                    .allow(req.insecure)
                    .access("rwm")
                    .build()
                    .map_err(spec_err)?])
                .build()
                .map_err(spec_err)?,
        )
        .masked_paths(masked.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        .readonly_paths(readonly.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err)?;
    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(req.rootfs.clone())
                .readonly(false)
                .build()
                .map_err(spec_err)?,
        )
        .hostname(hostname(req))
        .process(process)
        .mounts(mounts(req, etc)?)
        .linux(linux)
        .build()
        .map_err(spec_err)
}

fn validate(req: &ExecRequest) -> Result<()> {
    let invalid = |field, reason: &str| {
        Err(Error::InvalidRequest {
            field,
            reason: reason.to_string(),
        })
    };
    if req.args.is_empty() {
        return invalid("args", "no command given");
    }
    if !req.rootfs.is_absolute() {
        return invalid("rootfs", "must be an absolute path");
    }
    if !req.cwd.is_empty() && !req.cwd.starts_with('/') {
        return invalid("cwd", "must be absolute");
    }
    for m in &req.mounts {
        if !m.dest.starts_with('/') || m.dest.split('/').any(|c| c == "..") {
            return invalid("mounts", "destination must be absolute without `..`");
        }
    }
    Ok(())
}

/// The process environment: the request's, plus PATH and HOME when absent.
fn environment(req: &ExecRequest, user: &ResolvedUser) -> Vec<String> {
    let mut env = req.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home.as_deref().unwrap_or("/")));
    }
    env
}

fn capabilities(insecure: bool, host_caps: u64) -> Result<HashSet<Capability>> {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(bit, name)| {
            host_caps & (1 << bit) != 0 && (insecure || DEFAULT_CAPS.contains(name))
        })
        .map(|(_, n)| {
            n.parse::<Capability>().map_err(|e| Error::Spec {
                reason: format!("capability {n}: {e}"),
            })
        })
        .collect()
}

/// The bounding capability set of this process, from /proc/self/status (all bits if unreadable).
pub fn host_bounding_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        })
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(u64::MAX)
}

fn namespaces(network: Network) -> Result<Vec<oci_spec::runtime::LinuxNamespace>> {
    let mut kinds = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if network == Network::None {
        kinds.push(LinuxNamespaceType::Network);
    }
    kinds
        .into_iter()
        .map(|typ| {
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(spec_err)
        })
        .collect()
}

/// Standard filesystems, the per-run /etc files, then the request's own mounts.
fn mounts(req: &ExecRequest, etc: &EtcFiles) -> Result<Vec<Mount>> {
    let sys_options: &[&str] = if req.insecure {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount("/sys", "sysfs", "sysfs", sys_options)?,
    ];
    for (dest, source) in [
        ("/etc/hosts", &etc.hosts),
        ("/etc/resolv.conf", &etc.resolv_conf),
        ("/etc/hostname", &etc.hostname),
    ] {
        out.push(bind(dest, source, true)?);
    }
    for m in &req.mounts {
        out.push(match &m.kind {
            MountKind::Bind { source, readonly } => bind(&m.dest, source, *readonly)?,
            MountKind::Tmpfs { size } => {
                let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
                if *size > 0 {
                    options.push(format!("size={size}"));
                }
                MountBuilder::default()
                    .destination(&m.dest)
                    .typ("tmpfs")
                    .source("tmpfs")
                    .options(options)
                    .build()
                    .map_err(spec_err)?
            }
        });
    }
    Ok(out)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err)
}

fn bind(dest: &str, source: &Path, readonly: bool) -> Result<Mount> {
    let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        options.push("ro".to_string());
    }
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(options)
        .build()
        .map_err(spec_err)
}

/// Destinations of every mount in `spec`, for stub tracking.
pub fn mount_destinations(spec: &Spec) -> Vec<String> {
    spec.mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().to_string_lossy().into_owned())
        .collect()
}

fn spec_err(e: impl std::fmt::Display) -> Error {
    Error::Spec {
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ExecMount;

    fn etc() -> EtcFiles {
        EtcFiles {
            hosts: "/b/hosts".into(),
            resolv_conf: "/b/resolv.conf".into(),
            hostname: "/b/hostname".into(),
        }
    }

    fn root() -> ResolvedUser {
        ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: Some("/root".into()),
        }
    }

    fn namespace_kinds(spec: &Spec) -> Vec<LinuxNamespaceType> {
        spec.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect()
    }

    #[test]
    fn network_mode_decides_the_network_namespace() {
        let mut req = ExecRequest::new("/r", ["true"]);
        let spec = build_spec(&req, &root(), "x", &etc(), u64::MAX).unwrap();
        assert!(namespace_kinds(&spec).contains(&LinuxNamespaceType::Network));
        assert!(namespace_kinds(&spec).contains(&LinuxNamespaceType::Pid));
        req.network = Network::Host;
        let spec = build_spec(&req, &root(), "x", &etc(), u64::MAX).unwrap();
        assert!(!namespace_kinds(&spec).contains(&LinuxNamespaceType::Network));
    }

    #[test]
    fn default_env_caps_and_insecure() {
        let mut req = ExecRequest::new("/r", ["true"]);
        req.env = vec!["A=1".into()];
        let spec = build_spec(&req, &root(), "x", &etc(), u64::MAX).unwrap();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(
            process.env().as_ref().unwrap(),
            &["A=1", DEFAULT_PATH, "HOME=/root"]
        );
        let caps = process
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap();
        assert_eq!(caps.len(), 14);
        assert!(!caps.contains(&Capability::SysAdmin));
        assert!(spec
            .linux()
            .as_ref()
            .unwrap()
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string()));

        req.insecure = true;
        let spec = build_spec(&req, &root(), "x", &etc(), u64::MAX).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert!(caps.contains(&Capability::SysAdmin) && caps.len() == ALL_CAPS.len());
        let limited = capabilities(true, 0b11).unwrap();
        assert_eq!(
            limited,
            HashSet::from([Capability::Chown, Capability::DacOverride])
        );
        assert_eq!(
            spec.linux().as_ref().unwrap().masked_paths().as_deref(),
            Some(&[][..])
        );
    }

    #[test]
    fn mounts_include_etc_files_and_request_mounts() {
        let mut req = ExecRequest::new("/r", ["true"]);
        req.mounts.push(ExecMount {
            dest: "/cache".into(),
            kind: MountKind::Tmpfs { size: 1 << 20 },
        });
        let spec = build_spec(&req, &root(), "x", &etc(), u64::MAX).unwrap();
        let dests = mount_destinations(&spec);
        for d in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/cache",
        ] {
            assert!(dests.contains(&d.to_string()), "{d} missing from {dests:?}");
        }
        req.mounts.push(ExecMount {
            dest: "../x".into(),
            kind: MountKind::Tmpfs { size: 0 },
        });
        assert!(matches!(
            build_spec(&req, &root(), "x", &etc(), u64::MAX),
            Err(Error::InvalidRequest {
                field: "mounts",
                ..
            })
        ));
        let empty = ExecRequest::new("/r", Vec::<String>::new());
        assert!(matches!(
            build_spec(&empty, &root(), "x", &etc(), u64::MAX),
            Err(Error::InvalidRequest { field: "args", .. })
        ));
    }
}
