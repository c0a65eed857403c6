//! The data-layer battery: every function of the Mailbox's data layer, called against SQLite and
//! PostgreSQL alike (the EWS battery in `tests/ews_battery.rs` drives the same store through the
//! role's router; this one pins the data functions themselves).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_ews_proto::ids::IdKind;
use tandem_ews_proto::types::ExtendedField;
use tandem_store::Store;
use tandem_store::testing::TestDatabase;

use super::changes::ObjectKind;
use super::settings::{DELIVER_MEETING_REQUESTS, OOF, server_settings_with, set_server_settings};
use super::*;

const RECURRING: &str =
    "<t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval></t:WeeklyRecurrence></t:Recurrence>";

fn item(mailbox: &str, folder: &Folder, subject: &str, received: i64) -> Item {
    Item {
        id: new_id(IdKind::Item),
        mailbox: mailbox.to_owned(),
        folder_id: folder.id.clone(),
        element: "Message".into(),
        item_class: "IPM.Note".into(),
        subject: subject.to_owned(),
        is_read: false,
        received_at: received,
        created_at: received,
        modified_at: received,
        sent_at: None,
        size: 10,
        start_at: None,
        end_at: None,
        article: 0,
        change_number: 0,
        fields: format!("<t:Subject>{subject}</t:Subject>"),
        ext: String::new(),
        mime: Some(vec![0, 159, 255]),
    }
}

fn attachment(item: &Item, name: &str, modified: i64) -> Attachment {
    Attachment {
        id: new_id(IdKind::Attachment),
        item_id: item.id.clone(),
        mailbox: item.mailbox.clone(),
        name: name.to_owned(),
        content_type: "application/octet-stream".into(),
        content_id: Some(format!("<{name}>")),
        is_inline: true,
        size: 4,
        modified_at: modified,
        content: (0..=255).collect(),
        item_element: None,
        parent_attachment_id: None,
    }
}

/// Writes an item with fresh numbers, as CreateItem does.
async fn save(data: &Data, mut i: Item) -> Item {
    let mut w = data.write().await.unwrap();
    let (change, article) = w.next_numbers(&i.mailbox, 1).await.unwrap();
    i.change_number = change;
    i.article = article;
    w.insert_item(&i).await.unwrap();
    w.commit().await.unwrap();
    i
}

async fn folder(data: &Data, mailbox: &str, name: &str) -> Folder {
    data.folder_by_name(mailbox, name).await.unwrap().unwrap_or_else(|| panic!("{name} of {mailbox}"))
}

