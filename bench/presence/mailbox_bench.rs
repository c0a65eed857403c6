//! Mailbox half of the presence benchmark: many idle streaming subscriptions, and how fast a
//! committed change reaches its stream. Drives a running tandem's `/EWS/Exchange.asmx` over HTTPS
//! and prints one JSON object.
//!
//! Built as an example of `tandem-mailbox`; `bench/presence/mailbox.sh` starts the server and runs
//! it. For each total in `--subscriptions` (cumulative, e.g. 1000,20000):
//! - idle streaming subscriptions on the Inbox of bob and carol (the watched users who do not
//!   change), served `--per-connection` ids per GetStreamingEvents connection;
//! - the server's RSS per subscription (over the RSS before the first one) and its CPU while
//!   everything is idle (`--idle-secs`, from /proc/PID/stat);
//! - latency from the CreateItem response (a calendar item in alice's calendar) to its
//!   CreatedEvent on alice's own stream, `--probes` sequential samples, p50/p99 (and from the
//!   CreateItem request, which adds its round trip).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const S: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
const DOMAIN: &str = "litwareinc.com";

struct Args {
    url: String,
    ca: String,
    password: String,
    pid: u32,
    totals: Vec<usize>,
    per_connection: usize,
    idle_secs: u64,
    probes: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        ca: String::new(),
        password: String::new(),
        pid: 0,
        totals: vec![1000, 20_000],
        per_connection: 200,
        idle_secs: 20,
        probes: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().expect("every option takes a value");
        match k.as_str() {
            "--url" => a.url = v,
            "--ca" => a.ca = v,
            "--password" => a.password = v,
            "--pid" => a.pid = v.parse().expect("a pid"),
            "--subscriptions" => a.totals = v.split(',').map(|n| n.parse().expect("a number")).collect(),
            "--per-connection" => a.per_connection = v.parse().expect("a number"),
            "--idle-secs" => a.idle_secs = v.parse().expect("a number"),
            "--probes" => a.probes = v.parse().expect("a number"),
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
    password: String,
}

impl Client {
    async fn send(&self, user: &str, body: &str) -> reqwest::Response {
        let resp = self
            .http
            .post(&self.url)
            .basic_auth(format!("{user}@{DOMAIN}"), Some(&self.password))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(envelope(body))
            .send()
            .await
            .expect("request");
        assert!(resp.status().is_success(), "HTTP {}", resp.status());
        resp
    }

    async fn call(&self, user: &str, body: &str) -> String {
        let text = self.send(user, body).await.text().await.expect("body");
        assert!(!text.contains("ResponseClass=\"Error\""), "EWS error: {text}");
        text
    }

    async fn subscribe(&self, user: &str, folder: &str) -> String {
        let r = self
            .call(
                user,
                &format!(
                    r#"<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="{folder}"/></t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>ModifiedEvent</t:EventType><t:EventType>DeletedEvent</t:EventType></t:EventTypes></m:StreamingSubscriptionRequest></m:Subscribe>"#
                ),
            )
            .await;
        let at = r.find("<m:SubscriptionId>").expect("an id") + 18;
        r[at..at + r[at..].find('<').unwrap()].to_owned()
    }

    /// Opens a GetStreamingEvents connection for `ids` and returns it after its first envelope.
    async fn stream(&self, user: &str, ids: &[String]) -> reqwest::Response {
        let ids: String = ids.iter().map(|i| format!("<t:SubscriptionId>{i}</t:SubscriptionId>")).collect();
        let mut resp = self
            .send(
                user,
                &format!(
                    "<m:GetStreamingEvents><m:SubscriptionIds>{ids}</m:SubscriptionIds><m:ConnectionTimeout>30</m:ConnectionTimeout></m:GetStreamingEvents>"
                ),
            )
            .await;
        let first = resp.chunk().await.expect("first envelope").expect("an envelope");
        let first = String::from_utf8_lossy(&first);
        assert!(first.contains("<m:ConnectionStatus>OK</m:ConnectionStatus>"), "{first}");
        resp
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat; `after` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn calendar_item(n: usize) -> String {
    let start = 1_795_996_800i64 + (n as i64) * 3600;
    format!(
        r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>Probe {n}</t:Subject><t:Start>{}</t:Start><t:End>{}</t:End><t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus></t:CalendarItem></m:Items></m:CreateItem>"#,
        tandem_ews_proto::format_datetime(start),
        tandem_ews_proto::format_datetime(start + 1800)
    )
}

#[tokio::main]
async fn main() {
    rustls::crypto::aws_lc_rs::default_provider().install_default().ok();
    let a = args();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&a.ca).expect("CA file")).expect("CA");
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(3600))
        .build()
        .expect("client");
    let c = Client { http, url: a.url.clone(), password: a.password.clone() };
    let mut out = serde_json::Map::new();
    let tick = 100.0; // USER_HZ on Linux

