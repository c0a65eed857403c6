//! EWS benchmark client: drives a running tandem's `/EWS/Exchange.asmx` over HTTPS (keep-alive,
//! rustls with the deployment's CA) and prints one JSON object with the figures.
//!
//! Built as an example of `tandem-mailbox` (`cargo run --release -p tandem-mailbox --example
//! ews_bench -- …`); `bench/ews/run.sh` starts the server and runs it. Measures:
//! - CreateItem rate: single-item SaveOnly requests from `--concurrency` clients;
//! - FindItem first and last page (IndexedPageItemView of 100, Offset 0 from the beginning and
//!   from the end) latency in folders of 1k and 100k items;
//! - GetUserAvailability over a month with 1k calendar items;
//! - server memory (VmRSS of `--pid`) and database growth per 100k items.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

const S: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";

struct Args {
    url: String,
    ca: String,
    user: String,
    password: String,
    pid: Option<u32>,
    db: Option<String>,
    concurrency: usize,
    creates: usize,
    big: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        ca: String::new(),
        user: String::new(),
        password: String::new(),
        pid: None,
        db: None,
        concurrency: 8,
        creates: 4000,
        big: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().expect("every option takes a value");
        match k.as_str() {
            "--url" => a.url = v,
            "--ca" => a.ca = v,
            "--user" => a.user = v,
            "--password" => a.password = v,
            "--pid" => a.pid = v.parse().ok(),
            "--db" => a.db = Some(v),
            "--concurrency" => a.concurrency = v.parse().expect("a number"),
            "--creates" => a.creates = v.parse().expect("a number"),
            "--big" => a.big = v.parse().expect("a number"),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}"><s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    )
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    user: String,
    password: String,
}

impl Client {
    async fn call(&self, body: &str) -> String {
        let resp = self
            .http
            .post(&self.url)
            .basic_auth(&self.user, Some(&self.password))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(envelope(body))
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "HTTP {status}: {text}");
        assert!(!text.contains("ResponseClass=\"Error\""), "EWS error: {text}");
        text
    }
}

fn create_folder(name: &str, parent: &str) -> String {
    format!(
        r#"<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="{parent}"/></m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>{name}</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"#
    )
}

fn folder_id(resp: &str) -> String {
    let at = resp.find("<t:FolderId Id=\"").expect("a folder id") + 16;
    resp[at..at + resp[at..].find('"').unwrap()].to_owned()
}

fn message(n: usize) -> String {
    format!(
        r#"<t:Message><t:Subject>Benchmark message {n}</t:Subject><t:Body BodyType="Text">Body of message {n}, a short line of text.</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>bob@litwareinc.com</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message>"#
    )
}

fn create_items(folder: &str, items: &str) -> String {
    format!(
        r#"<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:FolderId Id="{folder}"/></m:SavedItemFolderId><m:Items>{items}</m:Items></m:CreateItem>"#
    )
}

