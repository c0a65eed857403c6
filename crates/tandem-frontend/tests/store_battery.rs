//! The Front End store battery: every function of the role's data layer against SQLite and
//! PostgreSQL (the SIP flows and interop suites run on SQLite only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_frontend::store::{
    self, ArchivingConfigRow, ArchivingPolicyRow, ClientPolicyRow, ConversationKind, ConversationMessage,
    ConversationRow, FeContact, FeGroup, FrontendStore, HistoryBacklog, HistoryConfigRow, HistoryWrite, ItemTarget,
    ListLocation, OfflineMessage, PendingItem, PresenceStatusRow, Registration, UserServicesPolicyRow,
};
use tandem_store::testing::TestDatabase;

const ALICE: &str = "sip:alice@litwareinc.com";
const BOB: &str = "sip:bob@litwareinc.com";
const CAROL: &str = "sip:carol@litwareinc.com";

fn registration(aor: &str, contact: &str, expires_at: i64) -> Registration {
    Registration {
        aor: aor.into(),
        contact: format!("<{contact}>"),
        transport: "UDP".into(),
        peer: "127.0.0.1:5070".into(),
        expires_at,
        call_id: format!("{contact}-call"),
        cseq: u32::MAX,
        user_agent: Some("battery/1 ünïcode".into()),
        by_contact: false,
    }
}

fn message(id: &str, target: &str, received_at: i64, body: &[u8]) -> OfflineMessage {
    OfflineMessage {
        id: id.into(),
        target_aor: target.into(),
        sender: ALICE.into(),
        from_header: format!("<{ALICE}>;tag={id}"),
        content_type: "text/plain;charset=UTF-8".into(),
        body: body.to_vec(),
        received_at,
    }
}

async fn registrations(fe: &FrontendStore) {
    let now = tandem_store::now_unix();
    assert!(fe.registrations().await.unwrap().is_empty());

    // Replacing writes exactly what is given for the named addresses of record.
    let a1 = registration(ALICE, "sip:alice@10.0.0.1:5070", now + 3600);
    let a2 = registration(ALICE, "sip:alice@10.0.0.2:5070", now + 60);
    let mut b1 = registration(BOB, "sip:bob@10.0.0.3:5070", now - 1);
    b1.user_agent = None;
    b1.transport = "TCP".into();
    b1.by_contact = true;
    fe.replace_registrations(&[ALICE.into(), BOB.into()], &[a1.clone(), a2.clone(), b1.clone()]).await.unwrap();
    let mut all = fe.registrations().await.unwrap();
    all.sort_by(|x, y| x.contact.cmp(&y.contact));
    assert_eq!(all, vec![a1.clone(), a2.clone(), b1.clone()], "every field round-trips, u32::MAX CSeq included");

    // Live ones, ordered by address of record then expiry; one user's alone.
    let live = fe.live_registrations(now, None).await.unwrap();
    assert_eq!(live, vec![a2.clone(), a1.clone()], "bob's expired binding is not live");
    assert_eq!(fe.live_registrations(now, Some(ALICE)).await.unwrap(), vec![a2.clone(), a1.clone()]);
    assert!(fe.live_registrations(now, Some(BOB)).await.unwrap().is_empty());
    assert!(fe.live_registrations(now, Some(CAROL)).await.unwrap().is_empty());

    // The admin view of the same rows.
    let rows = tandem_frontend::admin::registrations(fe.store(), Some("SIP:Alice@litwareinc.com")).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].sip_uri, ALICE);
    assert_eq!(rows[0].contact, a2.contact);
    assert_eq!(rows[0].source, "127.0.0.1:5070");
    assert!((58..=60).contains(&rows[0].expires_in), "{}", rows[0].expires_in);
    assert_eq!(tandem_frontend::admin::registrations(fe.store(), None).await.unwrap().len(), 2);

    // A replacement touches only the addresses named; an empty list removes theirs.
    let a3 = registration(ALICE, "sip:alice@10.0.0.9:5070", now + 120);
    fe.replace_registrations(&[ALICE.into()], std::slice::from_ref(&a3)).await.unwrap();
    let mut all = fe.registrations().await.unwrap();
    all.sort_by(|x, y| x.contact.cmp(&y.contact));
    assert_eq!(all, vec![a3.clone(), b1.clone()]);
    // Rows of an address not named are not written.
    fe.replace_registrations(&[BOB.into()], &[registration(CAROL, "sip:carol@10.0.0.4", now + 60)]).await.unwrap();
    assert_eq!(fe.registrations().await.unwrap(), vec![a3.clone()]);

    // Expired rows go, live ones stay.
    fe.replace_registrations(&[BOB.into()], std::slice::from_ref(&b1)).await.unwrap();
    assert_eq!(fe.delete_expired_registrations(now).await.unwrap(), 1);
    assert_eq!(fe.delete_expired_registrations(now).await.unwrap(), 0);
    assert_eq!(fe.registrations().await.unwrap(), vec![a3.clone()]);
    fe.replace_registrations(&[ALICE.into()], &[]).await.unwrap();
    assert!(fe.registrations().await.unwrap().is_empty());
}

