//! Subscriptions end to end through the role's router, with the data layer's counter of change
//! log reads at hand: a commit wakes streams and pull subscriptions, nothing reads the log while
//! nothing changes, one connection serves several subscriptions, and another caller's ids are
//! refused one by one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use axum::body::{Body, BodyDataStream};
use axum::http::{Request, header};
use base64::Engine as _;
use futures_util::StreamExt as _;
use tandem_config::{MailboxConfig, StoreLocation};
use tandem_directory::{Directory, NewUser};
use tandem_store::testing::TestDatabase;
use tower::ServiceExt as _;

use crate::AppState;

const S: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";

struct Env {
    shared: AppState,
    app: axum::Router,
    _dbs: (TestDatabase, TestDatabase),
}

async fn env() -> Env {
    let dir_db = TestDatabase::sqlite();
    let dir = Directory::open(&dir_db.url).await.unwrap();
    for name in ["alice", "bob"] {
        dir.add(&NewUser {
            name: name.parse().unwrap(),
            display_name: format!("{name} user"),
            sip_uri: format!("sip:{name}@litwareinc.com").parse().unwrap(),
            smtp_address: format!("{name}@litwareinc.com").parse().unwrap(),
            password: "correct horse".into(),
        })
        .await
        .unwrap();
    }
    let db = TestDatabase::sqlite();
    let path = db.url.strip_prefix("sqlite://").unwrap().to_owned();
    let config = MailboxConfig {
        ews_push_minute_seconds: tandem_config::DEFAULT_EWS_PUSH_MINUTE_SECONDS,
        ews_max_concurrency: tandem_config::DEFAULT_EWS_MAX_CONCURRENCY,
        retention_sweep_seconds: tandem_config::DEFAULT_RETENTION_SWEEP_SECONDS,
        enabled: true,
        fqdn: "mail.litwareinc.com".parse().unwrap(),
        autodiscover_fqdn: "autodiscover.litwareinc.com".parse().unwrap(),
        https_listen: "127.0.0.1:8443".parse().unwrap(),
        store: StoreLocation::Sqlite(path.into()),
        https_limits: Default::default(),
        ews_limits: Default::default(),
    };
    let store = crate::open_store(&config).await.unwrap();
    let shared = crate::shared(&config, store, dir);
    Env { app: crate::router(shared.clone()), shared, _dbs: (dir_db, db) }
}

fn request(who: &str, body: &str) -> Request<Body> {
    let env = format!(
        r#"<s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}"><s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    );
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{who}@litwareinc.com:correct horse"));
    Request::post("/EWS/Exchange.asmx")
        .header(header::AUTHORIZATION, format!("Basic {auth}"))
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Body::from(env))
        .unwrap()
}

async fn call(e: &Env, who: &str, body: &str) -> String {
    let resp = e.app.clone().oneshot(request(who, body)).await.unwrap();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn between<'a>(xml: &'a str, open: &str, close: &str) -> &'a str {
    let start = xml.find(open).unwrap_or_else(|| panic!("{open} not in {xml}")) + open.len();
    let end = xml[start..].find(close).unwrap() + start;
    &xml[start..end]
}

async fn subscribe(e: &Env, who: &str, folder: &str, kind: &str) -> (String, String) {
    let body = format!(
        r#"<m:Subscribe><m:{kind}SubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="{folder}"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>NewMailEvent</t:EventType></t:EventTypes></m:{kind}SubscriptionRequest></m:Subscribe>"#
    );
    let answer = call(e, who, &body).await;
    let id = between(&answer, "<m:SubscriptionId>", "</m:SubscriptionId>").to_owned();
    let watermark =
        if kind == "Pull" { between(&answer, "<m:Watermark>", "</m:Watermark>").to_owned() } else { String::new() };
    (id, watermark)
}

fn get_streaming(ids: &[&str]) -> String {
    let ids: String = ids.iter().map(|i| format!("<t:SubscriptionId>{i}</t:SubscriptionId>")).collect();
    format!(
        "<m:GetStreamingEvents><m:SubscriptionIds>{ids}</m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>"
    )
}

async fn open_stream(e: &Env, who: &str, ids: &[&str]) -> BodyDataStream {
    let resp = e.app.clone().oneshot(request(who, &get_streaming(ids))).await.unwrap();
    resp.into_body().into_data_stream()
}

/// The next envelope of a stream (each chunk is one).
async fn next_envelope(stream: &mut BodyDataStream) -> String {
    let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.unwrap().unwrap().unwrap();
    String::from_utf8(chunk.to_vec()).unwrap()
}

