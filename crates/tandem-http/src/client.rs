//! The outbound HTTPS client both roles use to fetch partners' metadata documents: trusts the
//! deployment's CA when one is configured (else the system's roots), bounded in time and size.

use std::time::Duration;

/// Time allowed for one fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A client trusting `ca_pem` only (the deployment CA), or the platform's roots when `None`.
pub fn https_client(ca_pem: Option<&str>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(FETCH_TIMEOUT).redirect(reqwest::redirect::Policy::limited(3));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| format!("trusted CA: {e}"))?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| format!("cannot build the HTTPS client: {e}"))
}

/// GETs `url` and returns its body, refusing non-200 answers and bodies over `max_bytes`.
pub async fn get_limited(client: &reqwest::Client, url: &str, max_bytes: usize) -> Result<String, String> {
    let resp = client.get(url).send().await.map_err(|e| root_cause(&e))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(format!("HTTP {}", resp.status()));
    }
    if resp.content_length().is_some_and(|n| n > max_bytes as u64) {
        return Err(format!("larger than {max_bytes} bytes"));
    }
    let body = resp.bytes().await.map_err(|e| root_cause(&e))?;
    if body.len() > max_bytes {
        return Err(format!("larger than {max_bytes} bytes"));
    }
    String::from_utf8(body.to_vec()).map_err(|_| "not UTF-8".to_owned())
}

/// The innermost cause of an error, which is what an administrator can act on.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