async fn offline_messages(fe: &FrontendStore) {
    assert_eq!(fe.offline_message_count(BOB).await.unwrap(), 0);
    assert!(fe.offline_messages_for(BOB).await.unwrap().is_empty());
    let blob: Vec<u8> = (0..=255).collect();
    let later = message("b-later", BOB, 200, "héllo 'quoted'".as_bytes());
    let first = message("z-first", BOB, 100, &blob);
    let same_time = message("a-same", BOB, 200, b"second at 200");
    let carols = message("c", CAROL, 50, b"for carol");
    for m in [&later, &first, &same_time, &carols] {
        fe.insert_offline_message(m).await.unwrap();
    }
    assert_eq!(fe.offline_message_count(BOB).await.unwrap(), 3);
    assert_eq!(fe.offline_message_count(CAROL).await.unwrap(), 1);
    // Oldest first, ties by id; every field round-trips, binary bodies included.
    assert_eq!(fe.offline_messages_for(BOB).await.unwrap(), vec![first.clone(), same_time.clone(), later.clone()]);
    assert_eq!(fe.offline_messages_for(CAROL).await.unwrap(), vec![carols.clone()]);

    // The id is unique.
    let dup = fe.insert_offline_message(&first).await.unwrap_err();
    let store::DataError::Store(e) = &dup else { panic!("not a store error: {dup}") };
    assert!(e.is_unique_violation(), "{dup}");

    assert!(fe.delete_offline_message(&first.id).await.unwrap());
    assert!(!fe.delete_offline_message(&first.id).await.unwrap(), "gone already");
    assert_eq!(fe.offline_messages_for(BOB).await.unwrap(), vec![same_time, later]);
    assert_eq!(fe.offline_message_count(CAROL).await.unwrap(), 1);
}

async fn blocks(fe: &FrontendStore) {
    assert!(!fe.is_blocked(BOB, CAROL).await.unwrap());
    fe.block(BOB, CAROL).await.unwrap();
    fe.block(BOB, CAROL).await.unwrap();
    assert!(fe.is_blocked(BOB, CAROL).await.unwrap());
    assert!(!fe.is_blocked(CAROL, BOB).await.unwrap(), "a block has a direction");
    assert!(!fe.is_blocked(BOB, ALICE).await.unwrap());
    assert!(fe.unblock(BOB, CAROL).await.unwrap());
    assert!(!fe.unblock(BOB, CAROL).await.unwrap(), "no block left to lift");
    assert!(!fe.is_blocked(BOB, CAROL).await.unwrap());
}

