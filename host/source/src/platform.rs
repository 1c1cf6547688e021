//! The platform an image is selected for: OCI `os`/`architecture`/`variant` names.

use std::fmt;
use std::str::FromStr;

/// An OCI platform (`linux/amd64`, `linux/arm64/v8`, ...), with OCI architecture names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// OCI architecture name, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Optional architecture variant, e.g. `v7` for `arm`, `v8` for `arm64`.
    pub variant: Option<String>,
}

impl Platform {
    /// Builds a platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform this process runs on, with Rust's arch names mapped to OCI's.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "loongarch64" => ("loong64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            other => (other, None),
        };
        Platform::new(std::env::consts::OS, architecture, variant)
    }

    /// The variant, with the default an image may omit (`v8` for arm64, `v7` for arm).
    fn effective_variant(architecture: &str, variant: Option<&str>) -> Option<String> {
        match (architecture, variant) {
            (_, Some(v)) if !v.is_empty() => Some(v.to_string()),
            ("arm64", _) => Some("v8".to_string()),
            ("arm", _) => Some("v7".to_string()),
            _ => None,
        }
    }

    /// True when an image built for `os`/`architecture`/`variant` runs on this platform
    /// exactly (no emulation): same os and architecture, and the same variant once the
    /// defaults are applied; a request without a variant accepts any variant.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        if self.variant.is_none() {
            return true;
        }
        Self::effective_variant(&self.architecture, self.variant.as_deref())
            == Self::effective_variant(architecture, variant)
    }

    /// True when an OCI descriptor platform matches (see [`Platform::matches`]).
    pub fn matches_oci(&self, p: &oci_spec::image::Platform) -> bool {
        self.matches(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        )
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A platform string that is not `os/arch[/variant]`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid platform {input:?}: expected os/arch[/variant]")]
pub struct ParsePlatformError {
    /// The text that failed to parse.
    pub input: String,
}

impl FromStr for Platform {
    type Err = ParsePlatformError;

    /// Parses `os/arch[/variant]`, normalising Rust-style arch names (`x86_64`, `aarch64`).
    fn from_str(s: &str) -> Result<Platform, ParsePlatformError> {
        let err = || ParsePlatformError {
            input: s.to_string(),
        };
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty()).ok_or_else(err)?;
        let arch = parts.next().filter(|p| !p.is_empty()).ok_or_else(err)?;
        let variant = parts.next().filter(|p| !p.is_empty());
        if parts.next().is_some() {
            return Err(err());
        }
        let arch = match arch {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        Ok(Platform::new(os, arch, variant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_uses_oci_names() {
        let p = Platform::host();
        assert_eq!(p.os, "linux");
        assert!(!["x86_64", "aarch64"].contains(&p.architecture.as_str()));
    }

    #[test]
    fn parse_and_display() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p, Platform::new("linux", "arm64", Some("v8")));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            "linux/x86_64".parse::<Platform>().unwrap().architecture,
            "amd64"
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
    }

    #[test]
    fn variant_defaults() {
        let arm64 = Platform::new("linux", "arm64", Some("v8"));
        assert!(arm64.matches("linux", "arm64", None));
        assert!(!arm64.matches("linux", "amd64", None));
        let armv6 = Platform::new("linux", "arm", Some("v6"));
        assert!(!armv6.matches("linux", "arm", Some("v7")));
        assert!(Platform::new("linux", "arm", None).matches("linux", "arm", Some("v6")));
    }
}
