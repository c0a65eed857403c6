//! Both ways through the protocol crate: what a client builds, the Mailbox's parser
//! (`ops::parse`, `autodiscover::parse`) reads back to the same request; what the Mailbox's side
//! renders, the client's parsers read.
#![allow(clippy::unwrap_used)]

use tandem_ews_proto::autodiscover::{self, get_user_settings};
use tandem_ews_proto::ops::create_item::{Disposition, ItemData};
use tandem_ews_proto::ops::delete_folder::DeleteType;
use tandem_ews_proto::ops::get_events::{Event, UnsubscribeRequest};
use tandem_ews_proto::ops::{self, BuildRequest, Operation};
use tandem_ews_proto::ops::{
    create_item, delete_item, find_item, get_folder, get_item, get_streaming_events, get_user_availability,
    get_user_oof_settings, subscribe,
};
use tandem_ews_proto::render::{self, FolderView, ItemView};
use tandem_ews_proto::reply::{self, MessageError};
use tandem_ews_proto::types::{
    BaseShape, Comparison, Containment, ExtendedField, FolderRef, IndexedPage, ItemRef, Operand, PropertyPath,
    Restriction, Shape, SortKey,
};
use tandem_ews_proto::{ResponseCode, ResponseMessages};
use tandem_xml::soap::Envelope;

/// The envelope as the Mailbox parses it.
fn served(req: &impl BuildRequest) -> Operation {
    let text = req.envelope(ops::CLIENT_VERSION);
    assert!(!text.contains("soap:"), "{text}");
    let doc = tandem_xml::parse(text.as_bytes(), Default::default()).unwrap();
    let parsed = ops::parse(&Envelope::of(&doc).unwrap()).unwrap();
    assert_eq!(parsed.version, "Exchange2013");
    parsed.operation
}

fn keywords() -> ExtendedField {
    ExtendedField {
        distinguished_set: Some("PublicStrings".into()),
        set_id: None,
        tag: None,
        name: Some("Keywords".into()),
        id: None,
        property_type: "StringArray".into(),
    }
}

#[test]
fn create_item_round_trips() {
    let item = ItemData::new("Message")
        .with_item_class("IPM.Note")
        .with_subject("Tom & Jerry <3")
        .with_body("Text", "line one\nline two")
        .with_extended(keywords(), vec!["a".into(), "b".into()])
        .with_recipients("ToRecipients", &["bob@litwareinc.com"])
        .with_is_read(false);
    let req = create_item::Request::save(FolderRef::distinguished("conversationhistory"), vec![item.clone()]);
    let Operation::CreateItem(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed.disposition, Some(Disposition::SaveOnly));
    assert_eq!(parsed.saved_folder, req.saved_folder);
    assert_eq!(parsed.items, vec![Ok(item)]);

    let calendar = ItemData::new("CalendarItem")
        .with_subject("standup")
        .with_time("Start", 1_800_000_000)
        .with_time("End", 1_800_001_800);
    let mut req = create_item::Request::save(FolderRef::distinguished("calendar"), vec![calendar.clone()]);
    req.disposition = None;
    req.send_invitations = Some("SendToNone".into());
    let Operation::CreateItem(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);
}