async fn battery(db: &TestDatabase) {
    let store = Store::open(&db.url, schema::MIGRATIONS).await.expect("open");
    let data = Data::new(store.clone());

    // Provisioning: the distinguished folders once, counters at zero; a second call is a no-op.
    data.ensure_mailbox("alice").await.unwrap();
    data.ensure_mailbox("alice").await.unwrap();
    Data::new(store.clone()).ensure_mailbox("alice").await.unwrap();
    data.ensure_mailbox("bob").await.unwrap();
    let all = data.folders_of("alice").await.unwrap();
    assert_eq!(all.len(), 26);
    assert_eq!(data.current_change("alice").await.unwrap(), 0);
    assert_eq!(data.current_change("nobody").await.unwrap(), 0);
    let root = folder(&data, "alice", "root").await;
    assert!(root.hidden && root.parent_id.is_none());
    let top = folder(&data, "alice", "msgfolderroot").await;
    assert_eq!(top.parent_id.as_deref(), Some(root.id.as_str()));
    let inbox = folder(&data, "alice", "inbox").await;
    assert_eq!((inbox.class.as_str(), inbox.item_count, inbox.unread_count), ("IPF.Note", 0, 0));
    assert_eq!(data.folder_by_id(&inbox.id).await.unwrap().as_ref(), Some(&inbox));
    assert_eq!(data.folder_by_id("missing").await.unwrap(), None);
    assert_eq!(data.folder_by_name("alice", "nonesuch").await.unwrap(), None);
    assert_ne!(folder(&data, "bob", "inbox").await.id, inbox.id);
    assert_eq!(data.child_count(&top.id).await.unwrap(), 15);
    assert_eq!(data.child_count(&inbox.id).await.unwrap(), 0);

    // Folder writes: create (refusing a clash without case), update, move, delete a subtree.
    let (projects, c1) = data.create_folder("alice", &inbox.id, "Projects", "IPF.Note").await.unwrap().unwrap();
    assert_eq!(c1, 1);
    assert_eq!(data.create_folder("alice", &inbox.id, "PROJECTS", "IPF.Note").await.unwrap(), None);
    assert_eq!(data.current_change("alice").await.unwrap(), 1, "a refused create takes no number");
    let (sub, _) = data.create_folder("alice", &projects, "Sub", "IPF.Note").await.unwrap().unwrap();
    assert_eq!(data.child_count(&inbox.id).await.unwrap(), 1);
    let p = data.folder_by_id(&projects).await.unwrap().unwrap();
    assert_eq!((p.display_name.as_str(), p.distinguished.as_deref(), p.mailbox.as_str()), ("Projects", None, "alice"));
    let c3 = data.update_folder(&p, "Work", "IPF.Contact").await.unwrap();
    assert_eq!(c3, 3);
    let p = data.folder_by_id(&projects).await.unwrap().unwrap();
    assert_eq!((p.display_name.as_str(), p.class.as_str(), p.change_number), ("Work", "IPF.Contact", 3));
    let deleted_items = folder(&data, "alice", "deleteditems").await;
    let c4 = data.move_folder(&p, &deleted_items.id).await.unwrap();
    let p = data.folder_by_id(&projects).await.unwrap().unwrap();
    assert_eq!((p.parent_id.as_deref(), p.change_number), (Some(deleted_items.id.as_str()), c4));

    // Folder changes in the log, oldest first; filtered by kind and limited.
    let folder_changes = data.changes_after("alice", 0, Some(ObjectKind::Folder), usize::MAX).await.unwrap();
    let kinds: Vec<(&str, i64)> = folder_changes.iter().map(|c| (c.kind.as_str(), c.change_number)).collect();
    assert_eq!(kinds, [("Created", 1), ("Created", 2), ("Modified", 3), ("Moved", 4)]);
    let moved = &folder_changes[3];
    assert_eq!((moved.object_kind.as_str(), moved.object_id.as_str()), ("folder", projects.as_str()));
    assert_eq!(
        (moved.folder_id.as_str(), moved.old_folder_id.as_deref()),
        (deleted_items.id.as_str(), Some(inbox.id.as_str()))
    );
    assert!(moved.at > 0);
    assert_eq!(data.changes_after("alice", 2, None, 1).await.unwrap()[0].change_number, 3);
    assert!(data.changes_after("alice", 0, Some(ObjectKind::Item), usize::MAX).await.unwrap().is_empty());

    // Items: insert keeps counts and the log; a page in each direction; read back whole.
    let mut saved = Vec::new();
    for n in 0..3 {
        saved.push(save(&data, item("alice", &inbox, &format!("m{n}"), 1000 + n)).await);
    }
    let inbox = folder(&data, "alice", "inbox").await;
    assert_eq!((inbox.item_count, inbox.unread_count, inbox.change_number), (3, 3, saved[2].change_number));
    assert_eq!(saved.iter().map(|i| i.article).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(data.item(&saved[0].id).await.unwrap().as_ref(), Some(&saved[0]));
    assert_eq!(data.item("missing").await.unwrap(), None);
    let page = data.items_page(&inbox.id, ItemOrder::Received, false, false, 2, 0).await.unwrap();
    assert_eq!(page.iter().map(|i| i.subject.as_str()).collect::<Vec<_>>(), ["m2", "m1"]);
    assert!(page[0].fields.is_empty() && page[0].mime.is_none(), "light columns only");
    let page = data.items_page(&inbox.id, ItemOrder::Article, true, true, 5, 1).await.unwrap();
    assert_eq!(page.iter().map(|i| i.subject.as_str()).collect::<Vec<_>>(), ["m1", "m2"]);
    assert_eq!(page[0], saved[1]);
    for order in [
        ItemOrder::Created,
        ItemOrder::Modified,
        ItemOrder::Start,
        ItemOrder::End,
        ItemOrder::Size,
        ItemOrder::Subject,
        ItemOrder::IsRead,
    ] {
        assert_eq!(data.items_page(&inbox.id, order, true, false, 10, 0).await.unwrap().len(), 3, "{order:?}");
    }
    let mut every = data.items_in(&inbox.id).await.unwrap();
    every.sort_by_key(|i| i.article);
    assert_eq!(every, saved);

    // Update in place (read state and counts), then a move between folders.
    let mut w = data.write().await.unwrap();
    let (change, _) = w.next_numbers("alice", 0).await.unwrap();
    let read = Item { is_read: true, change_number: change, subject: "m0 read".into(), ..saved[0].clone() };
    w.update_item(&read, None).await.unwrap();
    w.adjust_counts(&inbox.id, 0, -1, change).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(data.item(&read.id).await.unwrap().as_ref(), Some(&read));
    assert_eq!(folder(&data, "alice", "inbox").await.unread_count, 2);
    let drafts = folder(&data, "alice", "drafts").await;
    let mut w = data.write().await.unwrap();
    let (change, article) = w.next_numbers("alice", 1).await.unwrap();
    let moved = Item { folder_id: drafts.id.clone(), change_number: change, article, ..saved[1].clone() };
    w.update_item(&moved, Some(&inbox.id)).await.unwrap();
    w.adjust_counts(&inbox.id, -1, -1, change).await.unwrap();
    w.adjust_counts(&drafts.id, 1, 1, change).await.unwrap();
    w.commit().await.unwrap();
    let drafts = folder(&data, "alice", "drafts").await;
    assert_eq!((drafts.item_count, drafts.unread_count), (1, 1));
    assert_eq!(data.item(&moved.id).await.unwrap().unwrap().folder_id, drafts.id);

    // Sync of a folder's items after a state: arrivals, changes and departures folded per item.
    let synced = data.item_changes_in("alice", &inbox.id, 0).await.unwrap();
    let of = |id: &str| synced.iter().find(|s| s.item_id == id).cloned().unwrap();
    assert_eq!(synced.len(), 3);
    assert!(synced.windows(2).all(|w| w[0].last <= w[1].last), "in the order of the last change");
    assert_eq!(of(&saved[0].id).arrived, saved[0].change_number);
    assert!(of(&saved[0].id).last > saved[0].change_number, "modified after it arrived");
    assert_eq!(of(&moved.id).last, moved.change_number, "left the folder");
    let into_drafts = data.item_changes_in("alice", &drafts.id, 0).await.unwrap();
    assert_eq!(into_drafts.len(), 1);
    assert_eq!((into_drafts[0].arrived, into_drafts[0].last), (moved.change_number, moved.change_number));
    let later = data.item_changes_in("alice", &inbox.id, moved.change_number).await.unwrap();
    assert!(later.is_empty());

    // Attachments: insert, list without and with content, read one, copy, delete.
    let a1 = attachment(&saved[2], "a.bin", 5);
    let a2 = attachment(&saved[2], "b.bin", 6);
    let mut w = data.write().await.unwrap();
    w.insert_attachment(&a2).await.unwrap();
    w.insert_attachment(&a1).await.unwrap();
    w.commit().await.unwrap();
    let listed = data.attachments_of(&saved[2].id, false).await.unwrap();
    assert_eq!(listed.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["a.bin", "b.bin"]);
    assert!(listed[0].content.is_empty());
    assert_eq!(data.attachments_of(&saved[2].id, true).await.unwrap()[0], a1);
    assert_eq!(data.attachment(&a2.id).await.unwrap().as_ref(), Some(&a2));
    assert_eq!(data.attachment("missing").await.unwrap(), None);
    let bob_inbox = folder(&data, "bob", "inbox").await;
    let mut w = data.write().await.unwrap();
    let (change, article) = w.next_numbers("bob", 1).await.unwrap();
    let copy = Item { change_number: change, article, ..item("bob", &bob_inbox, "delivered", 2000) };
    w.insert_item(&copy).await.unwrap();
    w.copy_attachments(&saved[2].id, &copy.id, "bob").await.unwrap();
    w.log_change("bob", change, ChangeKind::NewMail, ObjectKind::Item, &copy.id, &bob_inbox.id, None).await.unwrap();
    w.commit().await.unwrap();
    let copied = data.attachments_of(&copy.id, true).await.unwrap();
    assert_eq!(copied.len(), 2);
    assert!(copied.iter().all(|a| a.mailbox == "bob" && a.item_id == copy.id && a.id != a1.id && a.id != a2.id));
    assert_eq!(copied[0].content, a1.content);
    let bob_log = data.changes_after("bob", 0, None, usize::MAX).await.unwrap();
    let bob_kinds: Vec<&str> = bob_log.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(bob_kinds, ["Created", "NewMail"]);
    let mut w = data.write().await.unwrap();
    w.delete_attachment(&a1.id).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(data.attachments_of(&saved[2].id, false).await.unwrap().len(), 1);
    let mut w = data.write().await.unwrap();
    w.delete_attachments_of(&copy.id).await.unwrap();
    w.commit().await.unwrap();
    assert!(data.attachments_of(&copy.id, false).await.unwrap().is_empty());

    // Item attachments: an embedded message holding a file; listed apart, copied and deleted
    // with every level.
    let held = Attachment {
        item_element: Some("Message".into()),
        content: b"<t:Message xmlns:t=\"x\"><t:Subject>inner</t:Subject></t:Message>".to_vec(),
        ..attachment(&saved[2], "inner.msg", 7)
    };
    let nested = Attachment { parent_attachment_id: Some(held.id.clone()), ..attachment(&saved[2], "deep.bin", 8) };
    let mut w = data.write().await.unwrap();
    w.insert_attachment(&held).await.unwrap();
    w.insert_attachment(&nested).await.unwrap();
    w.commit().await.unwrap();
    let top = data.attachments_of(&saved[2].id, true).await.unwrap();
    assert_eq!(top.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["b.bin", "inner.msg"]);
    assert_eq!(top[1], held);
    assert_eq!(data.attachments_within(&held.id, true).await.unwrap(), std::slice::from_ref(&nested));
    let mut w = data.write().await.unwrap();
    w.copy_attachments(&saved[2].id, &copy.id, "bob").await.unwrap();
    w.commit().await.unwrap();
    let copied = data.attachments_of(&copy.id, false).await.unwrap();
    let held_copy = copied.iter().find(|a| a.item_element.is_some()).unwrap();
    assert_ne!(held_copy.id, held.id);
    let deep_copy = data.attachments_within(&held_copy.id, false).await.unwrap();
    assert_eq!(deep_copy.len(), 1);
    assert!(deep_copy[0].id != nested.id && deep_copy[0].item_id == copy.id && deep_copy[0].mailbox == "bob");
    let mut w = data.write().await.unwrap();
    let gone = w.delete_attachment(&held.id).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(gone, [held.id.clone(), nested.id.clone()]);
    assert!(data.attachment(&nested.id).await.unwrap().is_none());
    assert_eq!(data.attachments_within(&held_copy.id, false).await.unwrap().len(), 1);
    let mut w = data.write().await.unwrap();
    w.delete_attachments_of(&copy.id).await.unwrap();
    w.commit().await.unwrap();
    assert!(data.attachments_within(&held_copy.id, false).await.unwrap().is_empty());

    // A write dropped without commit leaves nothing behind.
    {
        let mut w = data.write().await.unwrap();
        let (change, article) = w.next_numbers("alice", 1).await.unwrap();
        let lost = Item { change_number: change, article, ..item("alice", &inbox, "lost", 1) };
        w.insert_item(&lost).await.unwrap();
    }
    assert_eq!(data.items_in(&inbox.id).await.unwrap().len(), 2);
    let before_delete = data.current_change("alice").await.unwrap();

    // Hard delete of an item: row, attachments, count and log.
    let mut w = data.write().await.unwrap();
    let (change, _) = w.next_numbers("alice", 0).await.unwrap();
    assert_eq!(change, before_delete + 1, "the dropped write took no number");
    w.delete_item(&saved[2], change).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(data.item(&saved[2].id).await.unwrap(), None);
    assert!(data.attachments_of(&saved[2].id, false).await.unwrap().is_empty());
    let inbox = folder(&data, "alice", "inbox").await;
    assert_eq!((inbox.item_count, inbox.unread_count), (1, 0));
    let last = data.changes_after("alice", change - 1, Some(ObjectKind::Item), usize::MAX).await.unwrap();
    assert_eq!((last[0].kind.as_str(), last[0].object_id.as_str()), ("Deleted", saved[2].id.as_str()));

    // Hard delete of a folder subtree takes its items and their attachments with it.
    let p = data.folder_by_id(&projects).await.unwrap().unwrap();
    let s = data.folder_by_id(&sub).await.unwrap().unwrap();
    let doomed_item = save(&data, item("alice", &s, "in sub", 3000)).await;
    let mut w = data.write().await.unwrap();
    w.insert_attachment(&attachment(&doomed_item, "c.bin", 7)).await.unwrap();
    w.commit().await.unwrap();
    let change = data.delete_folders("alice", &[&p, &s]).await.unwrap();
    assert_eq!(data.folder_by_id(&projects).await.unwrap(), None);
    assert_eq!(data.folder_by_id(&sub).await.unwrap(), None);
    assert_eq!(data.item(&doomed_item.id).await.unwrap(), None);
    assert!(data.attachments_of(&doomed_item.id, false).await.unwrap().is_empty());
    let gone = data.changes_after("alice", change - 1, None, usize::MAX).await.unwrap();
    assert_eq!(gone.iter().filter(|c| c.kind == "Deleted" && c.object_kind == "folder").count(), 2);

    // Calendar: overlapping items for a view, and free/busy candidates with recurring ones.
    let calendar = folder(&data, "alice", "calendar").await;
    let at = |subject: &str, start: i64, end: i64, fields: &str| {
        let mut i = item("alice", &calendar, subject, start);
        i.element = "CalendarItem".into();
        (i.start_at, i.end_at) = (Some(start), Some(end));
        i.fields = fields.to_owned();
        i
    };
    let early = save(&data, at("early", 100, 200, "<t:Location>Room 1</t:Location>")).await;
    let weekly = save(&data, at("weekly", 50, 60, RECURRING)).await;
    let late = save(&data, at("late", 900, 1000, "")).await;
    let view = data.items_overlapping(&calendar.id, 150, 950).await.unwrap();
    assert_eq!(view.iter().map(|i| i.subject.as_str()).collect::<Vec<_>>(), ["early", "late"]);
    assert_eq!(view[0], early);
    let busy = data.calendar_entries(&calendar.id, 150, 800).await.unwrap();
    assert_eq!(busy.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(), ["weekly", "early"]);
    assert_eq!((busy[1].id.as_str(), busy[1].start_at, busy[1].end_at), (early.id.as_str(), Some(100), Some(200)));
    assert_eq!(busy[0].fields, weekly.fields);
    assert!(!busy.iter().any(|e| e.id == late.id));

    // Per-mailbox settings, delegates among them.
    assert_eq!(data.user_setting("alice", OOF).await.unwrap(), None);
    data.set_user_setting("alice", OOF, "<t:OofState>Enabled</t:OofState>").await.unwrap();
    data.set_user_setting("alice", OOF, "<t:OofState>Disabled</t:OofState>").await.unwrap();
    assert_eq!(data.user_setting("alice", OOF).await.unwrap().as_deref(), Some("<t:OofState>Disabled</t:OofState>"));
    assert_eq!(data.user_setting("bob", OOF).await.unwrap(), None);
    assert!(data.remove_user_setting("alice", OOF).await.unwrap());
    assert!(!data.remove_user_setting("alice", OOF).await.unwrap());
    data.set_user_setting("alice", DELIVER_MEETING_REQUESTS, "DelegatesOnly").await.unwrap();
    data.set_delegate("alice", "Carol@Litwareinc.com", "calendar=Editor").await.unwrap();
    data.set_delegate("alice", "bob@litwareinc.com", "inbox=Reviewer").await.unwrap();
    data.set_delegate("alice", "bob@litwareinc.com", "inbox=Author").await.unwrap();
    let delegates = data.delegates("alice").await.unwrap();
    assert_eq!(
        delegates,
        [
            ("bob@litwareinc.com".to_owned(), "inbox=Author".to_owned()),
            ("carol@litwareinc.com".to_owned(), "calendar=Editor".to_owned())
        ]
    );
    assert_eq!(data.delegate("alice", "CAROL@litwareinc.com").await.unwrap().as_deref(), Some("calendar=Editor"));
    assert_eq!(data.delegate("bob", "carol@litwareinc.com").await.unwrap(), None);
    assert!(data.remove_delegate("alice", "Carol@litwareinc.com").await.unwrap());
    assert!(!data.remove_delegate("alice", "carol@litwareinc.com").await.unwrap());
    assert_eq!(data.delegates("alice").await.unwrap().len(), 1);
    assert_eq!(data.user_setting("alice", DELIVER_MEETING_REQUESTS).await.unwrap().as_deref(), Some("DelegatesOnly"));

    // The IM list folders: contacts and groups read per element, bounded, oldest first; the
    // contact count is read inside a write.
    let quick = folder(&data, "alice", "quickcontacts").await;
    let imlist = folder(&data, "alice", "imcontactlist").await;
    let contact = |f: &Folder, name: &str| Item {
        element: "Contact".into(),
        item_class: "IPM.Contact".into(),
        fields: format!("<t:DisplayName>{name}</t:DisplayName>"),
        mime: None,
        ..item("alice", f, name, 100)
    };
    let c1 = save(&data, contact(&quick, "Bob")).await;
    let c2 = save(&data, contact(&imlist, "Carol")).await;
    let _other = save(&data, contact(&folder(&data, "alice", "contacts").await, "Elsewhere")).await;
    let group = save(
        &data,
        Item {
            element: "DistributionList".into(),
            item_class: "IPM.DistList.MOC.OtherContacts".into(),
            ..item("alice", &imlist, "Other Contacts", 100)
        },
    )
    .await;
    let contacts = data.im_list_items(&quick.id, &imlist.id, "Contact", 10).await.unwrap();
    assert_eq!(contacts.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [c1.id.as_str(), c2.id.as_str()]);
    assert_eq!(contacts[0].fields, "<t:DisplayName>Bob</t:DisplayName>");
    assert_eq!(data.im_list_items(&quick.id, &imlist.id, "Contact", 1).await.unwrap().len(), 1);
    let groups = data.im_list_items(&quick.id, &imlist.id, "DistributionList", 10).await.unwrap();
    assert_eq!(groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), [group.id.as_str()]);
    let mut w = data.write().await.unwrap();
    assert_eq!(w.im_contact_count(&quick.id, &imlist.id).await.unwrap(), 2);
    drop(w);
    let bobs = folder(&data, "bob", "quickcontacts").await;
    assert!(data.im_list_items(&bobs.id, &bobs.id, "Contact", 10).await.unwrap().is_empty());

    // Settings kept in a folder: the folder moves on and a folder ModifiedEvent is logged.
    let inbox = folder(&data, "alice", "inbox").await;
    let before = data.current_change("alice").await.unwrap();
    let change = data.set_folder_setting(&inbox, OOF, Some("<t:OofState>Enabled</t:OofState>")).await.unwrap();
    assert!(change > before);
    assert_eq!(data.user_setting("alice", OOF).await.unwrap().as_deref(), Some("<t:OofState>Enabled</t:OofState>"));
    assert_eq!(folder(&data, "alice", "inbox").await.change_number, change);
    let logged = data.changes_after("alice", before, Some(ObjectKind::Folder), 10).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!((logged[0].kind.as_str(), logged[0].object_id.as_str()), ("Modified", inbox.id.as_str()));
    assert_eq!(Some(logged[0].folder_id.clone()), inbox.parent_id);
    data.set_folder_setting(&inbox, OOF, None).await.unwrap();
    assert_eq!(data.user_setting("alice", OOF).await.unwrap(), None);
    // User configurations of a folder.
    let cal = folder(&data, "alice", "calendar").await;
    assert_eq!(data.user_configuration("alice", &cal.id, "WorkHours").await.unwrap(), None);
    data.set_user_configuration(&cal, "WorkHours", Some("<x/>")).await.unwrap();
    data.set_user_configuration(&cal, "WorkHours", Some("<y/>")).await.unwrap();
    assert_eq!(data.user_configuration("alice", &cal.id, "WorkHours").await.unwrap().as_deref(), Some("<y/>"));
    assert_eq!(data.user_configuration("alice", &inbox.id, "WorkHours").await.unwrap(), None);
    data.set_user_configuration(&cal, "WorkHours", None).await.unwrap();
    assert_eq!(data.user_configuration("alice", &cal.id, "WorkHours").await.unwrap(), None);
    // The automatic reply goes once per sender until out of office is turned on again.
    assert!(data.claim_oof_reply("alice", "Bob@Litwareinc.com").await.unwrap());
    assert!(!data.claim_oof_reply("alice", "bob@litwareinc.com").await.unwrap());
    assert!(data.claim_oof_reply("alice", "carol@litwareinc.com").await.unwrap());
    assert!(data.claim_oof_reply("bob", "carol@litwareinc.com").await.unwrap());
    assert!(data.claim_user_setting("alice", "x", "1").await.unwrap());
    assert!(!data.claim_user_setting("alice", "x", "2").await.unwrap());
    assert_eq!(data.user_setting("alice", "x").await.unwrap().as_deref(), Some("1"));
    assert_eq!(data.reset_oof_replies("alice").await.unwrap(), 2);
    assert!(data.claim_oof_reply("alice", "bob@litwareinc.com").await.unwrap());
    assert!(!data.claim_oof_reply("bob", "carol@litwareinc.com").await.unwrap());

    // Server-wide settings: by prefix, replaced, all or nothing.
    assert!(server_settings_with(&store, "cas.").await.unwrap().is_empty());
    set_server_settings(&store, &[("cas.a", "1"), ("cas.b", ""), ("other", "x")]).await.unwrap();
    set_server_settings(&store, &[("cas.a", "2")]).await.unwrap();
    let mut cas = server_settings_with(&store, "cas.").await.unwrap();
    cas.sort();
    assert_eq!(cas, [("cas.a".to_owned(), "2".to_owned()), ("cas.b".to_owned(), String::new())]);
    assert_eq!(store.setting("other").await.unwrap().as_deref(), Some("x"));

    photo_battery(&store).await;
}

