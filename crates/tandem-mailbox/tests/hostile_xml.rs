//! The two payloads that took the server down (issue 9), posted through the role's real request
//! path: a CreateItem property holding 10,000 nested elements (once a stack overflow that
//! aborted the process) and an element with 1,000,000 attributes (once about 40 minutes of CPU
//! on an async worker), and many namespace declarations in scope. Each now gets a SOAP fault at
//! once and the role keeps answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use tandem_config::{MailboxConfig, StoreLocation};
use tandem_directory::{Directory, NewUser};
use tandem_store::testing::TestDatabase;
use tower::ServiceExt as _;

const S: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";

fn envelope(body: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}"><s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    )
}

/// CreateItem whose Subject holds `depth` nested elements.
fn nested_create_item(depth: usize) -> String {
    envelope(&format!(
        r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:Subject>{}x{}</t:Subject></t:Message></m:Items></m:CreateItem>"#,
        "<t:a>".repeat(depth),
        "</t:a>".repeat(depth)
    ))
}

/// CreateItem whose Message element carries `count` attributes.
fn wide_create_item(count: usize) -> String {
    let mut attrs = String::with_capacity(count * 12);
    for i in 0..count {
        attrs.push_str(&format!(" a{i}=\"\""));
    }
    envelope(&format!(
        r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message{attrs}><t:Subject>x</t:Subject></t:Message></m:Items></m:CreateItem>"#
    ))
}

const INBOX: &str = r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>"#;

async fn post(app: &axum::Router, path: &str, body: String) -> (StatusCode, String) {
    let auth = base64::engine::general_purpose::STANDARD.encode("alice@litwareinc.com:correct horse");
    let req = Request::post(path)
        .header(header::AUTHORIZATION, format!("Basic {auth}"))
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn nested_and_wide_requests_get_faults_and_the_role_keeps_answering() {
    let dir_db = TestDatabase::sqlite();
    let dir = Directory::open(&dir_db.url).await.unwrap();
    dir.add(&NewUser {
        name: "alice".parse().unwrap(),
        display_name: "Alice".into(),
        sip_uri: "sip:alice@litwareinc.com".parse().unwrap(),
        smtp_address: "alice@litwareinc.com".parse().unwrap(),
        password: "correct horse".into(),
    })
    .await
    .unwrap();
    let db = TestDatabase::sqlite();
    let config = MailboxConfig {
        ews_push_minute_seconds: tandem_config::DEFAULT_EWS_PUSH_MINUTE_SECONDS,
        ews_max_concurrency: tandem_config::DEFAULT_EWS_MAX_CONCURRENCY,
        retention_sweep_seconds: tandem_config::DEFAULT_RETENTION_SWEEP_SECONDS,
        enabled: true,
        fqdn: "mail.litwareinc.com".parse().unwrap(),
        autodiscover_fqdn: "autodiscover.litwareinc.com".parse().unwrap(),
        https_listen: "127.0.0.1:8443".parse().unwrap(),
        store: StoreLocation::Sqlite(db.url.strip_prefix("sqlite://").unwrap().into()),
        https_limits: Default::default(),
        ews_limits: Default::default(),
    };
    let store = tandem_mailbox::open_store(&config).await.unwrap();
    let app = tandem_mailbox::routes(&config, store, dir);

    let nested = nested_create_item(10_000);
    assert!(nested.len() > 110_000, "{}", nested.len());
    let wide = wide_create_item(1_000_000);
    assert!(wide.len() > 10_000_000, "{}", wide.len());

    // Found while fixing those: many namespaces in scope, each redeclaring leaf copying them all.
    let namespaces = envelope(&format!(
        r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message{}><t:Subject>{}</t:Subject></t:Message></m:Items></m:CreateItem>"#,
        (0..40).map(|i| format!(" xmlns:n{i}=\"urn:n{i}\"")).collect::<String>(),
        "<t:b xmlns:q=\"urn:q\"/>".repeat(10_000)
    ));

    for (payload, reason) in [
        (&nested, "nested more than 128 deep"),
        (&wide, "more than 64 attributes"),
        (&namespaces, "more than 32 namespace declarations"),
    ] {
        let started = Instant::now();
        let (status, body) = post(&app, "/EWS/Exchange.asmx", payload.clone()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert!(body.contains("ErrorSchemaValidation") && body.contains(reason), "{body}");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());

        let (status, body) = post(&app, "/autodiscover/autodiscover.svc", payload.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("<faultcode>s:Client</faultcode>") && body.contains(reason), "{body}");

        let started = Instant::now();
        let (status, body) = post(&app, "/EWS/Exchange.asmx", envelope(INBOX)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("NoError"), "{body}");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    // Just under the depth limit, the same shape is an ordinary item.
    let (status, body) = post(&app, "/EWS/Exchange.asmx", nested_create_item(100)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("NoError"), "{body}");
}
