//! The search benchmark (issue 13, deliverable 8), run by `bench/search/run.sh` in a release
//! build: N transcripts across M mailboxes' Conversation History written through the data layer
//! (items per second, index included), then QueryString-style searches (one folder, a word of one
//! transcript) and eDiscovery searches (every mailbox, first 250 hits) with p50/p99, and the
//! database's bytes per transcript. Environment: SEARCH_BENCH_ITEMS, SEARCH_BENCH_MAILBOXES,
//! SEARCH_BENCH_QUERIES, SEARCH_BENCH_PG=1 for PostgreSQL. With SEARCH_BENCH_DB_URL it seeds that
//! store instead (a stopped deployment's mailbox database, mailboxes `user0`… as imported into
//! its directory) and, with SEARCH_BENCH_SEED_ONLY=1, leaves the searches to EWS and the CLI
//! (`bench/search/run.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use tandem_ews_proto::aqs::plan;
use tandem_ews_proto::ids::IdKind;
use tandem_store::Store;
use tandem_store::testing::TestDatabase;

use super::search::Scope;
use super::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// An optional number as JSON.
fn num<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_owned(), |n| n.to_string())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

const WORDS: &[&str] = &[
    "budget", "review", "lunch", "release", "meeting", "numbers", "quarter", "design", "customer", "invoice",
    "deadline", "server", "holiday", "contract", "printer", "report", "travel", "schedule", "launch", "support",
];

#[tokio::test]
#[ignore = "benchmark: bench/search/run.sh"]
async fn search_bench() {
    let items = env("SEARCH_BENCH_ITEMS", 100_000);
    let mailboxes = env("SEARCH_BENCH_MAILBOXES", 100);
    let queries = env("SEARCH_BENCH_QUERIES", 200);
    let seed_only = std::env::var("SEARCH_BENCH_SEED_ONLY").is_ok();
    let (_db, url) = match std::env::var("SEARCH_BENCH_DB_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let db = if std::env::var("SEARCH_BENCH_PG").is_ok() {
                TestDatabase::postgres().await.expect("PostgreSQL test server")
            } else {
                TestDatabase::sqlite()
            };
            let url = db.url.clone();
            (Some(db), url)
        }
    };
    let store = Store::open(&url, schema::MIGRATIONS).await.unwrap();
    let data = Data::new(store);
    let mut folders = Vec::new();
    for m in 0..mailboxes {
        let name = format!("user{m}");
        data.ensure_mailbox(&name).await.unwrap();
        folders.push(data.folder_by_name(&name, "conversationhistory").await.unwrap().unwrap());
    }
    let started = Instant::now();
    let per_tx = 500;
    let mut n = 0;
    while n < items {
        let mut w = data.write().await.unwrap();
        for _ in 0..per_tx.min(items - n) {
            let f = &folders[n % mailboxes];
            let (change, article) = w.next_numbers(&f.mailbox, 1).await.unwrap();
            let a = WORDS[n % WORDS.len()];
            let b = WORDS[(n / 7) % WORDS.len()];
            let subject = format!("{a} {b}");
            let body: String = (0..10)
                .map(|k| {
                    format!(
                        "<div>10:{k:02} user{} : a line about the {} and the {} (t{n}x{k})</div>",
                        n % mailboxes,
                        WORDS[(n + k) % WORDS.len()],
                        b
                    )
                })
                .collect();
            let i = Item {
                id: new_id(IdKind::Item),
                mailbox: f.mailbox.clone(),
                folder_id: f.id.clone(),
                element: "Message".into(),
                item_class: "IPM.Note.Microsoft.Conversation".into(),
                subject: subject.clone(),
                is_read: true,
                received_at: 1_796_000_000 + n as i64,
                created_at: 1_796_000_000 + n as i64,
                modified_at: 1_796_000_000 + n as i64,
                sent_at: None,
                size: body.len() as i64,
                start_at: None,
                end_at: None,
                article,
                change_number: change,
                fields: format!(
                    "<t:Subject>{subject}</t:Subject><t:Body BodyType=\"HTML\">{}</t:Body><t:From><t:Mailbox><t:Name>User {}</t:Name><t:EmailAddress>user{}@example.com</t:EmailAddress></t:Mailbox></t:From>",
                    tandem_xml::escape(&body),
                    n % mailboxes,
                    n % mailboxes
                ),
                ext: String::new(),
                mime: None,
            };
            w.insert_item(&i).await.unwrap();
            n += 1;
        }
        w.commit().await.unwrap();
    }
    let write_secs = started.elapsed().as_secs_f64();
    if seed_only {
        let index = data.search_index_bytes().await.unwrap();
        let db_bytes = url.strip_prefix("sqlite://").and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len());
        println!(
            "{{\"items\": {items}, \"mailboxes\": {mailboxes}, \"write_seconds\": {write_secs:.1}, \"items_per_second\": {:.0}, \"index_bytes\": {}, \"db_bytes\": {}, \"index_bytes_per_item\": {}}}",
            items as f64 / write_secs,
            num(index),
            num(db_bytes),
            num(index.map(|b| b / items as i64)),
        );
        return;
    }

    // QueryString: a word of one transcript (t{n}x{k} is unique), in its owner's folder.
    let mut qs = Vec::new();
    for q in 0..queries {
        let n = (q * 7919) % items;
        let p = plan(&format!("t{n}x3")).unwrap();
        let t = Instant::now();
        let hits = data.search(Scope::Folder(&folders[n % mailboxes].id), &p, 250).await.unwrap();
        qs.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(hits.len(), 1);
    }
    // eDiscovery: two common words across every mailbox, first 250 hits, plus counts.
    let mut ed = Vec::new();
    for q in 0..queries.min(50) {
        let p = plan(&format!("{} AND {}", WORDS[q % WORDS.len()], WORDS[(q + 3) % WORDS.len()])).unwrap();
        let t = Instant::now();
        let hits = data.search(Scope::Mailboxes(&[]), &p, 250).await.unwrap();
        let counts = data.search_counts(Scope::Mailboxes(&[]), &p).await.unwrap();
        ed.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!hits.is_empty() && !counts.is_empty());
    }
    let db_bytes = url.strip_prefix("sqlite://").and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len());
    let index = data.search_index_bytes().await.unwrap();
    println!(
        "{{\"items\": {items}, \"mailboxes\": {mailboxes}, \"write_seconds\": {write_secs:.1}, \"items_per_second\": {:.0}, \"querystring_p50_ms\": {:.2}, \"querystring_p99_ms\": {:.2}, \"ediscovery_p50_ms\": {:.2}, \"ediscovery_p99_ms\": {:.2}, \"index_bytes\": {}, \"db_bytes\": {}, \"index_bytes_per_item\": {}}}",
        items as f64 / write_secs,
        pct(&mut qs, 0.5),
        pct(&mut qs, 0.99),
        pct(&mut ed, 0.5),
        pct(&mut ed, 0.99),
        num(index),
        num(db_bytes),
        num(index.map(|b| b / items as i64)),
    );
}