async fn calendar_presence(fe: &FrontendStore) {
    assert!(fe.client_policies().await.unwrap().is_empty());
    let global = ClientPolicyRow {
        identity: "global".into(),
        disable_meeting_subject_and_location: Some(false),
        web_service_poll_seconds: Some(60),
        ..ClientPolicyRow::default()
    };
    fe.set_client_policy(&global).await.unwrap();
    // A second set changes only what it names.
    let more = ClientPolicyRow {
        identity: "global".into(),
        disable_calendar_presence: Some(true),
        ..ClientPolicyRow::default()
    };
    fe.set_client_policy(&more).await.unwrap();
    let bob = ClientPolicyRow {
        identity: BOB.into(),
        disable_free_busy_info: Some(true),
        enable_off_work_presence: Some(true),
        enable_im_auto_archiving: Some(false),
        enable_call_log_auto_archiving: Some(true),
        ..ClientPolicyRow::default()
    };
    fe.set_client_policy(&bob).await.unwrap();
    let all = fe.client_policies().await.unwrap();
    assert_eq!(
        all,
        vec![
            ClientPolicyRow {
                identity: "global".into(),
                disable_calendar_presence: Some(true),
                disable_meeting_subject_and_location: Some(false),
                disable_free_busy_info: None,
                web_service_poll_seconds: Some(60),
                enable_off_work_presence: None,
                enable_im_auto_archiving: None,
                enable_call_log_auto_archiving: None,
            },
            bob.clone(),
        ]
    );
    assert!(fe.remove_client_policy(BOB).await.unwrap());
    assert!(!fe.remove_client_policy(BOB).await.unwrap());

    let row = |aor: &str, note: Option<&str>| PresenceStatusRow {
        aor: aor.into(),
        availability: "busy".into(),
        activity: Some("meeting".into()),
        note: note.map(str::to_owned),
        reason: "in a meeting".into(),
        calendar: "watching".into(),
        calendar_error: None,
        updated_at: 5,
    };
    fe.put_presence_status(&row(BOB, Some("In a meeting"))).await.unwrap();
    fe.put_presence_status(&row(ALICE, None)).await.unwrap();
    let replaced = PresenceStatusRow {
        calendar: "failing".into(),
        calendar_error: Some("Token: refused".into()),
        ..row(BOB, None)
    };
    fe.put_presence_status(&replaced).await.unwrap();
    assert_eq!(fe.presence_status(Some(BOB)).await.unwrap(), vec![replaced.clone()]);
    assert_eq!(fe.presence_status(None).await.unwrap(), vec![row(ALICE, None), replaced]);
    fe.delete_presence_status(ALICE).await.unwrap();
    assert_eq!(fe.presence_status(None).await.unwrap().len(), 1);
    assert!(fe.presence_status(Some(CAROL)).await.unwrap().is_empty());
}

fn conv(id: &str, last_at: i64, count: i64) -> ConversationRow {
    ConversationRow {
        id: id.into(),
        kind: if id.starts_with('m') { ConversationKind::Missed } else { ConversationKind::Im },
        participants: [ALICE.into(), BOB.into()],
        initiator: BOB.into(),
        started_at: 1_000,
        last_at,
        message_count: count,
        ended: false,
        sip_call_id: None,
        detail: None,
    }
}

fn line(id: &str, seq: i64, sender: &str, text: &str) -> HistoryWrite {
    HistoryWrite::Message {
        conversation: conv(id, 1_000 + seq, seq + 1),
        message: ConversationMessage {
            conversation_id: id.into(),
            seq,
            sent_at: 1_000 + seq,
            sender: sender.into(),
            text: text.into(),
        },
    }
}