fn find_page(folder: &str, from_end: bool) -> String {
    let base = if from_end { "End" } else { "Beginning" };
    format!(
        r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/><t:FieldURI FieldURI="item:DateTimeReceived"/></t:AdditionalProperties></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="100" Offset="0" BasePoint="{base}"/><m:ParentFolderIds><t:FolderId Id="{folder}"/></m:ParentFolderIds></m:FindItem>"#
    )
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn latency(c: &Client, body: &str, runs: usize) -> (f64, f64) {
    for _ in 0..5 {
        c.call(body).await;
    }
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let r = c.call(body).await;
        v.push(t.elapsed());
        assert!(r.contains("TotalItemsInView") || r.contains("FreeBusyView"));
    }
    v.sort();
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

/// Fills a folder with `n` items, 100 per CreateItem request, `conc` requests at a time.
async fn fill(c: &Client, folder: &str, n: usize, conc: usize) -> f64 {
    let started = Instant::now();
    let batches: Vec<usize> = (0..n.div_ceil(100)).collect();
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (c, q, folder) = (c.clone(), queue.clone(), folder.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(b) = q.lock().unwrap().pop() else { break };
                let items: String = (b * 100..((b + 1) * 100).min(n)).map(message).collect();
                c.call(&create_items(&folder, &items)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn db_bytes(db: &Option<String>) -> Option<u64> {
    let db = db.as_ref()?;
    let mut total = 0;
    for suffix in ["", "-wal"] {
        total += std::fs::metadata(format!("{db}{suffix}")).map(|m| m.len()).unwrap_or(0);
    }
    Some(total)
}

#[tokio::main]
async fn main() {
    rustls::crypto::aws_lc_rs::default_provider().install_default().ok();
    let a = args();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&a.ca).expect("CA file")).expect("CA");
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(300))
        .build()
        .expect("client");
    let c = Client { http, url: a.url.clone(), user: a.user.clone(), password: a.password.clone() };
    let mut out = serde_json::Map::new();

    // CreateItem rate: one item per request, `concurrency` clients.
    let rate_folder = folder_id(&c.call(&create_folder("bench-create", "msgfolderroot")).await);
    c.call(&create_items(&rate_folder, &message(0))).await;
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (c, next, folder, total) = (c.clone(), next.clone(), rate_folder.clone(), a.creates);
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    break;
                }
                c.call(&create_items(&folder, &message(n))).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    out.insert("createitem_per_s".into(), (a.creates as f64 / secs).round().into());
    out.insert("createitem_requests".into(), a.creates.into());
    out.insert("concurrency".into(), a.concurrency.into());

    // FindItem pages in folders of 1k and `big` items.
    for (label, n) in [("1k", 1000usize), ("big", a.big)] {
        let folder = folder_id(&c.call(&create_folder(&format!("bench-{n}"), "msgfolderroot")).await);
        let rss_before = rss_kib(a.pid);
        let db_before = db_bytes(&a.db);
        let fill_rate = fill(&c, &folder, n, a.concurrency).await;
        let (f50, f99) = latency(&c, &find_page(&folder, false), 200).await;
        let (l50, l99) = latency(&c, &find_page(&folder, true), 200).await;
        out.insert(format!("fill_{label}_items"), n.into());
        out.insert(format!("fill_{label}_items_per_s"), fill_rate.round().into());
        out.insert(format!("finditem_{label}_first_page_ms_p50"), f50.into());
        out.insert(format!("finditem_{label}_first_page_ms_p99"), f99.into());
        out.insert(format!("finditem_{label}_last_page_ms_p50"), l50.into());
        out.insert(format!("finditem_{label}_last_page_ms_p99"), l99.into());
        if label == "big" {
            if let (Some(b), Some(after)) = (rss_before, rss_kib(a.pid)) {
                out.insert("rss_kib_before_big_fill".into(), b.into());
                out.insert("rss_kib_after_big_fill".into(), after.into());
            }
            if let (Some(b), Some(after)) = (db_before, db_bytes(&a.db)) {
                out.insert("db_bytes_per_item".into(), ((after.saturating_sub(b)) / n as u64).into());
            }
        }
    }

    // GetUserAvailability over a month with 1k calendar items (30-minute events, spread over
    // the month).
    let month_start = 1_795_996_800i64; // 2026-12-01T00:00:00Z
    let cal_items: Vec<String> = (0..1000)
        .map(|i| {
            let s = month_start + (i as i64) * 2600;
            format!(
                r#"<t:CalendarItem><t:Subject>Event {i}</t:Subject><t:Start>{}</t:Start><t:End>{}</t:End><t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus></t:CalendarItem>"#,
                tandem_ews_proto::format_datetime(s),
                tandem_ews_proto::format_datetime(s + 1800)
            )
        })
        .collect();
    for chunk in cal_items.chunks(100) {
        c.call(&format!(
            r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId><m:Items>{}</m:Items></m:CreateItem>"#,
            chunk.concat()
        ))
        .await;
    }
    let fb = format!(
        r#"<m:GetUserAvailabilityRequest><t:TimeZone><t:Bias>0</t:Bias><t:StandardTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>0</t:DayOrder><t:Month>0</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime><t:DaylightTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>0</t:DayOrder><t:Month>0</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone><m:MailboxDataArray><t:MailboxData><t:Email><t:Address>{}</t:Address></t:Email><t:AttendeeType>Required</t:AttendeeType></t:MailboxData></m:MailboxDataArray><t:FreeBusyViewOptions><t:TimeWindow><t:StartTime>2026-12-01T00:00:00</t:StartTime><t:EndTime>2026-12-31T00:00:00</t:EndTime></t:TimeWindow><t:MergedFreeBusyIntervalInMinutes>30</t:MergedFreeBusyIntervalInMinutes><t:RequestedView>DetailedMerged</t:RequestedView></t:FreeBusyViewOptions></m:GetUserAvailabilityRequest>"#,
        a.user
    );
    let (g50, g99) = latency(&c, &fb, 50).await;
    out.insert("getuseravailability_month_1k_events_ms_p50".into(), g50.into());
    out.insert("getuseravailability_month_1k_events_ms_p99".into(), g99.into());
    println!("{}", serde_json::to_string_pretty(&serde_json::Value::Object(out)).unwrap());
}
