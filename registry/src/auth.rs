//! Credentials in the docker config format: `$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`. `credHelpers` (per registry) and `credsStore` (for all) name a
//! `docker-credential-NAME` program run with `get`, `store` or `erase`; otherwise the
//! credentials are in `auths` as base64 `user:secret`, as docker writes them.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use oci_client::secrets::RegistryAuth;
use serde_json::{json, Map, Value};

use crate::error::{msg, Result};

/// The docker config file.
pub fn config_path() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker/config.json")
}

/// The key docker uses for `host` (Docker Hub has its old URL).
pub fn server_key(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".to_string()
        }
        h => h.to_string(),
    }
}

fn read_config() -> Result<Map<String, Value>> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(msg(format!("{}: not a JSON object", p.display()))),
            Err(e) => Err(msg(format!("{}: {e}", p.display()))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(msg(format!("read {}: {e}", p.display()))),
    }
}

fn write_config(m: &Map<String, Value>) -> Result<()> {
    let p = config_path();
    let dir = p.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| msg(format!("mkdir {}: {e}", dir.display())))?;
    let bytes = serde_json::to_vec_pretty(m).map_err(|e| msg(format!("encoding: {e}")))?;
    // Secrets inside: readable by the owner only.
    runtime::atomic_file::write_durable(&p, &bytes, 0o600)
        .map_err(|e| msg(format!("write {}: {e}", p.display())))
}

/// The helper for `key`: `credHelpers[key]`, else `credsStore`.
fn helper(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get("credHelpers")
        .and_then(|h| h.get(key))
        .and_then(Value::as_str)
        .or_else(|| m.get("credsStore").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Run `docker-credential-NAME verb` with `input` on stdin.
fn run_helper(name: &str, verb: &str, input: &str) -> Result<(bool, String)> {
    let prog = format!("docker-credential-{name}");
    let mut c = Command::new(&prog)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| msg(format!("credential helper {prog}: {e}")))?;
    if let Some(mut i) = c.stdin.take() {
        let _ = i.write_all(input.as_bytes());
    }
    let out = c
        .wait_with_output()
        .map_err(|e| msg(format!("credential helper {prog}: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.status.success(), text))
}

/// The credentials stored for `host`, if any.
pub fn credentials(host: &str) -> Result<Option<(String, String)>> {
    let m = read_config()?;
    let key = server_key(host);
    if let Some(h) = helper(&m, &key) {
        let (ok, out) = run_helper(&h, "get", &key)?;
        if !ok {
            // "credentials not found in native keychain": none stored.
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&out)
            .map_err(|e| msg(format!("docker-credential-{h} get: {e}")))?;
        let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
        let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
        return Ok(Some((user.to_string(), secret.to_string())));
    }
    let auths = m.get("auths").and_then(Value::as_object);
    let entry = auths.and_then(|a| {
        [
            key.clone(),
            format!("https://{host}"),
            format!("http://{host}"),
        ]
        .iter()
        .find_map(|k| a.get(k))
    });
    let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(Value::as_str) else {
        return Ok(None);
    };
    let raw = base64_decode(auth).ok_or_else(|| {
        msg(format!(
            "{}: auths.{key}.auth is not base64",
            config_path().display()
        ))
    })?;
    let s = String::from_utf8_lossy(&raw).to_string();
    let (u, p) = s.split_once(':').ok_or_else(|| {
        msg(format!(
            "{}: auths.{key}.auth is not user:secret",
            config_path().display()
        ))
    })?;
    Ok(Some((u.to_string(), p.to_string())))
}

/// How to authenticate to `host`: its stored credentials, else anonymously.
pub fn registry_auth(host: &str) -> Result<RegistryAuth> {
    Ok(match credentials(host)? {
        Some((u, p)) => RegistryAuth::Basic(u, p),
        None => RegistryAuth::Anonymous,
    })
}

/// Store credentials for `host` (in its helper when one is named).
pub fn store_credentials(host: &str, user: &str, secret: &str) -> Result<()> {
    let mut m = read_config()?;
    let key = server_key(host);
    if let Some(h) = helper(&m, &key) {
        let input = json!({"ServerURL": key, "Username": user, "Secret": secret}).to_string();
        let (ok, out) = run_helper(&h, "store", &input)?;
        if !ok {
            return Err(msg(format!("docker-credential-{h} store: {out}")));
        }
        return Ok(());
    }
    let auths = m
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(a) = auths else {
        return Err(msg(format!(
            "{}: auths is not an object",
            config_path().display()
        )));
    };
    a.insert(
        key,
        json!({"auth": base64_encode(format!("{user}:{secret}").as_bytes())}),
    );
    write_config(&m)
}

/// Forget the credentials for `host`; false when there were none.
pub fn erase_credentials(host: &str) -> Result<bool> {
    let mut m = read_config()?;
    let key = server_key(host);
    if let Some(h) = helper(&m, &key) {
        let (ok, _) = run_helper(&h, "erase", &key)?;
        return Ok(ok);
    }
    let removed = m
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|a| {
            [
                key.clone(),
                format!("https://{host}"),
                format!("http://{host}"),
            ]
            .iter()
            .filter(|k| a.remove(k.as_str()).is_some())
            .count()
                > 0
        })
        .unwrap_or(false);
    if removed {
        write_config(&m)?;
    }
    Ok(removed)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for b in s.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|&c| c == b)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_both_ways() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("user:pass word", "dXNlcjpwYXNzIHdvcmQ="),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("a*b").is_none());
    }
}