async fn conversation_history(fe: &FrontendStore) {
    assert_eq!(fe.history_backlog().await.unwrap(), HistoryBacklog::default());
    assert!(fe.open_conversations().await.unwrap().is_empty());
    // Messages create and advance their conversation; one batch is one transaction.
    fe.apply_history(&[line("c1", 0, BOB, "héllo <b>'x'</b>"), line("c1", 1, ALICE, "second")]).await.unwrap();
    fe.apply_history(&[line("c2", 0, ALICE, "other")]).await.unwrap();
    let open = fe.open_conversations().await.unwrap();
    assert_eq!(open, vec![conv("c1", 1_001, 2), conv("c2", 1_000, 1)]);
    let msgs = fe.conversation_messages("c1").await.unwrap();
    assert_eq!(msgs.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), vec!["héllo <b>'x'</b>", "second"]);
    assert_eq!((msgs[1].seq, msgs[1].sent_at, msgs[1].sender.as_str()), (1, 1_001, ALICE));

    // A failing batch leaves nothing: the duplicate seq 1 undoes the new message before it.
    let err = fe.apply_history(&[line("c1", 2, BOB, "lost"), line("c1", 1, BOB, "dup")]).await.unwrap_err();
    let store::DataError::Store(e) = &err else { panic!("not a store error: {err}") };
    assert!(e.is_unique_violation(), "{err}");
    assert_eq!(fe.conversation_messages("c1").await.unwrap().len(), 2);
    assert_eq!(fe.conversation("c1").await.unwrap().unwrap().message_count, 2);

    // The end queues one item per target, due at `at`; ending twice queues nothing more.
    let target = |owner: &str, folder: &str| ItemTarget { owner: owner.into(), folder: folder.into() };
    let end = HistoryWrite::End {
        conversation_id: "c1".into(),
        targets: vec![target(ALICE, "conversationhistory"), target(BOB, "conversationhistory")],
        at: 5_000,
        last_at: None,
    };
    fe.apply_history(std::slice::from_ref(&end)).await.unwrap();
    fe.apply_history(&[end]).await.unwrap();
    assert_eq!(fe.open_conversations().await.unwrap(), vec![conv("c2", 1_000, 1)]);
    assert!(fe.conversation("c1").await.unwrap().unwrap().ended);
    assert!(fe.due_history_items(4_999, 10).await.unwrap().is_empty());
    let due = fe.due_history_items(5_000, 10).await.unwrap();
    assert_eq!(due.iter().map(|p| p.owner.as_str()).collect::<Vec<_>>(), vec![ALICE, BOB]);
    assert_eq!(fe.due_history_items(5_000, 1).await.unwrap().len(), 1, "the limit holds");
    let (alice_item, bob_item) = (due[0].clone(), due[1].clone());
    assert_eq!((alice_item.folder.as_str(), alice_item.attempts), ("conversationhistory", 0));

    // A failure counts and moves the next attempt.
    fe.history_item_failed(&bob_item, "Ews: unreachable", 9_000).await.unwrap();
    let due = fe.due_history_items(5_000, 10).await.unwrap();
    assert_eq!(due.iter().map(|p| p.owner.as_str()).collect::<Vec<_>>(), vec![ALICE]);
    let bob = &fe.due_history_items(9_000, 10).await.unwrap()[1];
    assert_eq!((bob.attempts, bob.next_attempt_at, bob.last_error.as_deref()), (1, 9_000, Some("Ews: unreachable")));
    let backlog = fe.history_backlog().await.unwrap();
    assert_eq!((backlog.open_conversations, backlog.pending_items, backlog.failing_items), (1, 2, 1));
    assert_eq!(backlog.last_error.as_deref(), Some("Ews: unreachable"));
    assert_eq!(fe.pending_history_items().await.unwrap().len(), 2);

    // Written once: the second report finds nothing pending. The last item removes everything.
    assert!(fe.history_item_written(&alice_item).await.unwrap());
    assert!(!fe.history_item_written(&alice_item).await.unwrap());
    assert!(fe.conversation("c1").await.unwrap().is_some(), "bob's item is still queued");
    assert!(fe.history_item_written(&bob_item).await.unwrap());
    assert!(fe.conversation("c1").await.unwrap().is_none());
    assert!(fe.conversation_messages("c1").await.unwrap().is_empty());
    assert!(fe.pending_history_items().await.unwrap().is_empty());
    assert!(!fe.history_item_written(&bob_item).await.unwrap());
    assert!(fe.conversation("c2").await.unwrap().is_some(), "another conversation is untouched");

    // A missed conversation: two copies for one owner (Inbox and Conversation History), each
    // its own item write; the kind round-trips.
    fe.apply_history(&[line("m1", 0, ALICE, "are you there?")]).await.unwrap();
    assert_eq!(fe.conversation("m1").await.unwrap().unwrap().kind, ConversationKind::Missed);
    let end = HistoryWrite::End {
        conversation_id: "m1".into(),
        targets: vec![target(BOB, "inbox"), target(BOB, "conversationhistory")],
        at: 6_000,
        last_at: None,
    };
    fe.apply_history(&[end]).await.unwrap();
    let due: Vec<PendingItem> = fe.due_history_items(6_000, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|p| (p.owner.as_str(), p.folder.as_str())).collect::<Vec<_>>(),
        vec![(BOB, "conversationhistory"), (BOB, "inbox")]
    );
    assert!(fe.history_item_written(&due[1]).await.unwrap());
    assert!(fe.conversation("m1").await.unwrap().is_some());
    assert!(fe.history_item_written(&due[0]).await.unwrap());
    assert!(fe.conversation("m1").await.unwrap().is_none());

    // A call has no messages: it starts with its SIP Call-ID, and its end sets when it ended.
    let call = ConversationRow {
        id: "k1".into(),
        kind: ConversationKind::Call,
        participants: [ALICE.into(), BOB.into()],
        initiator: BOB.into(),
        started_at: 7_000,
        last_at: 7_000,
        sip_call_id: Some("a84b4c76e66710@pc33.litwareinc.com".into()),
        ..ConversationRow::default()
    };
    fe.apply_history(&[HistoryWrite::Start { conversation: call.clone() }]).await.unwrap();
    assert!(fe.open_conversations().await.unwrap().contains(&call), "a call open at a restart is found again");
    let missed = ConversationRow {
        id: "k2".into(),
        kind: ConversationKind::MissedCall,
        detail: Some("busy".into()),
        sip_call_id: None,
        ..call.clone()
    };
    let end_call = |id: &str, last_at| HistoryWrite::End {
        conversation_id: id.into(),
        targets: vec![target(ALICE, "conversationhistory")],
        at: 9_000,
        last_at,
    };
    fe.apply_history(&[HistoryWrite::Start { conversation: missed.clone() }, end_call("k2", None)]).await.unwrap();
    fe.apply_history(&[end_call("k1", Some(8_500))]).await.unwrap();
    let k1 = fe.conversation("k1").await.unwrap().unwrap();
    assert_eq!((k1.ended, k1.started_at, k1.last_at), (true, 7_000, 8_500));
    let k2 = fe.conversation("k2").await.unwrap().unwrap();
    assert_eq!((k2.kind, k2.detail.as_deref(), k2.last_at), (ConversationKind::MissedCall, Some("busy"), 7_000));
    for item in fe.due_history_items(9_000, 10).await.unwrap() {
        assert!(fe.history_item_written(&item).await.unwrap());
    }
    assert!(fe.conversation("k1").await.unwrap().is_none() && fe.conversation("k2").await.unwrap().is_none());

    // The archiving settings: unset, then set setting by setting.
    assert_eq!(fe.archiving_configuration().await.unwrap(), ArchivingConfigRow::default());
    let mode = ArchivingConfigRow {
        enable_archiving: Some("ImOnly".into()),
        enable_exchange_archiving: Some(true),
        ..ArchivingConfigRow::default()
    };
    fe.set_archiving_configuration(&mode).await.unwrap();
    let policy =
        ArchivingConfigRow { archive_internal: Some(true), archive_external: Some(false), ..Default::default() };
    fe.set_archiving_configuration(&policy).await.unwrap();
    assert_eq!(
        fe.archiving_configuration().await.unwrap(),
        ArchivingConfigRow { archive_internal: Some(true), archive_external: Some(false), ..mode }
    );

    // Tag archiving policies and grants: a user follows the granted policy, else the global one.
    let legal =
        ArchivingPolicyRow { identity: "tag:Legal".into(), archive_internal: Some(false), archive_external: None };
    assert!(fe.put_archiving_policy(&legal, true).await.unwrap());
    assert!(!fe.put_archiving_policy(&legal, true).await.unwrap(), "made once");
    let missing = ArchivingPolicyRow { identity: "tag:nope".into(), ..Default::default() };
    assert!(!fe.put_archiving_policy(&missing, false).await.unwrap(), "only an existing one changes");
    assert_eq!(
        fe.archiving_policies().await.unwrap(),
        [ArchivingPolicyRow { identity: "tag:legal".into(), archive_internal: Some(false), archive_external: None }]
    );
    assert!(fe.archives_internal_for("sip:bob@example.com").await.unwrap(), "the global policy archives");
    fe.grant_archiving_policy("sip:Bob@example.com", Some("tag:legal")).await.unwrap();
    assert_eq!(fe.granted_archiving_policy("sip:bob@example.com").await.unwrap().as_deref(), Some("tag:legal"));
    assert!(!fe.archives_internal_for("sip:bob@example.com").await.unwrap(), "the granted one does not");
    let on = ArchivingPolicyRow { archive_internal: Some(true), ..legal.clone() };
    assert!(fe.put_archiving_policy(&on, false).await.unwrap());
    assert!(fe.archives_internal_for("sip:bob@example.com").await.unwrap());
    fe.grant_archiving_policy("sip:bob@example.com", None).await.unwrap();
    assert_eq!(fe.granted_archiving_policy("sip:bob@example.com").await.unwrap(), None);

    // The configuration: unset, then set setting by setting.
    assert_eq!(fe.history_configuration().await.unwrap(), HistoryConfigRow::default());
    let idle = HistoryConfigRow { idle_timeout_secs: Some(3), ..HistoryConfigRow::default() };
    fe.set_history_configuration(&idle).await.unwrap();
    let off = HistoryConfigRow {
        enable_server_conversation_history: Some(false),
        max_continued_conversation_retry: Some(0),
        ..HistoryConfigRow::default()
    };
    fe.set_history_configuration(&off).await.unwrap();
    assert_eq!(
        fe.history_configuration().await.unwrap(),
        HistoryConfigRow {
            enable_server_conversation_history: Some(false),
            idle_timeout_secs: Some(3),
            max_continued_conversation_retry: Some(0),
        }
    );
}