fn create_in(folder: &str, subject: &str) -> String {
    format!(
        r#"<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="{folder}"/></m:SavedItemFolderId><m:Items><t:Message><t:Subject>{subject}</t:Subject></t:Message></m:Items></m:CreateItem>"#
    )
}

#[tokio::test]
async fn one_stream_serves_several_subscriptions_and_sleeps_until_a_commit() {
    let e = env().await;
    let (inbox, _) = subscribe(&e, "alice", "inbox", "Streaming").await;
    let (drafts, _) = subscribe(&e, "alice", "drafts", "Streaming").await;
    let mut stream = open_stream(&e, "alice", &[&inbox, &drafts]).await;
    let first = next_envelope(&mut stream).await;
    assert!(
        first.contains("<m:ConnectionStatus>OK</m:ConnectionStatus>") && !first.contains("Notification"),
        "{first}"
    );

    // Idle: the old loop read the log every 250 ms per subscription; now nothing reads it.
    let reads = e.shared.data.log_reads();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(e.shared.data.log_reads(), reads, "the change log was read while nothing changed");

    // A commit in the drafts wakes the stream: the event is there at once, for that subscription.
    let answered = Instant::now();
    let created = call(&e, "alice", &create_in("drafts", "woken")).await;
    assert!(created.contains("NoError"), "{created}");
    let batch = next_envelope(&mut stream).await;
    assert!(answered.elapsed() < Duration::from_secs(5), "the event took {:?}", answered.elapsed());
    assert!(batch.contains("CreatedEvent") && batch.contains(&drafts) && !batch.contains(&inbox), "{batch}");

    // Mail delivered to the inbox (another user's write): the other subscription, same stream.
    let send = r#"<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:Message><t:Subject>hi</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>alice@litwareinc.com</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#;
    assert!(call(&e, "bob", send).await.contains("NoError"));
    let batch = next_envelope(&mut stream).await;
    assert!(batch.contains("NewMailEvent") && batch.contains(&inbox) && !batch.contains(&drafts), "{batch}");

    // A commit in a mailbox nobody watches reads nothing on alice's behalf.
    let reads = e.shared.data.log_reads();
    assert!(call(&e, "bob", &create_in("drafts", "unwatched")).await.contains("NoError"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e.shared.data.log_reads(), reads);

    // Unsubscribing one closes the stream promptly.
    let unsub = format!("<m:Unsubscribe><m:SubscriptionId>{drafts}</m:SubscriptionId></m:Unsubscribe>");
    assert!(call(&e, "alice", &unsub).await.contains("NoError"));
    let last = next_envelope(&mut stream).await;
    assert!(last.contains("<m:ConnectionStatus>Closed</m:ConnectionStatus>"), "{last}");
    drop(stream);
    let unsub = format!("<m:Unsubscribe><m:SubscriptionId>{inbox}</m:SubscriptionId></m:Unsubscribe>");
    assert!(call(&e, "alice", &unsub).await.contains("NoError"));
    // Nothing watches alice's mailbox any more: the registry holds nothing for it.
    assert_eq!(e.shared.data.wakeups().watched(), 0);
}

#[tokio::test]
async fn events_committed_before_the_stream_opens_are_delivered() {
    let e = env().await;
    let (drafts, _) = subscribe(&e, "alice", "drafts", "Streaming").await;
    assert!(call(&e, "alice", &create_in("drafts", "early")).await.contains("NoError"));
    let mut stream = open_stream(&e, "alice", &[&drafts]).await;
    let first = next_envelope(&mut stream).await;
    assert!(!first.contains("Notification"), "{first}");
    let batch = next_envelope(&mut stream).await;
    assert!(batch.contains("CreatedEvent") && batch.contains(&drafts), "{batch}");
}

#[tokio::test]
async fn another_callers_ids_are_refused_each_with_its_code() {
    let e = env().await;
    let (alices, _) = subscribe(&e, "alice", "inbox", "Streaming").await;
    let (bobs, _) = subscribe(&e, "bob", "inbox", "Streaming").await;
    let (bobs_pull, _) = subscribe(&e, "bob", "inbox", "Pull").await;

    let answer = call(&e, "bob", &get_streaming(&[&bobs, &alices])).await;
    assert!(answer.contains("ResponseClass=\"Error\""), "{answer}");
    assert!(answer.contains("<m:ResponseCode>ErrorSubscriptionAccessDenied</m:ResponseCode>"), "{answer}");
    let refused = between(&answer, "<m:ErrorSubscriptionIds>", "</m:ErrorSubscriptionIds>");
    assert!(refused.contains(&alices) && !refused.contains(&bobs), "{answer}");
    assert!(answer.contains("<m:ConnectionStatus>Closed</m:ConnectionStatus>") && !answer.contains("Notification"));

    // Several reasons: one message per code, each naming its ids.
    let answer = call(&e, "bob", &get_streaming(&[&alices, "nosuchsubscription", &bobs_pull])).await;
    for (code, id) in [
        ("ErrorSubscriptionAccessDenied", alices.as_str()),
        ("ErrorSubscriptionNotFound", "nosuchsubscription"),
        ("ErrorInvalidSubscription", bobs_pull.as_str()),
    ] {
        let at = answer.find(&format!("<m:ResponseCode>{code}</m:ResponseCode>")).unwrap_or_else(|| panic!("{answer}"));
        let ids = between(&answer[at..], "<m:ErrorSubscriptionIds>", "</m:ErrorSubscriptionIds>");
        assert_eq!(ids, format!("<m:SubscriptionId>{id}</m:SubscriptionId>"), "{answer}");
    }

    // The owner's own id still streams.
    let mut stream = open_stream(&e, "alice", &[&alices]).await;
    assert!(next_envelope(&mut stream).await.contains("<m:ConnectionStatus>OK</m:ConnectionStatus>"));
}

#[tokio::test]
async fn pull_subscriptions_read_the_log_only_after_a_commit() {
    let e = env().await;
    let (id, watermark) = subscribe(&e, "alice", "drafts", "Pull").await;
    let get = format!(
        "<m:GetEvents><m:SubscriptionId>{id}</m:SubscriptionId><m:Watermark>{watermark}</m:Watermark></m:GetEvents>"
    );
    let reads = e.shared.data.log_reads();
    let idle = call(&e, "alice", &get).await;
    assert!(idle.contains("StatusEvent") && !idle.contains("CreatedEvent"), "{idle}");
    assert_eq!(e.shared.data.log_reads(), reads, "an idle GetEvents read the change log");
    assert!(call(&e, "alice", &create_in("drafts", "pulled")).await.contains("NoError"));
    let got = call(&e, "alice", &get).await;
    assert!(got.contains("CreatedEvent"), "{got}");
    assert_eq!(e.shared.data.log_reads(), reads + 1);
    // Another user cannot read it.
    let theirs = call(&e, "bob", &get).await;
    assert!(theirs.contains("ErrorSubscriptionNotFound"), "{theirs}");
}

/// A receiver for push notifications on loopback: every body it gets, answered with `status`.
async fn receiver(
    status: tandem_ews_proto::ops::send_notification::SubscriptionStatus,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/push",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                tandem_ews_proto::ops::send_notification::response(status)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn push_subscribe(e: &Env, who: &str, url: &str) -> String {
    let body = format!(
        r#"<m:Subscribe><m:PushSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="drafts"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:StatusFrequency>1</t:StatusFrequency><t:URL>{url}</t:URL></m:PushSubscriptionRequest></m:Subscribe>"#
    );
    let answer = call(e, who, &body).await;
    between(&answer, "<m:SubscriptionId>", "</m:SubscriptionId>").to_owned()
}

#[tokio::test]
async fn push_subscriptions_post_on_a_commit_and_read_nothing_while_idle() {
    use tandem_ews_proto::ops::send_notification::{SubscriptionStatus, parse_request};
    let e = env().await;
    let (url, mut got) = receiver(SubscriptionStatus::Ok).await;
    let id = push_subscribe(&e, "alice", &url).await;
    let reads = e.shared.data.log_reads();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(e.shared.data.log_reads(), reads, "an idle push subscription read the change log");
    assert!(got.try_recv().is_err(), "nothing to post yet");

    assert!(call(&e, "alice", &create_in("drafts", "pushed")).await.contains("NoError"));
    let body = tokio::time::timeout(Duration::from_secs(10), got.recv()).await.unwrap().unwrap();
    let notes = parse_request(body.as_bytes()).unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].subscription, id);
    assert_eq!(notes[0].events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["CreatedEvent"]);
    // The subscription counts against its account, like the others.
    assert_eq!(e.shared.subscriptions.lock().unwrap().held_by("user:alice", "alice"), 1);

    // A receiver answering Unsubscribe ends it: the account's place comes back.
    let (url, mut got) = receiver(SubscriptionStatus::Unsubscribe).await;
    let _gone = push_subscribe(&e, "bob", &url).await;
    assert!(call(&e, "bob", &create_in("drafts", "once")).await.contains("NoError"));
    tokio::time::timeout(Duration::from_secs(10), got.recv()).await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while e.shared.subscriptions.lock().unwrap().held_by("user:bob", "bob") != 0 {
        assert!(Instant::now() < deadline, "the subscription outlived its Unsubscribe answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
