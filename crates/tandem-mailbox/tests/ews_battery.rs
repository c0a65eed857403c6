//! The mailbox battery: EWS requests through the role's router against SQLite and PostgreSQL
//! (the interop suites run on SQLite only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

fn user(name: &str) -> NewUser {
    NewUser {
        name: name.parse().unwrap(),
        display_name: format!("{name} user"),
        sip_uri: format!("sip:{name}@litwareinc.com").parse().unwrap(),
        smtp_address: format!("{name}@litwareinc.com").parse().unwrap(),
        password: "correct horse".into(),
    }
}

async fn call(app: &axum::Router, who: &str, body: &str) -> (StatusCode, String) {
    let env = format!(
        r#"<s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}"><s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    );
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{who}@litwareinc.com:correct horse"));
    let req = Request::post("/ews/exchange.asmx")
        .header(header::AUTHORIZATION, format!("Basic {auth}"))
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Body::from(env))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn attr<'a>(xml: &'a str, after: &str, name: &str) -> &'a str {
    let at = xml.find(after).unwrap_or_else(|| panic!("{after} not in {xml}"));
    let rest = &xml[at..];
    let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    let end = rest[start..].find('"').unwrap();
    &rest[start..start + end]
}

const INBOX: &str = r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>"#;

async fn battery(url: String) {
    let dir_db = TestDatabase::sqlite();
    let dir = Directory::open(&dir_db.url).await.unwrap();
    dir.add(&user("alice")).await.unwrap();
    dir.add(&user("bob")).await.unwrap();
    let store_location = match url.strip_prefix("sqlite://") {
        Some(path) => StoreLocation::Sqlite(path.into()),
        None => StoreLocation::Postgres(url.clone()),
    };
    let config = MailboxConfig {
        ews_push_minute_seconds: tandem_config::DEFAULT_EWS_PUSH_MINUTE_SECONDS,
        ews_max_concurrency: tandem_config::DEFAULT_EWS_MAX_CONCURRENCY,
        retention_sweep_seconds: tandem_config::DEFAULT_RETENTION_SWEEP_SECONDS,
        enabled: true,
        fqdn: "mail.litwareinc.com".parse().unwrap(),
        autodiscover_fqdn: "autodiscover.litwareinc.com".parse().unwrap(),
        https_listen: "127.0.0.1:8443".parse().unwrap(),
        store: store_location,
        https_limits: Default::default(),
        ews_limits: Default::default(),
    };
    let store = tandem_mailbox::open_store(&config).await.unwrap();
    let app = tandem_mailbox::routes(&config, store, dir);

    // Send: a copy in Sent Items, an unread delivery in bob's Inbox, counts maintained.
    for n in 0..3 {
        let create = format!(
            r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId><m:Items><t:Message><t:Subject>hello {n}</t:Subject><t:Body BodyType="Text">hi</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>bob@litwareinc.com</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#
        );
        let (st, body) = call(&app, "alice", &create).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert!(body.contains("NoError"), "{body}");
    }
    let (_, body) = call(&app, "bob", INBOX).await;
    assert!(
        body.contains("<t:TotalCount>3</t:TotalCount>") && body.contains("<t:UnreadCount>3</t:UnreadCount>"),
        "{body}"
    );

    // Paging from the end, sorted by article number.
    let find = r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="2" Offset="0" BasePoint="End"/><m:SortOrder><t:FieldOrder Order="Ascending"><t:ExtendedFieldURI PropertyTag="0x0e23" PropertyType="Integer"/></t:FieldOrder></m:SortOrder><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>"#;
    let (_, body) = call(&app, "bob", find).await;
    assert!(body.contains("TotalItemsInView=\"3\"") && body.contains("IncludesLastItemInRange=\"true\""), "{body}");
    let first = body.find("hello 1").unwrap();
    let second = body.find("hello 2").unwrap();
    assert!(first < second && !body.contains("hello 0"), "{body}");

    // Mark read, then the count follows; another user cannot touch it; a hard delete removes it.
    let id = attr(&body, "<t:ItemId", "Id").to_owned();
    let update = format!(
        r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
    );
    let (_, body) = call(&app, "bob", &update).await;
    assert!(body.contains("NoError"), "{body}");
    let (_, body) = call(&app, "bob", INBOX).await;
    assert!(body.contains("<t:UnreadCount>2</t:UnreadCount>"), "{body}");
    let delete =
        format!(r#"<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:DeleteItem>"#);
    let (_, body) = call(&app, "alice", &delete).await;
    assert!(body.contains("ErrorAccessDenied"), "another user's item: {body}");
    let (_, body) = call(&app, "bob", &delete).await;
    assert!(body.contains("NoError"), "{body}");
    let (_, body) = call(&app, "bob", INBOX).await;
    assert!(body.contains("<t:TotalCount>2</t:TotalCount>"), "{body}");

    // A recipient outside the directory: the whole item fails, nothing is written.
    let bad = r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:Message><t:Subject>x</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>z@elsewhere.example</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#;
    let (_, body) = call(&app, "alice", bad).await;
    assert!(body.contains("ErrorInvalidRecipients"), "{body}");
    let (_, body) = call(&app, "alice", &INBOX.replace("inbox", "sentitems")).await;
    assert!(body.contains("<t:TotalCount>3</t:TotalCount>"), "{body}");
}

#[tokio::test]
async fn ews_battery_sqlite() {
    let db = TestDatabase::sqlite();
    battery(db.url.clone()).await;
}

#[tokio::test]
async fn ews_battery_postgres() {
    let db = TestDatabase::postgres().await.expect("the PostgreSQL test server (see scripts/test.sh)");
    battery(db.url.clone()).await;
}