#[test]
fn item_operations_round_trip() {
    let mut shape = Shape::base(BaseShape::IdOnly);
    shape.additional = vec![
        PropertyPath::Field("item:Subject".into()),
        PropertyPath::Indexed { uri: "contacts:EmailAddress".into(), index: "EmailAddress1".into() },
        PropertyPath::Extended(keywords()),
    ];
    let ids = vec![
        ItemRef { id: "AAM=".into(), change_key: Some("CQ==".into()) },
        ItemRef { id: "AAQ=".into(), change_key: None },
    ];
    let req = get_item::Request::new(shape.clone(), ids.clone());
    let Operation::GetItem(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);

    let req = delete_item::Request::new(DeleteType::HardDelete, ids);
    let Operation::DeleteItem(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);

    let mut req = find_item::Request::new(
        shape,
        vec![FolderRef::Distinguished { name: "inbox".into(), mailbox: Some("alice@litwareinc.com".into()) }],
    );
    req.page = Some(IndexedPage { max: Some(10), offset: 5, from_end: true });
    req.restriction = Some(Restriction::And(vec![
        Restriction::Contains {
            path: PropertyPath::Field("item:Subject".into()),
            value: "a \"b\"".into(),
            mode: Containment::Substring,
            ignore_case: true,
        },
        Restriction::Not(Box::new(Restriction::Compare {
            path: PropertyPath::Field("item:DateTimeReceived".into()),
            op: Comparison::Less,
            value: Operand::Constant("2026-01-01T00:00:00Z".into()),
        })),
        Restriction::Or(vec![
            Restriction::Exists(PropertyPath::Field("item:Categories".into())),
            Restriction::Excludes { path: PropertyPath::Field("item:Flags".into()), mask: 0x1f },
        ]),
    ]));
    req.sort = vec![SortKey { path: PropertyPath::Field("item:DateTimeReceived".into()), ascending: false }];
    req.query = Some("hello".into());
    let Operation::FindItem(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);

    let mut req = find_item::Request::new(Shape::base(BaseShape::Default), vec![FolderRef::distinguished("calendar")]);
    req.calendar = Some(find_item::CalendarView { start: 1_800_000_000, end: 1_800_086_400, max: Some(3) });
    let Operation::FindItem(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);
}

#[test]
fn folder_and_notification_operations_round_trip() {
    let req = get_folder::Request {
        shape: Shape { base: BaseShape::Default, additional: vec![], include_mime: false },
        folders: vec![FolderRef::distinguished("inbox"), FolderRef::Id("AQ==".into())],
    };
    let Operation::GetFolder(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);

    let req = subscribe::Request::streaming(vec![FolderRef::distinguished("inbox")], &["NewMailEvent", "CreatedEvent"]);
    let Operation::Subscribe(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);
    let req = subscribe::Request::streaming(vec![], &["ModifiedEvent"]);
    let Operation::Subscribe(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);
    let mut pull = subscribe::Request::streaming(vec![FolderRef::distinguished("calendar")], &["ModifiedEvent"]);
    pull.streaming = false;
    pull.watermark = Some(42);
    pull.timeout_minutes = 10;
    let Operation::Subscribe(parsed) = served(&pull) else { panic!() };
    assert_eq!(parsed, pull);
    let mut push = pull.clone();
    push.timeout_minutes = 30; // a push subscription has no Timeout: the default comes back
    push.push =
        Some(subscribe::Push { status_frequency_minutes: 5, url: "https://receiver.example/ews?a=1&b=2".into() });
    let Operation::Subscribe(parsed) = served(&push) else { panic!() };
    assert_eq!(parsed, push);

    let req = get_streaming_events::Request { subscriptions: vec!["sub-1".into(), "sub-2".into()], timeout_minutes: 5 };
    let Operation::GetStreamingEvents(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);

    let req = UnsubscribeRequest { subscription: "sub-1".into() };
    let Operation::Unsubscribe(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);
}

#[test]
fn availability_and_oof_round_trip() {
    use get_user_availability::View;
    let req = get_user_availability::Request::new(
        vec!["alice@litwareinc.com".into(), "bob@litwareinc.com".into()],
        1_800_000_000,
        1_800_086_400,
        30,
        View::DetailedMerged,
    );
    let Operation::GetUserAvailability(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);
    let mut west = req.clone();
    west.bias_minutes = 480;
    let Operation::GetUserAvailability(parsed) = served(&west) else { panic!() };
    assert_eq!(parsed, west);

    let req = get_user_oof_settings::Request { address: "alice@litwareinc.com".into() };
    let Operation::GetUserOofSettings(parsed) = served(&req) else { panic!() };
    assert_eq!(parsed, req);
}

