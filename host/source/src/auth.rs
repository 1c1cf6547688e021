//! Registry credentials from a docker `config.json` (`auths` entries only).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;

use crate::{Error, Result};

#[derive(serde::Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// The config file to read: `explicit` (a file, or a directory holding `config.json`), else
/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub(crate) fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    let path = match explicit {
        Some(p) if p.is_dir() => p.join("config.json"),
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => PathBuf::from(dir).join("config.json"),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json"),
        },
    };
    Some(path)
}

/// The host part of an `auths` key: `https://index.docker.io/v1/` → `index.docker.io`.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Credentials for `registry` (as written in a reference, e.g. `docker.io`, `host:5000`) from
/// the docker config at `path`; anonymous when the file or the entry does not exist.
pub(crate) fn lookup(path: Option<&Path>, registry: &str) -> Result<RegistryAuth> {
    let Some(path) = path else {
        return Ok(RegistryAuth::Anonymous);
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let config: DockerConfig = serde_json::from_slice(&data).map_err(|e| Error::DockerConfig {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let docker_hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    let wanted: Vec<&str> = if docker_hub.contains(&registry) {
        docker_hub.to_vec()
    } else {
        vec![registry]
    };
    let Some(entry) = config
        .auths
        .iter()
        .find(|(k, _)| wanted.contains(&key_host(k)))
        .map(|(_, v)| v)
    else {
        return Ok(RegistryAuth::Anonymous);
    };
    let bad = |reason: &str| Error::DockerConfig {
        path: path.to_path_buf(),
        reason: format!("auths entry for {registry}: {reason}"),
    };
    if let Some(token) = entry
        .registrytoken
        .as_ref()
        .or(entry.identitytoken.as_ref())
    {
        if !token.is_empty() {
            return Ok(RegistryAuth::Bearer(token.clone()));
        }
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("\"auth\" is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad("\"auth\" is not UTF-8"))?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| bad("\"auth\" is not user:password"))?;
        return Ok(RegistryAuth::Basic(user.to_string(), pass.to_string()));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(RegistryAuth::Basic(u.clone(), p.clone())),
        _ => Ok(RegistryAuth::Anonymous),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, json: &str) -> PathBuf {
        let p = dir.join("config.json");
        std::fs::write(&p, json).unwrap();
        p
    }

    #[test]
    fn basic_from_auth_field_and_hub_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3:cret");
        let p = write(
            dir.path(),
            &format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}}}}"#),
        );
        assert_eq!(
            lookup(Some(&p), "docker.io").unwrap(),
            RegistryAuth::Basic("bob".into(), "s3:cret".into())
        );
        assert_eq!(
            lookup(Some(&p), "quay.io").unwrap(),
            RegistryAuth::Anonymous
        );
    }

    #[test]
    fn username_password_and_token() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            r#"{"auths":{"r.example:5000":{"username":"u","password":"p"},
                "tok.example":{"identitytoken":"T"}}}"#,
        );
        assert_eq!(
            lookup(Some(&p), "r.example:5000").unwrap(),
            RegistryAuth::Basic("u".into(), "p".into())
        );
        assert_eq!(
            lookup(Some(&p), "tok.example").unwrap(),
            RegistryAuth::Bearer("T".into())
        );
        assert_eq!(
            lookup(Some(&dir.path().join("nope")), "x").unwrap(),
            RegistryAuth::Anonymous
        );
    }

    #[test]
    fn bad_json_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "{not json");
        assert!(matches!(
            lookup(Some(&p), "x"),
            Err(Error::DockerConfig { .. })
        ));
    }
}
