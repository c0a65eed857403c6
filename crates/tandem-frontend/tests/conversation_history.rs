//! The conversation history writer against a real Mailbox, through Autodiscover and EWS with
//! S2S tokens: an attempt interrupted after the mailbox took an item (the Front End died before
//! recording it) is found again by its conversation id and continued, so every participant has
//! exactly one transcript, and a second pass writes nothing.
//!
//! The set-up (a Mailbox and the Front End's metadata listener on loopback, partner applications
//! both ways) is the one of `rollover.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_ews_client::Mailbox;
use tandem_ews_proto::ops::create_item::{self, ItemData};
use tandem_ews_proto::ops::{find_item, get_item};
use tandem_ews_proto::types::{BaseShape, Comparison, FolderRef, Operand, PropertyPath, Restriction, Shape};
use tandem_frontend::conversation_history::{self as history, HistoryWriter, Settings};
use tandem_frontend::exchange_connector::ExchangeConnector;
use tandem_frontend::store::{FrontendStore, HistoryConfigRow, HistoryWrite, ItemTarget};
use tandem_frontend::testing::{ALICE, BOB, DOMAIN, TwoRoles, im_line};

fn line(seq: i64, sender: &str, text: &str) -> HistoryWrite {
    im_line("conv-1", seq, sender, text)
}

/// The bodies of the items of `conversation` in a user's Conversation History.
async fn transcripts(connector: &ExchangeConnector, mailbox: &Mailbox, conversation: &str) -> Vec<String> {
    let find = find_item::Request {
        restriction: Some(Restriction::Compare {
            path: PropertyPath::Extended(history::conversation_property()),
            op: Comparison::Equal,
            value: Operand::Constant(conversation.into()),
        }),
        ..find_item::Request::new(Shape::base(BaseShape::IdOnly), vec![FolderRef::distinguished(history::FOLDER)])
    };
    let ids: Vec<_> = connector
        .client()
        .find_item(mailbox, &find)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|f| f.items)
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let get = get_item::Request::new(Shape::base(BaseShape::AllProperties), ids);
    let items = connector.client().get_item(mailbox, &get).await.unwrap();
    items
        .into_iter()
        .map(|(_, d)| {
            assert_eq!(d.item_class.as_deref(), Some(history::ITEM_CLASS));
            d.fields.iter().find(|(n, _)| n == "Body").map(|(_, x)| x.clone()).unwrap_or_default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_write_is_continued_and_nothing_is_written_twice() {
    let roles = TwoRoles::start(&["alice", "bob"]).await;
    let (dir, fstore, http) = (roles.directory.clone(), roles.frontend_store.clone(), roles.http.clone());
    let (tasks, shutdown) = (roles.tasks.clone(), roles.shutdown.clone());
    let connector = roles.connector();

    // A conversation that ended: both participants' items are queued.
    let queue = FrontendStore::new(fstore.clone());
    queue.apply_history(&[line(0, ALICE, "first"), line(1, BOB, "<b>second</b>")]).await.unwrap();
    let target = |owner: &str| ItemTarget { owner: owner.into(), folder: history::FOLDER.into() };
    let end = HistoryWrite::End {
        conversation_id: "conv-1".into(),
        targets: vec![target(ALICE), target(BOB)],
        at: 0,
        last_at: None,
    };
    queue.apply_history(&[end]).await.unwrap();

    // An earlier attempt wrote Alice's item, then the Front End died before recording it: the
    // mailbox has the item (with what was known then), the store still queues it.
    let alice = connector.mailbox(&format!("alice@{DOMAIN}")).await.unwrap();
    let bob = connector.mailbox(&format!("bob@{DOMAIN}")).await.unwrap();
    let stale = ItemData::new("Message")
        .with_item_class(history::ITEM_CLASS)
        .with_subject("first")
        .with_body("HTML", "<p>only the first line</p>")
        .with_extended(history::conversation_property(), vec!["conv-1".into()]);
    let req = create_item::Request::save(FolderRef::distinguished(history::FOLDER), vec![stale]);
    connector.client().create_item(&alice, &req).await.unwrap();
    assert_eq!(transcripts(&connector, &alice, "conv-1").await.len(), 1);

    let writer = HistoryWriter::new(
        fstore.clone(),
        dir.clone(),
        DOMAIN,
        http,
        Settings::of(&HistoryConfigRow::default(), tandem_config::DEFAULT_CONVERSATION_IDLE_TIMEOUT_SECS),
    );
    assert_eq!(writer.write_due().await, 2);
    for (who, mailbox) in [("alice", &alice), ("bob", &bob)] {
        let bodies = transcripts(&connector, mailbox, "conv-1").await;
        assert_eq!(bodies.len(), 1, "{who} has exactly one transcript of the conversation: {bodies:?}");
        let body = &bodies[0];
        assert!(!body.contains("only the first line"), "{who}'s item holds the whole transcript now: {body}");
        let (first, second) = (body.find("first").unwrap(), body.find("&amp;lt;b&amp;gt;second").unwrap());
        assert!(first < second, "{who}: in order, escaped: {body}");
    }
    // Recorded: the conversation is gone from the queue, and another pass writes nothing.
    assert!(queue.conversation("conv-1").await.unwrap().is_none());
    assert!(queue.pending_history_items().await.unwrap().is_empty());
    assert_eq!(writer.write_due().await, 0);
    assert_eq!(transcripts(&connector, &alice, "conv-1").await.len(), 1);
    assert_eq!(transcripts(&connector, &bob, "conv-1").await.len(), 1);
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
}