    // Warm up every user (provisioning, sign-in cache), then the baseline.
    for u in ["alice", "bob", "carol"] {
        c.call(u, r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>"#).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_base = rss_kib(a.pid);
    out.insert("rss_kib_baseline".into(), rss_base.into());

    // Alice's own stream: the latency probe.
    let probe_sub = c.subscribe("alice", "calendar").await;
    let mut probe = c.stream("alice", std::slice::from_ref(&probe_sub)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    tokio::spawn(async move {
        while let Ok(Some(chunk)) = probe.chunk().await {
            if String::from_utf8_lossy(&chunk).contains("CreatedEvent") {
                let _ = tx.send(Instant::now());
            }
        }
    });

    let keep_alives = Arc::new(AtomicUsize::new(0));
    // Envelopes with events on the idle streams: must stay 0 (nobody writes to their mailboxes).
    let idle_events = Arc::new(AtomicUsize::new(0));
    let mut held = 0usize;
    let mut connections = 0usize;
    let mut probe_n = 0usize;
    for &total in &a.totals {
        // More idle subscriptions, bob's and carol's, 8 Subscribe calls at a time.
        let want = total.saturating_sub(held);
        let made = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (c, made, next) = (c.clone(), made.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= want {
                        break;
                    }
                    let user = if n % 2 == 0 { "bob" } else { "carol" };
                    let id = c.subscribe(user, "inbox").await;
                    made.lock().unwrap().push((user.to_owned(), id));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let subscribe_secs = started.elapsed().as_secs_f64();
        let made = std::mem::take(&mut *made.lock().unwrap());
        for user in ["bob", "carol"] {
            let ids: Vec<String> = made.iter().filter(|(u, _)| u == user).map(|(_, i)| i.clone()).collect();
            for group in ids.chunks(a.per_connection) {
                let mut resp = c.stream(user, group).await;
                connections += 1;
                let (k, e) = (keep_alives.clone(), idle_events.clone());
                tokio::spawn(async move {
                    while let Ok(Some(chunk)) = resp.chunk().await {
                        let counter = if String::from_utf8_lossy(&chunk).contains("Event>") { &e } else { &k };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        }
        held += made.len();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = rss_kib(a.pid);

        // Idle: nobody writes.
        let t0 = cpu_ticks(a.pid);
        let w0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(a.idle_secs)).await;
        let idle_cpu = (cpu_ticks(a.pid) - t0) as f64 / tick / w0.elapsed().as_secs_f64() * 100.0;

        // Latency: CreateItem response → CreatedEvent on alice's stream.
        let mut lat = Vec::with_capacity(a.probes);
        let mut from_request = Vec::with_capacity(a.probes);
        for _ in 0..a.probes {
            probe_n += 1;
            let sent = Instant::now();
            c.call("alice", &calendar_item(probe_n)).await;
            let answered = Instant::now();
            let arrived = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("event").unwrap();
            // The event may be read before the response: that counts as no delay.
            lat.push(arrived.saturating_duration_since(answered).as_secs_f64() * 1000.0);
            from_request.push(arrived.saturating_duration_since(sent).as_secs_f64() * 1000.0);
        }
        lat.sort_by(f64::total_cmp);
        from_request.sort_by(f64::total_cmp);
        let p = |k: &str| format!("n{total}_{k}");
        out.insert(p("subscriptions"), (held + 1).into());
        out.insert(p("streaming_connections"), (connections + 1).into());
        out.insert(p("subscribe_per_s"), ((want as f64 / subscribe_secs).round()).into());
        out.insert(p("rss_kib"), rss.into());
        out.insert(p("rss_bytes_per_subscription"), ((rss.saturating_sub(rss_base) * 1024) / (held as u64 + 1)).into());
        out.insert(p("idle_cpu_percent_of_one_core"), ((idle_cpu * 100.0).round() / 100.0).into());
        out.insert(p("idle_secs"), a.idle_secs.into());
        out.insert(p("latency_ms_p50"), percentile(&lat, 0.5).into());
        out.insert(p("latency_ms_p99"), percentile(&lat, 0.99).into());
        out.insert(p("latency_ms_max"), lat[lat.len() - 1].into());
        out.insert(p("request_to_event_ms_p50"), percentile(&from_request, 0.5).into());
        out.insert(p("request_to_event_ms_p99"), percentile(&from_request, 0.99).into());
    }
    out.insert("keep_alive_envelopes_seen".into(), keep_alives.load(Ordering::Relaxed).into());
    out.insert("idle_stream_event_envelopes".into(), idle_events.load(Ordering::Relaxed).into());
    println!("{}", serde_json::to_string_pretty(&serde_json::Value::Object(out)).unwrap());
}