/// User photos: sizes picked without upscaling, the preview beside the photo, save, remove.
async fn photo_battery(store: &Store) {
    use super::photos::{PhotoKind, photo, photo_sizes, put_photo, remove_photo, save_preview};
    let sizes = |n: &[u32]| n.iter().map(|p| (*p, vec![*p as u8, 0xFF, 0])).collect::<Vec<_>>();
    assert_eq!(photo(store, "alice", PhotoKind::Current, 96, true).await.unwrap(), None);
    put_photo(store, "alice", PhotoKind::Current, "t1", &sizes(&[48, 64, 96, 120, 240])).await.unwrap();
    let p = photo(store, "alice", PhotoKind::Current, 96, true).await.unwrap().unwrap();
    assert_eq!((p.pixels, p.etag.as_str(), p.content.clone()), (96, "t1", vec![96, 0xFF, 0]));
    // Above the largest kept: the largest; the tag alone without content.
    let top = photo(store, "alice", PhotoKind::Current, 648, false).await.unwrap().unwrap();
    assert_eq!((top.pixels, top.content.len()), (240, 0));
    assert_eq!(photo_sizes(store, "alice", PhotoKind::Current).await.unwrap(), vec![48, 64, 96, 120, 240]);
    // Smaller than every size kept (a tiny original): its one size.
    put_photo(store, "bob", PhotoKind::Current, "b", &sizes(&[30])).await.unwrap();
    assert_eq!(photo(store, "bob", PhotoKind::Current, 48, true).await.unwrap().unwrap().pixels, 30);
    // A replacement is whole: no size of the old photo is left.
    put_photo(store, "alice", PhotoKind::Current, "t2", &sizes(&[48, 64])).await.unwrap();
    assert_eq!(photo(store, "alice", PhotoKind::Current, 96, false).await.unwrap().unwrap().etag, "t2");
    assert_eq!(photo_sizes(store, "alice", PhotoKind::Current).await.unwrap(), vec![48, 64]);
    // A preview sits beside the photo until saved.
    assert!(!save_preview(store, "alice").await.unwrap());
    put_photo(store, "alice", PhotoKind::Preview, "p1", &sizes(&[48, 64, 96])).await.unwrap();
    assert_eq!(photo(store, "alice", PhotoKind::Current, 96, false).await.unwrap().unwrap().etag, "t2");
    assert_eq!(photo(store, "alice", PhotoKind::Preview, 96, false).await.unwrap().unwrap().etag, "p1");
    assert!(save_preview(store, "alice").await.unwrap());
    assert_eq!(photo(store, "alice", PhotoKind::Current, 96, false).await.unwrap().unwrap().etag, "p1");
    assert_eq!(photo(store, "alice", PhotoKind::Preview, 96, false).await.unwrap(), None);
    // Remove: gone, and a second remove reports it; another mailbox's photo stays.
    assert!(remove_photo(store, "alice", PhotoKind::Current).await.unwrap());
    assert!(!remove_photo(store, "alice", PhotoKind::Current).await.unwrap());
    assert_eq!(photo(store, "alice", PhotoKind::Current, 96, false).await.unwrap(), None);
    assert!(photo(store, "bob", PhotoKind::Current, 96, false).await.unwrap().is_some());
}