async fn contact_lists(fe: &FrontendStore) {
    // Policies: none set, then global and per user; setting again replaces.
    assert!(fe.user_services_policies().await.unwrap().is_empty());
    let p = |id: &str, v: Option<bool>| UserServicesPolicyRow { identity: id.into(), ucs_allowed: v };
    fe.set_user_services_policy(&p("global", Some(true))).await.unwrap();
    fe.set_user_services_policy(&p(ALICE, Some(true))).await.unwrap();
    fe.set_user_services_policy(&p(ALICE, Some(false))).await.unwrap();
    assert_eq!(fe.user_services_policies().await.unwrap(), vec![p("global", Some(true)), p(ALICE, Some(false))]);

    // A list put in the Front End store lives there, groups and contacts in order.
    assert_eq!(fe.contact_list_state(CAROL).await.unwrap(), None);
    assert!(fe.fe_contact_list(CAROL).await.unwrap().is_empty());
    let c = |uri: &str, name: Option<&str>| FeContact { uri: uri.into(), display_name: name.map(str::to_owned) };
    let groups = vec![
        FeGroup { name: "Other Contacts".into(), contacts: vec![c(BOB, Some("Bob ünïcode")), c(ALICE, None)] },
        FeGroup { name: "Work".into(), contacts: vec![c(BOB, None)] },
        FeGroup { name: "Empty".into(), contacts: vec![] },
    ];
    let before = tandem_frontend::store::now_millis();
    fe.put_fe_contact_list(CAROL, &groups, Some(1_000)).await.unwrap();
    assert_eq!(fe.fe_contact_list(CAROL).await.unwrap(), groups);
    let st = fe.contact_list_state(CAROL).await.unwrap().unwrap();
    assert_eq!((st.location, st.migrate_after), (ListLocation::FrontEnd, 1_000));
    assert!(st.changed_at >= before);
    assert_eq!(fe.contact_list_states_since(before).await.unwrap(), vec![st.clone()]);
    assert!(fe.contact_list_states_since(st.changed_at + 1).await.unwrap().is_empty());

    // Replacing keeps the hold unless a new one is given; the list is exactly the new one.
    fe.put_fe_contact_list(CAROL, &groups[1..], None).await.unwrap();
    assert_eq!(fe.fe_contact_list(CAROL).await.unwrap(), groups[1..].to_vec());
    assert_eq!(fe.contact_list_state(CAROL).await.unwrap().unwrap().migrate_after, 1_000);

    // A finished migration drops the copy and records the mailbox.
    fe.put_fe_contact_list(BOB, &groups, None).await.unwrap();
    fe.contact_list_moved_to_mailbox(BOB).await.unwrap();
    assert!(fe.fe_contact_list(BOB).await.unwrap().is_empty());
    assert_eq!(fe.contact_list_state(BOB).await.unwrap().unwrap().location, ListLocation::Mailbox);
    assert_eq!(fe.fe_contact_list(CAROL).await.unwrap().len(), 2, "another user's list is untouched");
    fe.put_fe_contact_list(CAROL, &groups, None).await.unwrap();
}

