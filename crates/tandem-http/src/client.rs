//! The outbound HTTPS client both roles use to fetch partners' metadata documents (and the EWS
//! client its answers): trusts the deployment's CA when one is configured (else the system's
//! roots), bounded in time and size.

use std::time::Duration;

/// Time allowed for one fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the HTTPS client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The configured trust anchor is not a PEM certificate bundle.
    #[error("trusted CA: {0}")]
    TrustedCa(#[source] reqwest::Error),
    #[error("cannot build the HTTPS client: {0}")]
    Build(#[source] reqwest::Error),
}

/// Why a bounded fetch failed. The messages are what administrators read in metadata errors,
/// so they name the cause alone (the URL is added by the caller).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request did not complete; the message is the innermost cause.
    #[error("{cause}")]
    Transport {
        cause: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    #[error("not UTF-8")]
    NotUtf8,
}

impl FetchError {
    fn transport(source: reqwest::Error) -> FetchError {
        FetchError::Transport { cause: root_cause(&source), source }
    }

    /// True when the request never reached an answer because the host name did not resolve.
    pub fn is_dns(&self) -> bool {
        matches!(self, FetchError::Transport { cause, .. } if looks_like_dns(cause))
    }
}

/// True when an error's innermost cause reads like a name-resolution failure.
pub fn looks_like_dns(cause: &str) -> bool {
    let c = cause.to_ascii_lowercase();
    c.contains("dns") || c.contains("resolve") || c.contains("lookup")
}

/// A client trusting `ca_pem` only (the deployment CA), or the platform's roots when `None`.
pub fn https_client(ca_pem: Option<&str>) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder().timeout(FETCH_TIMEOUT).redirect(reqwest::redirect::Policy::limited(3));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(ClientError::TrustedCa)?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(ClientError::Build)
}

/// Time allowed for one POST to a callback (an EWS push notification), connection included.
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed to open the connection to a callback.
pub const CALLBACK_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The client that POSTs to receivers' callback URLs (EWS push notifications): `http://` and
/// `https://`, trusting the platform's roots plus `ca_pem` (the deployment CA) when given, each
/// request bounded by [`CALLBACK_TIMEOUT`], and no redirects followed (a receiver answers where
/// it was subscribed, as Exchange expects).
pub fn callback_client(ca_pem: Option<&str>) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .timeout(CALLBACK_TIMEOUT)
        .connect_timeout(CALLBACK_CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(2);
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(ClientError::TrustedCa)?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(ClientError::Build)
}

/// POSTs `body` to `url` with `content_type` and returns the status and a body of at most
/// `max_bytes` (an over-long answer is an error, not read whole).
pub async fn post_limited(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: String,
    max_bytes: usize,
) -> Result<(reqwest::StatusCode, Vec<u8>), FetchError> {
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .map_err(FetchError::transport)?;
    let status = resp.status();
    Ok((status, read_limited(resp, max_bytes).await?))
}

/// GETs `url` and returns its body, refusing non-200 answers and bodies over `max_bytes`.
pub async fn get_limited(client: &reqwest::Client, url: &str, max_bytes: usize) -> Result<String, FetchError> {
    let resp = client.get(url).send().await.map_err(FetchError::transport)?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(resp.status()));
    }
    let body = read_limited(resp, max_bytes).await?;
    String::from_utf8(body).map_err(|_| FetchError::NotUtf8)
}

/// Reads a response body of at most `max_bytes`, chunk by chunk, so an endless or oversized
/// answer is cut off without being held in memory whole.
pub async fn read_limited(mut resp: reqwest::Response, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    if resp.content_length().is_some_and(|n| n > max_bytes as u64) {
        return Err(FetchError::TooLarge(max_bytes));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(FetchError::transport)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The innermost cause of an error, which is what an administrator can act on.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause_alone() {
        assert_eq!(FetchError::TooLarge(10).to_string(), "larger than 10 bytes");
        assert_eq!(FetchError::Status(reqwest::StatusCode::NOT_FOUND).to_string(), "HTTP 404 Not Found");
        assert_eq!(FetchError::NotUtf8.to_string(), "not UTF-8");
        assert!(looks_like_dns("failed to lookup address information"));
        assert!(!looks_like_dns("connection refused"));
    }
}
