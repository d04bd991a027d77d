//! A [`Remote`] over HTTP(S) with `ureq`: bounded reads, timeouts, 403/404
//! reported as [`RemoteError::NotFound`].

use std::io::Read;
use std::time::Duration;

use super::updater::{Remote, RemoteError};

/// Fetches metadata and targets below two base URLs.
pub struct HttpRemote {
    agent: ureq::Agent,
    metadata_base: String,
    target_base: Option<String>,
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// Percent-encode what may not appear in a URL path (spaces, controls,
/// non-ASCII...) while leaving reserved characters and existing `%`
/// escapes alone, as `requests` does when it re-quotes a URL.
fn requote(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for ch in path.chars() {
        let keep = ch.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(ch);
        if keep {
            out.push(ch);
        } else {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

impl HttpRemote {
    /// A remote with metadata below `metadata_base` and (optionally) targets
    /// below `target_base`; 30 s connect timeout, 5 min overall.
    pub fn new(metadata_base: &str, target_base: Option<&str>) -> HttpRemote {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_global(Some(Duration::from_secs(300)))
            .build();
        HttpRemote {
            agent: config.into(),
            metadata_base: with_slash(metadata_base),
            target_base: target_base.map(with_slash),
        }
    }

    /// GET `url`, reading at most `max_length` bytes.
    pub fn get(&self, url: &str, max_length: u64) -> Result<Vec<u8>, RemoteError> {
        let resp = self
            .agent
            .get(url)
            .call()
            .map_err(|e| RemoteError::Other(e.to_string()))?;
        let status = resp.status().as_u16();
        if status == 403 || status == 404 {
            return Err(RemoteError::NotFound);
        }
        if status != 200 {
            return Err(RemoteError::Other(format!("HTTP status {status}")));
        }
        let reader = resp
            .into_body()
            .into_with_config()
            .limit(max_length.saturating_add(1))
            .reader();
        let mut buf = Vec::new();
        reader
            .take(max_length.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| {
                if buf.len() as u64 > max_length || e.to_string().contains("limit") {
                    RemoteError::TooLarge { limit: max_length }
                } else {
                    RemoteError::Other(e.to_string())
                }
            })?;
        if buf.len() as u64 > max_length {
            return Err(RemoteError::TooLarge { limit: max_length });
        }
        Ok(buf)
    }
}

impl Remote for HttpRemote {
    fn fetch_metadata(&mut self, name: &str, max_length: u64) -> Result<Vec<u8>, RemoteError> {
        let url = format!("{}{name}", self.metadata_base);
        self.get(&url, max_length)
    }

    fn fetch_target(&mut self, path: &str, max_length: u64) -> Result<Vec<u8>, RemoteError> {
        let base = self
            .target_base
            .as_ref()
            .ok_or_else(|| RemoteError::Other("no target base URL configured".into()))?;
        let url = format!("{base}{}", requote(path));
        self.get(&url, max_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requote_keeps_reserved() {
        assert_eq!(requote("a b/c%20d?é"), "a%20b/c%20d?%C3%A9");
    }
}
