//! Conversation history writer throughput (issue 13, deliverable 8: "history items written per
//! second"): N ended conversations of M messages between two users are queued in a Front End
//! store, and the writer (`HistoryWriter`, what the running Front End's writer task runs) puts
//! every transcript into both users' Conversation History of a real Mailbox on loopback, through
//! Autodiscover and EWS with S2S tokens: per item a FindItem look-up (the continuation of an
//! interrupted write) and a CreateItem. Prints JSON: items, seconds, items per second.
//!
//!   bench/history/run.sh [--conversations N] [--messages M]
//!
//! The set-up (Mailbox, the Front End's metadata listener, partner applications both ways) is
//! the one of `crates/tandem-frontend/tests/rollover.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use tandem_frontend::conversation_history::{HistoryWriter, Settings};
use tandem_frontend::store::{FrontendStore, HistoryConfigRow, HistoryWrite, ItemTarget};
use tandem_frontend::testing::{ALICE, BOB, DOMAIN, TwoRoles, im_line};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let conversations = arg("--conversations", 500);
    let messages = arg("--messages", 10);
    let roles = TwoRoles::start(&["alice", "bob"]).await;
    let (dir, fstore, http) = (roles.directory.clone(), roles.frontend_store.clone(), roles.http.clone());
    let (tasks, shutdown) = (roles.tasks.clone(), roles.shutdown.clone());

    // The queue: N ended conversations, each with M messages and an item per participant.
    let queue = FrontendStore::new(fstore.clone());
    let target = |owner: &str| ItemTarget { owner: owner.into(), folder: "conversationhistory".into() };
    for c in 0..conversations {
        let id = format!("bench-{c}");
        let mut writes = Vec::with_capacity(messages + 1);
        for m in 0..messages {
            let seq = m as i64;
            let sender = if m % 2 == 0 { ALICE } else { BOB };
            let text = format!("message {m} of conversation {c}: a line of chat about the quarterly numbers");
            writes.push(im_line(&id, seq, sender, &text));
        }
        writes.push(HistoryWrite::End {
            conversation_id: id,
            targets: vec![target(ALICE), target(BOB)],
            at: 0,
            last_at: None,
        });
        queue.apply_history(&writes).await.unwrap();
    }
    let writer = HistoryWriter::new(
        fstore.clone(),
        dir.clone(),
        DOMAIN,
        http,
        Settings::of(&HistoryConfigRow::default(), tandem_config::DEFAULT_CONVERSATION_IDLE_TIMEOUT_SECS),
    );
    let started = Instant::now();
    let (mut items, mut errors) = (0, std::collections::BTreeMap::<String, usize>::new());
    loop {
        let n = writer.write_due().await;
        for p in queue.pending_history_items().await.unwrap() {
            if let Some(e) = p.last_error {
                *errors.entry(e.chars().take(160).collect()).or_default() += 1;
            }
        }
        if n == 0 {
            if queue.pending_history_items().await.unwrap().is_empty() {
                break;
            }
            // Failed writes wait out their backoff.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        items += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    let left = queue.pending_history_items().await.unwrap().len();
    assert_eq!(left, 0, "every item is written");
    let written = 2 * conversations;
    println!(
        "{{\"conversations\": {conversations}, \"messages_per_conversation\": {messages}, \"items\": {written}, \"attempts\": {items}, \"seconds\": {seconds:.3}, \"items_per_second\": {:.1}}}",
        written as f64 / seconds
    );
    for (e, n) in errors {
        eprintln!("failed attempts seen pending {n}x: {e}");
    }
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
}