#[test]
fn get_user_settings_round_trips() {
    let req = get_user_settings::Request::new("alice@litwareinc.com", &["InternalEwsUrl", "ExternalEwsUrl"]);
    let text = req.envelope(Some("https://autodiscover.litwareinc.com/autodiscover/autodiscover.svc"));
    assert!(!text.contains("soap:"), "{text}");
    let doc = tandem_xml::parse(text.as_bytes(), Default::default()).unwrap();
    let env = Envelope::of(&doc).unwrap();
    let autodiscover::Request::GetUserSettings(parsed) = autodiscover::parse(&env).unwrap() else { panic!() };
    assert_eq!(parsed, req);

    let (_, unknown) = get_user_settings::classify(&parsed.settings);
    let users = vec![
        (
            get_user_settings::UserOutcome::Settings(vec![(
                "InternalEwsUrl".into(),
                "https://mail.litwareinc.com/EWS/Exchange.asmx".to_owned().into(),
            )]),
            vec![get_user_settings::SettingError {
                name: "ExternalEwsUrl".into(),
                code: "SettingIsNotAvailable",
                message: "User setting 'ExternalEwsUrl' is not available.".into(),
            }],
        ),
        (get_user_settings::UserOutcome::InvalidUser("nobody@litwareinc.com".into()), unknown),
    ];
    let answer = autodiscover::envelope("GetUserSettingsResponse", &get_user_settings::render(&users));
    let two = get_user_settings::Request {
        mailboxes: vec!["alice@litwareinc.com".into(), "nobody@litwareinc.com".into()],
        settings: req.settings.clone(),
    };
    let doc = reply::parse(&answer).unwrap();
    let read = get_user_settings::parse_response(&doc, &two).unwrap();
    assert_eq!(read.error_code, "NoError");
    assert_eq!(read.users, users);
    assert_eq!(read.setting("InternalEwsUrl"), Some("https://mail.litwareinc.com/EWS/Exchange.asmx"));
}

fn item_view(subject: &str) -> ItemView {
    ItemView {
        element: "Message",
        id: "AAM=".into(),
        change_key: "CQ==".into(),
        computed: vec![("ParentFolderId", render::id_element("ParentFolderId", "AQ==", "AQ=="))],
        stored: vec![
            ("ItemClass".into(), "<t:ItemClass>IPM.Note</t:ItemClass>".into()),
            ("Subject".into(), format!("<t:Subject>{}</t:Subject>", tandem_xml::escape(subject))),
        ],
        extended: vec![],
    }
}

#[test]
fn rendered_answers_are_read() {
    let shape = Shape::base(BaseShape::Default);
    let item = render::item(&item_view("R&D"), &shape);

    let mut out = ResponseMessages::new("CreateItem");
    out.success(&format!("<m:Items>{}</m:Items>", render::item(&item_view("x"), &Shape::base(BaseShape::IdOnly))));
    let text = render::envelope(&out.finish());
    let doc = reply::parse(&text).unwrap();
    let ids = create_item::parse_response(&doc).unwrap();
    assert_eq!(ids, vec![Ok(vec![ItemRef { id: "AAM=".into(), change_key: Some("CQ==".into()) }])]);

    let mut out = ResponseMessages::new("GetItem");
    out.success(&format!("<m:Items>{item}</m:Items>")).error(ResponseCode::ErrorItemNotFound, "gone", "<m:Items/>");
    let text = render::envelope(&out.finish());
    let doc = reply::parse(&text).unwrap();
    let got = get_item::parse_response(&doc).unwrap();
    let (id, data) = &got[0].as_ref().unwrap()[0];
    assert_eq!(id.id, "AAM=");
    assert_eq!(data.subject.as_deref(), Some("R&D"));
    assert_eq!(data.item_class.as_deref(), Some("IPM.Note"));
    assert!(data.fields.iter().any(|(n, _)| n == "ParentFolderId"));
    assert_eq!(got[1], Err(MessageError { code: "ErrorItemNotFound".into(), text: "gone".into() }));

    let mut out = ResponseMessages::new("FindItem");
    out.success(&format!(
        "<m:RootFolder IndexedPagingOffset=\"1\" TotalItemsInView=\"7\" IncludesLastItemInRange=\"false\"><t:Items>{item}</t:Items></m:RootFolder>"
    ));
    let text = render::envelope(&out.finish());
    let doc = reply::parse(&text).unwrap();
    let found = find_item::parse_response(&doc).unwrap().remove(0).unwrap();
    assert_eq!((found.total, found.includes_last, found.items.len()), (7, false, 1));

    let mut out = ResponseMessages::new("DeleteItem");
    out.success("").error(ResponseCode::ErrorAccessDenied, "not yours", "");
    let text = render::envelope(&out.finish());
    let doc = reply::parse(&text).unwrap();
    let deleted = delete_item::parse_response(&doc).unwrap();
    assert!(deleted[0].is_ok() && deleted[1].as_ref().unwrap_err().code == "ErrorAccessDenied");

    let folder = FolderView {
        id: "AQ==".into(),
        change_key: "Ag==".into(),
        parent: Some(("AA==".into(), "AA==".into())),
        class: "IPF.Note".into(),
        display_name: "Inbox".into(),
        total: 3,
        unread: 2,
        child_count: 0,
        extended: vec![(keywords(), vec!["k".into()])],
    };
    let mut out = ResponseMessages::new("GetFolder");
    out.success(&format!("<m:Folders>{}</m:Folders>", render::folder(&folder, &Shape::base(BaseShape::AllProperties))));
    let text = render::envelope(&out.finish());
    let doc = reply::parse(&text).unwrap();
    assert_eq!(get_folder::parse_response(&doc).unwrap(), vec![Ok(folder)]);
}

