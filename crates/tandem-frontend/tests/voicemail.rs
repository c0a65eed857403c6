//! A voicemail deposited through the connector lands in the callee's Inbox of a real Mailbox
//! in Exchange UM's form: class, subject, unread, the duration and caller properties, and the
//! WAV recording as an attachment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_ews_proto::ops::{find_item, get_item};
use tandem_ews_proto::types::{BaseShape, ExtendedField, FolderRef, PropertyPath, Shape};
use tandem_frontend::media::tone;
use tandem_frontend::testing::{DOMAIN, TwoRoles};
use tandem_frontend::voicemail::deposit::{self, ITEM_CLASS, Voicemail};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_lands_in_the_inbox_as_exchange_um_left_it() {
    let roles = TwoRoles::start(&["alice", "bob"]).await;
    let connector = roles.connector();
    let vm = Voicemail {
        caller_uri: format!("sip:alice@{DOMAIN}"),
        caller_name: Some("alice user".into()),
        callee_smtp: format!("bob@{DOMAIN}"),
        started_at: tandem_store::now_unix(),
        samples: tone(1000.0, 3000, 0.5),
    };
    let id = deposit::deposit(&connector, &vm).await.unwrap();
    assert!(!id.id.is_empty());

    let bob = connector.mailbox(&format!("bob@{DOMAIN}")).await.unwrap();
    let duration = ExtendedField {
        distinguished_set: None,
        set_id: None,
        tag: Some(0x6801),
        name: None,
        id: None,
        property_type: "Integer".into(),
    };
    let mut shape = Shape::base(BaseShape::Default);
    shape.additional = vec![
        PropertyPath::Field("item:ItemClass".into()),
        PropertyPath::Field("item:HasAttachments".into()),
        PropertyPath::Field("message:IsRead".into()),
        PropertyPath::Extended(duration),
    ];
    let found = connector
        .client()
        .find_item(&bob, &find_item::Request::new(shape.clone(), vec![FolderRef::distinguished("inbox")]))
        .await
        .unwrap();
    let items: Vec<_> = found.into_iter().flat_map(|f| f.items).collect();
    assert_eq!(items.len(), 1, "one voicemail in bob's Inbox");
    let (item_id, _) = &items[0];
    let got = connector.client().get_item(&bob, &get_item::Request::new(shape, vec![item_id.clone()])).await.unwrap();
    let (_, data) = &got[0];
    assert_eq!(data.item_class.as_deref(), Some(ITEM_CLASS));
    assert_eq!(data.subject.as_deref(), Some("Voice Mail from alice user (3 seconds)"));
    let field = |n: &str| data.fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
    assert!(field("HasAttachments").contains("true"), "{:?}", data.fields);
    assert!(field("IsRead").contains("false"), "{:?}", data.fields);
    assert!(data.extended.iter().any(|(f, v)| f.tag == Some(0x6801) && v == &["3".to_owned()]), "{:?}", data.extended);
    roles.stop().await;
}