async fn voicemail(fe: &FrontendStore) {
    use tandem_frontend::store::{SpooledVoicemail, UmMailboxRow};
    assert_eq!(fe.um_mailbox(BOB).await.unwrap(), None, "not UM-enabled");
    let mut row = UmMailboxRow {
        aor: BOB.into(),
        smtp: "bob@litwareinc.com".into(),
        pin_hash: None,
        call_answering_rings: 4,
        greeting: None,
        updated_at: 100,
    };
    fe.put_um_mailbox(&row).await.unwrap();
    row.call_answering_rings = 2;
    row.greeting = Some(vec![0, 1, 2, 255]);
    row.pin_hash = Some("$argon2id$x".into());
    fe.put_um_mailbox(&row).await.unwrap();
    assert_eq!(fe.um_mailbox(BOB).await.unwrap(), Some(row.clone()), "the second put replaced the first");
    assert_eq!(fe.um_mailboxes().await.unwrap(), vec![row]);

    let v = |id: &str, at: i64| SpooledVoicemail {
        id: id.into(),
        callee_smtp: "bob@litwareinc.com".into(),
        caller_uri: ALICE.into(),
        caller_name: Some("Alice".into()),
        started_at: 50,
        wav: vec![b'R', b'I', b'F', b'F', 0, 200],
        attempts: 0,
        next_attempt_at: at,
        last_error: None,
    };
    fe.spool_voicemail(&v("a", 10)).await.unwrap();
    fe.spool_voicemail(&v("b", 20)).await.unwrap();
    assert_eq!(fe.due_voicemails(15, 10).await.unwrap(), vec![v("a", 10)]);
    fe.voicemail_retry("a", 30, "mailbox unreachable").await.unwrap();
    let due = fe.due_voicemails(40, 10).await.unwrap();
    assert_eq!(due.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
    assert_eq!((due[1].attempts, due[1].last_error.as_deref()), (1, Some("mailbox unreachable")));
    assert!(fe.voicemail_delivered("b").await.unwrap());
    assert!(!fe.voicemail_delivered("b").await.unwrap());
    assert_eq!(fe.spooled_voicemail_count().await.unwrap(), 1);
    assert!(fe.delete_um_mailbox(BOB).await.unwrap());
    assert!(!fe.delete_um_mailbox(BOB).await.unwrap());
}

async fn conferences(fe: &FrontendStore) {
    use tandem_frontend::conference::{self, ConferenceRequest};
    use tandem_frontend::store::{AccessLevel, MeetingConfigurationRow};
    // Skype for Business's defaults until set: private meetings, invitees bypass the lobby.
    let defaults = fe.meeting_configuration().await.unwrap();
    assert_eq!(defaults, MeetingConfigurationRow::default());
    assert_eq!(defaults.default_access_level(), AccessLevel::Invited);

    let req = ConferenceRequest {
        organizer: ALICE.into(),
        subject: "Budget ünïcode".into(),
        starts_at: Some(2000),
        ends_at: Some(5600),
        attendees: vec![CAROL.into(), "SIP:Bob@litwareinc.com".into(), BOB.into()],
        mailbox_uid: Some("040000008200E00074C5B7101A82E008".into()),
        access_level: None,
    };
    let a = conference::create(fe, "https://pool.litwareinc.com:4443", &req).await.unwrap();
    assert_eq!(a.id.len(), 8);
    assert!(a.id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()), "{}", a.id);
    assert_eq!(a.focus_uri, format!("{ALICE};gruu;opaque=app:conf:focus:id:{}", a.id));
    assert_eq!(a.join_url, format!("https://pool.litwareinc.com:4443/meet/alice/{}", a.id));
    assert!(a.conference_number.len() == 7 && a.conference_number.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(a.attendees, [BOB, CAROL], "normalised, sorted, without duplicates");
    assert_eq!(a.access_level, AccessLevel::Invited);
    assert_eq!(fe.conference(&a.id).await.unwrap().as_ref(), Some(&a), "every field round-trips");
    assert_eq!(fe.conference(&a.id.to_ascii_lowercase()).await.unwrap().as_ref(), Some(&a));
    assert_eq!(fe.conference_by_focus_uri(&a.focus_uri).await.unwrap().as_ref(), Some(&a));
    assert_eq!(
        fe.conference_by_mailbox_uid(ALICE, "040000008200E00074C5B7101A82E008").await.unwrap().as_ref(),
        Some(&a)
    );
    assert_eq!(fe.conference_by_mailbox_uid(BOB, "040000008200E00074C5B7101A82E008").await.unwrap(), None);
    assert_eq!(fe.conference("ZZZZZZZZ").await.unwrap(), None);

    // The configuration applies to the next meeting: public meetings open to the organisation.
    let public = MeetingConfigurationRow {
        admit_anonymous_users_by_default: false,
        assigned_conference_type_by_default: false,
        enable_assigned_conference_type: true,
    };
    fe.put_meeting_configuration(&public).await.unwrap();
    assert_eq!(fe.meeting_configuration().await.unwrap(), public);
    let meet_now = ConferenceRequest {
        subject: String::new(),
        starts_at: None,
        ends_at: None,
        attendees: vec![],
        mailbox_uid: None,
        ..req.clone()
    };
    let b = conference::create(fe, "https://pool.litwareinc.com", &meet_now).await.unwrap();
    assert_eq!(b.access_level, AccessLevel::SameEnterprise);
    assert_ne!((&b.id, &b.conference_number), (&a.id, &a.conference_number));
    let listed = fe.conferences_of(ALICE).await.unwrap();
    assert_eq!(listed, vec![b.clone(), a.clone()], "Meet Now first, then by start");
    assert!(fe.conferences_of(BOB).await.unwrap().is_empty());

    // An update rewrites the schedule and attendees and keeps the names.
    let moved = ConferenceRequest {
        starts_at: Some(9000),
        ends_at: Some(9900),
        attendees: vec![CAROL.into()],
        access_level: Some(AccessLevel::Locked),
        ..req.clone()
    };
    let a2 = conference::update(fe, &a.id, &moved).await.unwrap().unwrap();
    assert_eq!(
        (a2.starts_at, a2.attendees.as_slice(), a2.access_level),
        (Some(9000), &[CAROL.to_owned()][..], AccessLevel::Locked)
    );
    assert_eq!(
        (&a2.focus_uri, &a2.conference_number, a2.created_at),
        (&a.focus_uri, &a.conference_number, a.created_at)
    );
    assert_eq!(fe.conference(&a.id).await.unwrap(), Some(a2.clone()));
    let not_hers = ConferenceRequest { organizer: BOB.into(), ..moved.clone() };
    assert_eq!(conference::update(fe, &a.id, &not_hers).await.unwrap(), None, "only the organizer's");
    assert_eq!(conference::update(fe, "ZZZZZZZZ", &moved).await.unwrap(), None);

    assert_eq!(fe.existing_conference_ids(&[a.id.clone(), "ZZZZZZZZ".into()]).await.unwrap(), vec![a.id.clone()]);
    assert!(fe.delete_conference(&b.id).await.unwrap());
    assert!(!fe.delete_conference(&b.id).await.unwrap());
    assert_eq!(fe.conferences_of(ALICE).await.unwrap(), vec![a2]);
    fe.put_meeting_configuration(&MeetingConfigurationRow::default()).await.unwrap();
}

async fn battery(db: &TestDatabase) {
    let opened = store::open(&db.url).await.expect("open");
    assert_eq!(opened.schema_version().await.unwrap(), 8);
    let fe = FrontendStore::new(opened);
    registrations(&fe).await;
    offline_messages(&fe).await;
    blocks(&fe).await;
    calendar_presence(&fe).await;
    conversation_history(&fe).await;
    contact_lists(&fe).await;
    voicemail(&fe).await;
    conferences(&fe).await;

    // Re-opening migrates nothing twice and keeps the data; the admin path opens the same.
    fe.store().close().await;
    let again = FrontendStore::new(tandem_frontend::admin::open_store_at(&db.url).await.expect("reopen"));
    assert_eq!(again.store().schema_version().await.unwrap(), 8);
    assert_eq!(again.fe_contact_list(CAROL).await.unwrap().len(), 3, "a Front End store list survives a restart");
    assert_eq!(again.spooled_voicemail_count().await.unwrap(), 1, "a spooled recording survives a restart");
    assert_eq!(again.offline_message_count(BOB).await.unwrap(), 2);
    assert_eq!(again.open_conversations().await.unwrap().len(), 1, "an open conversation survives a restart");
    assert_eq!(again.conferences_of(ALICE).await.unwrap().len(), 1, "a conference survives a restart");
}

#[tokio::test]
async fn frontend_store_battery_sqlite() {
    let db = TestDatabase::sqlite();
    battery(&db).await;
}

#[tokio::test]
async fn frontend_store_battery_postgres() {
    let db = TestDatabase::postgres().await.expect("the PostgreSQL test server (see scripts/test.sh)");
    battery(&db).await;
}