#[test]
fn rendered_notifications_availability_and_oof_are_read() {
    let mut out = ResponseMessages::new("Subscribe");
    out.success("<m:SubscriptionId>sub-1</m:SubscriptionId><m:Watermark>VFMxOjQy</m:Watermark>");
    let text = render::envelope(&out.finish());
    let doc = reply::parse(&text).unwrap();
    let sub = subscribe::parse_response(&doc).unwrap().remove(0).unwrap();
    assert_eq!((sub.id.as_str(), sub.watermark.as_deref()), ("sub-1", Some("VFMxOjQy")));

    let event = Event {
        kind: "CreatedEvent",
        watermark: 7,
        at: 1_800_000_000,
        folder_object: false,
        id: ("AAM=".into(), "CQ==".into()),
        parent: ("AQ==".into(), "AQ==".into()),
        old_parent: None,
    };
    let stream = format!(
        "{}{}",
        get_streaming_events::envelope("OK", &[("sub-1".into(), 6, vec![event], 7)]),
        get_streaming_events::envelope("Closed", &[])
    );
    // The stream arrives in arbitrary chunks: envelopes are split off as they complete.
    let (first, rest) = stream.as_bytes().split_at(stream.len() / 2 + 3);
    let mut buf = first.to_vec();
    let mut envelopes = get_streaming_events::take_envelopes(&mut buf);
    buf.extend_from_slice(rest);
    envelopes.extend(get_streaming_events::take_envelopes(&mut buf));
    assert!(buf.is_empty() && envelopes.len() == 2, "{envelopes:?}");
    let doc = reply::parse(&envelopes[0]).unwrap();
    let batch = get_streaming_events::parse_response(&doc).unwrap().unwrap();
    assert_eq!(batch.status, "OK");
    let n = &batch.notifications[0];
    assert_eq!((n.subscription.as_str(), n.events.len()), ("sub-1", 1));
    let e = &n.events[0];
    assert_eq!((e.kind.as_str(), e.at, e.folder_object), ("CreatedEvent", Some(1_800_000_000), false));
    assert_eq!(e.id, ("AAM=".to_owned(), "CQ==".to_owned()));
    let doc = reply::parse(&envelopes[1]).unwrap();
    assert_eq!(get_streaming_events::parse_response(&doc).unwrap().unwrap().status, "Closed");
    let text = get_streaming_events::error_envelope(ResponseCode::ErrorSubscriptionNotFound, "no such");
    let doc = reply::parse(&text).unwrap();
    assert_eq!(get_streaming_events::parse_response(&doc).unwrap().unwrap_err().code, "ErrorSubscriptionNotFound");
    assert!(get_streaming_events::refused_subscriptions(&doc).unwrap().is_empty());
    // Refused ids, per code: a client learns which of its subscriptions to make again.
    let text = get_streaming_events::refused_envelope(&[
        (ResponseCode::ErrorSubscriptionAccessDenied, "not yours".into(), vec!["a".into(), "b".into()]),
        (ResponseCode::ErrorSubscriptionNotFound, "gone".into(), vec!["c".into()]),
    ]);
    let doc = reply::parse(&text).unwrap();
    assert_eq!(get_streaming_events::parse_response(&doc).unwrap().unwrap_err().code, "ErrorSubscriptionAccessDenied");
    let refused = get_streaming_events::refused_subscriptions(&doc).unwrap();
    let want = [
        ("a", "ErrorSubscriptionAccessDenied"),
        ("b", "ErrorSubscriptionAccessDenied"),
        ("c", "ErrorSubscriptionNotFound"),
    ];
    assert_eq!(refused, want.map(|(i, c)| (i.to_owned(), c.to_owned())));

    let mut out = ResponseMessages::new("Unsubscribe");
    out.success("");
    let text = render::envelope(&out.finish());
    let doc = reply::parse(&text).unwrap();
    assert!(ops::get_events::parse_unsubscribe_response(&doc).unwrap().is_ok());

    use get_user_availability::{Event as Busy, View};
    let req =
        get_user_availability::Request::new(vec!["alice@litwareinc.com".into()], 0, 4 * 1800, 30, View::DetailedMerged);
    let busy = Busy {
        start: 1800,
        end: 3600,
        busy_type: "Busy".into(),
        details: Some(("id".into(), "standup".into(), "room".into())),
        recurring: true,
    };
    let body = format!(
        "<m:GetUserAvailabilityResponse><m:FreeBusyResponseArray>{}{}</m:FreeBusyResponseArray></m:GetUserAvailabilityResponse>",
        get_user_availability::render_view(&req, std::slice::from_ref(&busy), &Default::default()),
        get_user_availability::render_error("ErrorMailRecipientNotFound", "unknown")
    );
    let text = render::envelope(&body);
    let doc = reply::parse(&text).unwrap();
    let views = get_user_availability::parse_response(&doc, 0).unwrap();
    let fb = views[0].as_ref().unwrap();
    assert_eq!((fb.view, fb.merged.as_deref()), (View::DetailedMerged, Some("0200")));
    assert_eq!(fb.events, vec![busy]);
    assert_eq!(fb.working_hours, Some(tandem_ews_proto::working_hours::WorkingHours::default()));
    assert_eq!(views[1].as_ref().unwrap_err().code, "ErrorMailRecipientNotFound");

    let settings = "<t:OofState>Scheduled</t:OofState><t:ExternalAudience>Known</t:ExternalAudience><t:Duration><t:StartTime>2026-01-01T00:00:00Z</t:StartTime><t:EndTime>2026-01-02T00:00:00Z</t:EndTime></t:Duration><t:InternalReply><t:Message>away &amp; back</t:Message></t:InternalReply><t:ExternalReply><t:Message/></t:ExternalReply>";
    let text = render::envelope(&get_user_oof_settings::render(settings));
    let doc = reply::parse(&text).unwrap();
    let oof = get_user_oof_settings::parse_response(&doc).unwrap().unwrap();
    assert_eq!((oof.state.as_str(), oof.external_audience.as_str()), ("Scheduled", "Known"));
    assert_eq!(oof.duration, Some((1_767_225_600, 1_767_312_000)));
    assert_eq!((oof.internal_reply.as_str(), oof.allow_external.as_str()), ("away & back", "All"));
    let text = render::envelope(&get_user_oof_settings::render(get_user_oof_settings::DEFAULT_SETTINGS));
    let doc = reply::parse(&text).unwrap();
    assert_eq!(get_user_oof_settings::parse_response(&doc).unwrap().unwrap().state, "Disabled");
    let text = render::envelope(&get_user_oof_settings::render_error("ErrorAccessDenied", "no"));
    let doc = reply::parse(&text).unwrap();
    assert_eq!(get_user_oof_settings::parse_response(&doc).unwrap().unwrap_err().code, "ErrorAccessDenied");
}