#[tokio::test]
async fn data_battery_sqlite() {
    battery(&TestDatabase::sqlite()).await;
    online_meetings_battery(&TestDatabase::sqlite()).await;
    search_battery(&TestDatabase::sqlite()).await;
    retention_battery(&TestDatabase::sqlite()).await;
    item_for_update_battery(&TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn data_battery_postgres() {
    let db = TestDatabase::postgres().await.expect("the PostgreSQL test server (see scripts/test.sh)");
    battery(&db).await;
    let db = TestDatabase::postgres().await.expect("the PostgreSQL test server (see scripts/test.sh)");
    online_meetings_battery(&db).await;
    let db = TestDatabase::postgres().await.expect("the PostgreSQL test server (see scripts/test.sh)");
    search_battery(&db).await;
    let db = TestDatabase::postgres().await.expect("the PostgreSQL test server (see scripts/test.sh)");
    retention_battery(&db).await;
    let db = TestDatabase::postgres().await.expect("the PostgreSQL test server (see scripts/test.sh)");
    item_for_update_battery(&db).await;
}

/// Read-modify-writes of one item through `item_for_update` from eight writers at once lose none
/// of them (the IM list's group edits rely on it); a missing item is None.
async fn item_for_update_battery(db: &TestDatabase) {
    let store = Store::open(&db.url, schema::MIGRATIONS).await.expect("open");
    let data = std::sync::Arc::new(Data::new(store));
    data.ensure_mailbox("alice").await.unwrap();
    let inbox = folder(&data, "alice", "inbox").await;
    let counted = save(&data, item("alice", &inbox, "0", 1)).await;
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (data, id) = (data.clone(), counted.id.clone());
        writers.push(tokio::spawn(async move {
            let mut w = data.write().await.unwrap();
            let mut i = w.item_for_update(&id).await.unwrap().unwrap();
            // Room for another writer between the read and the write.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            i.subject = (i.subject.parse::<u32>().unwrap() + 1).to_string();
            let (change, _) = w.next_numbers("alice", 0).await.unwrap();
            i.change_number = change;
            w.update_item(&i, None).await.unwrap();
            w.commit().await.unwrap();
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(data.item(&counted.id).await.unwrap().unwrap().subject, "8");
    let mut w = data.write().await.unwrap();
    assert_eq!(w.item_for_update("missing").await.unwrap(), None);
}

/// Deleted-item retention: the sweep removes what Recoverable Items kept past the mailbox's
/// RetainDeletedItemsFor (with its index entry and the folder's count), keeps what is younger,
/// what lies in other folders, and everything of a mailbox on hold until the hold is lifted.
async fn retention_battery(db: &TestDatabase) {
    use tandem_ews_proto::aqs::plan;

    use super::search::Scope;
    let store = Store::open(&db.url, schema::MIGRATIONS).await.expect("open");
    let data = Data::new(store.clone());
    let day = 86_400;
    let now = 1_000 * day;
    let put = |mailbox: &'static str, f: Folder, subject: &'static str, at: i64| {
        let data = &data;
        async move { save(data, item(mailbox, &f, subject, at)).await }
    };
    for m in ["ann", "ben"] {
        data.ensure_mailbox(m).await.unwrap();
    }
    let deletions = folder(&data, "ann", "recoverableitemsdeletions").await;
    let old = put("ann", deletions.clone(), "stale walrus", now - 15 * day).await;
    let young = put("ann", deletions.clone(), "young walrus", now - 13 * day).await;
    let inbox = put("ann", folder(&data, "ann", "inbox").await, "inbox walrus", now - 400 * day).await;
    let held = put("ben", folder(&data, "ben", "recoverableitemspurges").await, "held walrus", now - 400 * day).await;
    crate::holds::set(&store, "ben", Some(true), Some(0)).await.unwrap();
    assert_eq!(data.mailboxes_with_recoverable_items().await.unwrap(), ["ann".to_owned(), "ben".to_owned()]);

    assert_eq!(crate::holds::sweep(&data, now).await.unwrap(), 1);
    assert!(data.item(&old.id).await.unwrap().is_none());
    for kept in [&young, &inbox, &held] {
        assert!(data.item(&kept.id).await.unwrap().is_some(), "{}", kept.subject);
    }
    assert_eq!(folder(&data, "ann", "recoverableitemsdeletions").await.item_count, 1);
    let hits = |q: &'static str| {
        let data = &data;
        async move {
            let all: &[String] = &[];
            let found = data.search(Scope::Mailboxes(all), &plan(q).unwrap(), 10).await.unwrap();
            found.into_iter().map(|i| i.subject).collect::<Vec<_>>()
        }
    };
    assert!(hits("stale").await.is_empty(), "the purged item left the index");
    assert_eq!(crate::holds::sweep(&data, now).await.unwrap(), 0, "nothing else is due");

    // The hold lifted, Ben's retention of 0 days lets the next pass purge what he kept.
    crate::holds::set(&store, "ben", Some(false), None).await.unwrap();
    assert_eq!(crate::holds::sweep(&data, now).await.unwrap(), 1);
    assert!(data.item(&held.id).await.unwrap().is_none());
    assert_eq!(data.mailboxes_with_recoverable_items().await.unwrap(), ["ann".to_owned()]);
    assert_eq!(hits("walrus").await.len(), 2);
}

/// The full-text index: written with each item, rewritten on update, gone with the item or its
/// folder; words, phrases, fields, OR and received ranges answer the same on both backends.
async fn search_battery(db: &TestDatabase) {
    use tandem_ews_proto::aqs::plan;

    use super::search::Scope;
    let store = Store::open(&db.url, schema::MIGRATIONS).await.expect("open");
    let data = Data::new(store);
    data.ensure_mailbox("ann").await.unwrap();
    data.ensure_mailbox("ben").await.unwrap();
    let inbox = folder(&data, "ann", "inbox").await;
    let history = folder(&data, "ann", "conversationhistory").await;
    let purges = folder(&data, "ben", "recoverableitemspurges").await;
    let m = |mailbox: &str, f: &Folder, subject: &str, body: &str, from: &str, to: &str, at: i64| {
        let mut i = item(mailbox, f, subject, at);
        i.fields = format!(
            "<t:Subject>{subject}</t:Subject><t:Body BodyType=\"HTML\">{}</t:Body>\
             <t:From><t:Mailbox><t:Name>{from}</t:Name></t:Mailbox></t:From>\
             <t:ToRecipients><t:Mailbox><t:EmailAddress>{to}</t:EmailAddress></t:Mailbox></t:ToRecipients>",
            tandem_xml::escape(body)
        );
        i
    };
    let day = 86_400;
    let a = save(
        &data,
        m("ann", &inbox, "Budget review", "<p>The <b>kiwi</b> plan</p>", "Bob Smith", "ann@example.com", 20 * day),
    )
    .await;
    let b = save(&data, m("ann", &history, "Lunch", "kiwi salad at noon", "Carol", "bob@example.com", 21 * day)).await;
    let c = save(&data, m("ben", &purges, "Archived", "kiwi in the archive", "Ann", "ben@example.com", 22 * day)).await;
    let ids = |v: Vec<Item>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let all: &[String] = &[];
    let find = |q: &str| plan(q).unwrap();

    // An item stored before the index existed (its entry gone) is found again once the backlog
    // pass has run; a second pass finds nothing left.
    let mut w = data.write().await.unwrap();
    w.unindex_item(&b.id).await.unwrap();
    w.commit().await.unwrap();
    assert!(data.search(Scope::Mailboxes(all), &find("salad"), 100).await.unwrap().is_empty());
    assert_eq!(data.index_backlog(100).await.unwrap(), 1);
    assert_eq!(data.index_backlog(100).await.unwrap(), 0);
    // Once a pass has found nothing left, the store says so and a start skips the pass.
    assert!(!data.search_backlog_done().await.unwrap());
    data.mark_search_backlog_done().await.unwrap();
    assert!(data.search_backlog_done().await.unwrap());
    assert_eq!(ids(data.search(Scope::Mailboxes(all), &find("salad"), 100).await.unwrap()), [b.id.as_str()]);

    // Across mailboxes (hidden folders too), newest first; counts per mailbox.
    assert_eq!(
        ids(data.search(Scope::Mailboxes(all), &find("kiwi"), 100).await.unwrap()),
        [c.id.as_str(), b.id.as_str(), a.id.as_str()]
    );
    assert_eq!(
        data.search_counts(Scope::Mailboxes(all), &find("KIWI")).await.unwrap(),
        [("ann".to_owned(), 2), ("ben".to_owned(), 1)]
    );
    assert_eq!(
        ids(data.search(Scope::Mailboxes(&["ben".to_owned()]), &find("kiwi"), 100).await.unwrap()),
        [c.id.as_str()]
    );
    assert_eq!(data.search(Scope::Mailboxes(all), &find("kiwi"), 1).await.unwrap().len(), 1);
    // One folder; markup is not text; whole words only.
    assert_eq!(ids(data.search(Scope::Folder(&inbox.id), &find("kiwi"), 100).await.unwrap()), [a.id.as_str()]);
    assert!(data.search(Scope::Mailboxes(all), &find("b"), 100).await.unwrap().is_empty());
    assert!(data.search(Scope::Mailboxes(all), &find("kiw"), 100).await.unwrap().is_empty());
    // Fields, phrases, OR, AND, dates.
    let q = |s: &str| {
        let data = &data;
        let p = find(s);
        async move { ids(data.search(Scope::Mailboxes(all), &p, 100).await.unwrap()) }
    };
    assert_eq!(q("subject:budget").await, [a.id.as_str()]);
    assert!(q("subject:kiwi").await.is_empty());
    assert_eq!(q("from:carol").await, [b.id.as_str()]);
    assert_eq!(q("to:bob").await, [b.id.as_str()]);
    assert_eq!(q("participants:\"bob smith\"").await, [a.id.as_str()]);
    assert_eq!(q("\"kiwi salad\"").await, [b.id.as_str()]);
    assert!(q("\"salad kiwi\"").await.is_empty());
    assert_eq!(q("lunch OR archived").await, [c.id.as_str(), b.id.as_str()]);
    assert_eq!(q("kiwi AND (noon OR archive)").await, [c.id.as_str(), b.id.as_str()]);
    assert_eq!(q("kiwi received:1970-01-22").await, [b.id.as_str()]);
    assert_eq!(q("received:>=1970-01-22").await, [c.id.as_str(), b.id.as_str()]);
    assert_eq!(q("kiwi received:1970-01-21..1970-01-22").await, [b.id.as_str(), a.id.as_str()]);
    // Prefixes and NOT.
    assert_eq!(q("sal*").await, [b.id.as_str()]);
    assert_eq!(q("subject:budg*").await, [a.id.as_str()]);
    assert_eq!(q("\"kiwi sal*\"").await, [b.id.as_str()]);
    assert_eq!(q("kiwi NOT salad").await, [c.id.as_str(), a.id.as_str()]);
    assert_eq!(q("kiwi NOT (salad OR archive)").await, [a.id.as_str()]);
    assert_eq!(q("(kiwi NOT salad) OR lunch").await, [c.id.as_str(), b.id.as_str(), a.id.as_str()]);
    // received: inside OR: each branch on its own, the union newest first, counted once.
    assert_eq!(q("lunch OR received:1970-01-23").await, [c.id.as_str(), b.id.as_str()]);
    assert_eq!(q("kiwi OR received:1970-01-23").await, [c.id.as_str(), b.id.as_str(), a.id.as_str()]);
    assert_eq!(
        q("(budget received:1970-01-21) OR (archived received:>=1970-01-23)").await,
        [c.id.as_str(), a.id.as_str()]
    );
    assert!(q("budget received:1970-01-22").await.is_empty());
    assert!(q("kiwi received:1970-01-21 received:1970-01-23").await.is_empty());
    assert_eq!(
        data.search_counts(Scope::Mailboxes(all), &find("lunch OR received:1970-01-23")).await.unwrap(),
        [("ann".to_owned(), 1), ("ben".to_owned(), 1)]
    );
    assert_eq!(
        ids(data.search(Scope::Folder(&inbox.id), &find("lunch OR received:1970-01-21"), 100).await.unwrap()),
        [a.id.as_str()]
    );

    // An update rewrites the entry; a move keeps it; a delete and a folder delete remove it.
    let mut a2 = a.clone();
    a2.subject = "Mango review".into();
    a2.fields = a2.fields.replace("Budget review", "Mango review").replace("kiwi", "pear");
    let mut w = data.write().await.unwrap();
    w.update_item(&a2, None).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(q("mango").await, [a.id.as_str()]);
    assert!(q("budget").await.is_empty());
    assert_eq!(q("kiwi").await, [c.id.as_str(), b.id.as_str()]);
    let mut b2 = b.clone();
    b2.folder_id = inbox.id.clone();
    let mut w = data.write().await.unwrap();
    w.update_item(&b2, Some(&history.id)).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(ids(data.search(Scope::Folder(&inbox.id), &find("kiwi"), 100).await.unwrap()), [b.id.as_str()]);
    let mut w = data.write().await.unwrap();
    w.delete_item(&b2, 99).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(q("kiwi").await, [c.id.as_str()]);
    let (sub, _) = data.create_folder("ben", &purges.id, "Sub", "IPF.Note").await.unwrap().unwrap();
    let sub = data.folder_by_id(&sub).await.unwrap().unwrap();
    let d = save(&data, m("ben", &sub, "Gone soon", "durian", "x", "y", 23 * day)).await;
    assert_eq!(q("durian").await, [d.id.as_str()]);
    data.delete_folders("ben", &[&sub]).await.unwrap();
    assert!(q("durian").await.is_empty());
    assert_eq!(q("kiwi").await, [c.id.as_str()]);

    // The audit log keeps who searched what, newest first.
    let entry = |at: i64, query: &str| super::audit::AuditEntry {
        at,
        actor: "admin".into(),
        action: "search".into(),
        query: query.into(),
        scope: "all".into(),
        hits: 1,
    };
    data.record_audit(&entry(1, "kiwi")).await.unwrap();
    data.record_audit(&entry(2, "from:carol")).await.unwrap();
    assert_eq!(data.audit_log(10).await.unwrap(), [entry(2, "from:carol"), entry(1, "kiwi")]);
    assert_eq!(data.audit_log(1).await.unwrap().len(), 1);
}

/// The stored-XML helpers need no database.
#[test]
fn stored_properties_round_trip() {
    let x = "<t:Subject>a &amp; b</t:Subject><t:Body BodyType=\"Text\">x</t:Body>";
    let parts = split_elements(x).unwrap();
    assert_eq!(parts[1], ("Body".to_owned(), "<t:Body BodyType=\"Text\">x</t:Body>".to_owned()));
    assert_eq!(element_text(&parts[0].1), "a & b");
    assert!(split_elements("").unwrap().is_empty());
    assert!(split_elements("<t:Open>").is_err());
    let field = ExtendedField {
        distinguished_set: None,
        set_id: None,
        tag: Some(0x0e23),
        name: None,
        id: None,
        property_type: "Integer".into(),
    };
    let stored = join_extended(&[(field.clone(), vec!["42".into()])]);
    assert_eq!(split_extended(&stored).unwrap(), [(field, vec!["42".to_owned()])]);
    assert!(split_extended("").unwrap().is_empty());
    assert_ne!(new_id(IdKind::Item), new_id(IdKind::Item));
}

/// Online meetings: written, replaced, due in retry order (only pending ones), removed.
async fn online_meetings_battery(db: &TestDatabase) {
    use super::online_meetings::{OnlineMeeting, Pending};
    let store = Store::open(&db.url, schema::MIGRATIONS).await.expect("open");
    let data = Data::new(store);
    let meeting = |uid: &str, pending: Option<Pending>, at: i64| OnlineMeeting {
        uid: uid.into(),
        mailbox: "alice".into(),
        item_id: format!("item-{uid}"),
        conference_id: None,
        pending,
        attempts: 0,
        next_attempt_at: at,
        last_error: None,
    };
    assert_eq!(data.online_meeting("u1").await.unwrap(), None);
    data.put_online_meeting(&meeting("u1", Some(Pending::Create), 100)).await.unwrap();
    data.put_online_meeting(&meeting("u2", Some(Pending::Delete), 50)).await.unwrap();
    data.put_online_meeting(&meeting("u3", None, 0)).await.unwrap();
    data.put_online_meeting(&meeting("u4", Some(Pending::Update), 500)).await.unwrap();
    let due: Vec<String> = data.due_online_meetings(100, 10).await.unwrap().into_iter().map(|m| m.uid).collect();
    assert_eq!(due, ["u2", "u1"], "due ones, longest waiting first; settled and later ones not");
    assert_eq!(data.due_online_meetings(1_000, 1).await.unwrap().len(), 1, "the limit holds");
    let mut done = meeting("u1", None, 100);
    done.conference_id = Some("ABCD1234".into());
    done.attempts = 3;
    done.last_error = Some("the Front End did not answer".into());
    data.put_online_meeting(&done).await.unwrap();
    assert_eq!(data.online_meeting("u1").await.unwrap(), Some(done));
    assert!(data.remove_online_meeting("u2").await.unwrap());
    assert!(!data.remove_online_meeting("u2").await.unwrap());
    assert_eq!(data.due_online_meetings(1_000, 10).await.unwrap().len(), 1);
}
