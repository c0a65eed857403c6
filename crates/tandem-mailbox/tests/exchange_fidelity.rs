//! Answers as Exchange gives them to the EWS Managed API (issue 10), through the role's router:
//! Autodiscover's endpoint headers on the unauthenticated probe, date-times in UTC, and the
//! default properties of calendar items, messages and contacts in the schema's order, and
//! SyncFolderItems' ReadFlagChange (on SQLite and PostgreSQL). The
//! client-side proof is tests/interop/test_ews_js.py (ews-javascript-api).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use tandem_config::{MailboxConfig, StoreLocation};
use tandem_directory::{Directory, NewUser};
use tandem_store::testing::TestDatabase;
use tower::ServiceExt as _;

const S: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";

async fn app(dir_db: &TestDatabase, db: &TestDatabase) -> axum::Router {
    let dir = Directory::open(&dir_db.url).await.unwrap();
    dir.add(&NewUser {
        name: "alice".parse().unwrap(),
        display_name: "Alice Anderson".into(),
        sip_uri: "sip:alice@litwareinc.com".parse().unwrap(),
        smtp_address: "alice@litwareinc.com".parse().unwrap(),
        password: "correct horse".into(),
    })
    .await
    .unwrap();
    let config = MailboxConfig {
        ews_push_minute_seconds: tandem_config::DEFAULT_EWS_PUSH_MINUTE_SECONDS,
        ews_max_concurrency: tandem_config::DEFAULT_EWS_MAX_CONCURRENCY,
        retention_sweep_seconds: tandem_config::DEFAULT_RETENTION_SWEEP_SECONDS,
        enabled: true,
        fqdn: "mail.litwareinc.com".parse().unwrap(),
        autodiscover_fqdn: "autodiscover.litwareinc.com".parse().unwrap(),
        https_listen: "127.0.0.1:8443".parse().unwrap(),
        store: match db.url.strip_prefix("sqlite://") {
            Some(path) => StoreLocation::Sqlite(path.into()),
            None => StoreLocation::Postgres(db.url.clone()),
        },
        https_limits: Default::default(),
        ews_limits: Default::default(),
    };
    let store = tandem_mailbox::open_store(&config).await.unwrap();
    tandem_mailbox::routes(&config, store, dir)
}

async fn ews(app: &axum::Router, body: &str) -> String {
    let env = format!(
        r#"<s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}"><s:Header><t:RequestServerVersion Version="Exchange2013"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    );
    let auth = base64::engine::general_purpose::STANDARD.encode("alice@litwareinc.com:correct horse");
    let req = Request::post("/EWS/Exchange.asmx")
        .header(header::AUTHORIZATION, format!("Basic {auth}"))
        .header(header::CONTENT_TYPE, "text/xml")
        .body(Body::from(env))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn item_id(xml: &str) -> String {
    let at = xml.find("<t:ItemId Id=\"").unwrap() + 14;
    xml[at..at + xml[at..].find('"').unwrap()].to_owned()
}

fn get_item(id: &str) -> String {
    format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:GetItem>"#
    )
}

/// Position of `needle` in `hay`, failing with the whole answer when it is missing.
fn at(hay: &str, needle: &str) -> usize {
    hay.find(needle).unwrap_or_else(|| panic!("{needle} not in {hay}"))
}

#[tokio::test]
async fn autodiscover_probe_carries_the_endpoint_headers() {
    let (dir_db, db) = (TestDatabase::sqlite(), TestDatabase::sqlite());
    let app = app(&dir_db, &db).await;
    for path in ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml", "/autodiscover/autodiscover.svc"] {
        let resp = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(resp.headers()["x-soap-enabled"], "True", "{path}");
        assert_eq!(resp.headers()["x-oauth-enabled"], "True", "{path}");
        assert!(resp.headers().get("x-wssecurity-enabled").is_none(), "{path}: no WS-Security endpoint is served");
    }
    let resp = app.clone().oneshot(Request::get("/EWS/Exchange.asmx").body(Body::empty()).unwrap()).await.unwrap();
    assert!(resp.headers().get("x-soap-enabled").is_none(), "EWS answers carry no Autodiscover headers");
}

#[tokio::test]
async fn calendar_items_answer_in_utc_with_exchange_defaults() {
    let (dir_db, db) = (TestDatabase::sqlite(), TestDatabase::sqlite());
    let app = app(&dir_db, &db).await;
    let create = r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:Items><t:CalendarItem><t:Subject>Review</t:Subject><t:Start>2026-12-03T10:00:00.000+00:00</t:Start><t:End>2026-12-03T12:30:00.000+01:00</t:End></t:CalendarItem></m:Items></m:CreateItem>"#;
    let id = item_id(&ews(&app, create).await);
    let got = ews(&app, &get_item(&id)).await;
    assert!(got.contains("<t:Start>2026-12-03T10:00:00Z</t:Start>"), "{got}");
    assert!(got.contains("<t:End>2026-12-03T11:30:00Z</t:End>"), "{got}");
    assert!(!got.contains("+00:00") && !got.contains("+01:00"), "{got}");
    for default in [
        "<t:IsAllDayEvent>false</t:IsAllDayEvent>",
        "<t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus>",
        "<t:IsMeeting>false</t:IsMeeting>",
        "<t:IsRecurring>false</t:IsRecurring>",
        "<t:IsCancelled>false</t:IsCancelled>",
        "<t:CalendarItemType>Single</t:CalendarItemType>",
        "<t:MyResponseType>Organizer</t:MyResponseType>",
        "<t:EmailAddress>alice@litwareinc.com</t:EmailAddress>",
        "<t:Duration>PT1H30M</t:Duration>",
        "<t:StartTimeZone Id=\"UTC\"",
        "<t:Sensitivity>Normal</t:Sensitivity>",
    ] {
        at(&got, default);
    }
    // Schema order: ItemType's elements, then CalendarItemType's.
    let order = [
        "<t:ItemId",
        "<t:Subject>",
        "<t:Sensitivity>",
        "<t:DateTimeCreated>",
        "<t:UID>",
        "<t:Start>",
        "<t:End>",
        "<t:IsAllDayEvent>",
        "<t:Organizer>",
        "<t:Duration>",
        "<t:StartTimeZone",
    ];
    let pos: Vec<usize> = order.iter().map(|n| at(&got, n)).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{order:?} out of order in {got}");

    // UpdateItem takes another offset and answers in UTC too.
    let update = format!(
        r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem><t:Start>2026-12-03T08:00:00-03:00</t:Start></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
    );
    assert!(ews(&app, &update).await.contains("NoError"));
    let got = ews(&app, &get_item(&id)).await;
    assert!(got.contains("<t:Start>2026-12-03T11:00:00Z</t:Start>"), "{got}");
}

#[tokio::test]
async fn messages_and_contacts_carry_exchange_defaults() {
    let (dir_db, db) = (TestDatabase::sqlite(), TestDatabase::sqlite());
    let app = app(&dir_db, &db).await;
    let create = r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:Subject>RE: Plans</t:Subject><t:ToRecipients><t:Mailbox><t:Name>Bob &amp; Brown</t:Name><t:EmailAddress>bob@litwareinc.com</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#;
    let got = ews(&app, &get_item(&item_id(&ews(&app, create).await))).await;
    for default in [
        "<t:Importance>Normal</t:Importance>",
        "<t:Sensitivity>Normal</t:Sensitivity>",
        "<t:IsRead>true</t:IsRead>",
        "<t:IsDraft>true</t:IsDraft>",
        "<t:DisplayTo>Bob &amp; Brown</t:DisplayTo>",
        "<t:ConversationId Id=\"",
        "<t:ConversationTopic>Plans</t:ConversationTopic>",
        "<t:Culture>en-US</t:Culture>",
        "<t:Size>",
        "<t:DateTimeCreated>",
        "<t:InternetMessageId>&lt;",
    ] {
        at(&got, default);
    }
    assert!(at(&got, "<t:ToRecipients>") < at(&got, "<t:IsRead>"), "MessageType order: {got}");
    assert!(at(&got, "<t:InternetMessageId>") < at(&got, "<t:IsRead>"), "MessageType order: {got}");
    assert!(at(&got, "<t:HasAttachments>") < at(&got, "<t:ToRecipients>"), "ItemType first: {got}");

    let create = r#"<m:CreateItem><m:Items><t:Contact><t:GivenName>Dana</t:GivenName><t:Surname>Scully &amp; Co</t:Surname></t:Contact></m:Items></m:CreateItem>"#;
    let got = ews(&app, &get_item(&item_id(&ews(&app, create).await))).await;
    for default in [
        "<t:FileAs>Scully &amp; Co, Dana</t:FileAs>",
        "<t:CompleteName><t:FirstName>Dana</t:FirstName><t:LastName>Scully &amp; Co</t:LastName><t:FullName>Dana Scully &amp; Co</t:FullName></t:CompleteName>",
        "<t:ContactSource>Store</t:ContactSource>",
        "<t:HasPicture>false</t:HasPicture>",
    ] {
        at(&got, default);
    }
    assert!(at(&got, "<t:FileAs>") < at(&got, "<t:GivenName>") && at(&got, "<t:GivenName>") < at(&got, "<t:Surname>"));
}

#[tokio::test]
async fn wall_clock_times_are_read_in_the_items_time_zone_and_the_zone_is_kept() {
    let (dir_db, db) = (TestDatabase::sqlite(), TestDatabase::sqlite());
    let app = app(&dir_db, &db).await;
    let zone = r#"<t:StartTimeZone Id="Pacific Standard Time" Name="(UTC-08:00) Pacific Time (US &amp; Canada)"><t:Periods><t:Period Bias="P0DT8H0M0.0S" Name="Standard" Id="Std"/><t:Period Bias="P0DT7H0M0.0S" Name="Daylight" Id="Dlt"/></t:Periods><t:TransitionsGroups><t:TransitionsGroup Id="0"><t:RecurringDayTransition><t:To Kind="Period">Dlt</t:To><t:TimeOffset>P0DT2H0M0.0S</t:TimeOffset><t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek><t:Occurrence>2</t:Occurrence></t:RecurringDayTransition><t:RecurringDayTransition><t:To Kind="Period">Std</t:To><t:TimeOffset>P0DT2H0M0.0S</t:TimeOffset><t:Month>11</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek><t:Occurrence>1</t:Occurrence></t:RecurringDayTransition></t:TransitionsGroup></t:TransitionsGroups><t:Transitions><t:Transition><t:To Kind="Group">0</t:To></t:Transition></t:Transitions></t:StartTimeZone>"#;
    let create = format!(
        r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:Items><t:CalendarItem><t:Subject>Summer call</t:Subject><t:Start>2026-07-01T09:00:00</t:Start><t:End>2026-07-01T10:00:00</t:End>{zone}</t:CalendarItem></m:Items></m:CreateItem>"#
    );
    let id = item_id(&ews(&app, &create).await);
    let got = ews(&app, &get_item(&id)).await;
    assert!(got.contains("<t:Start>2026-07-01T16:00:00Z</t:Start>"), "daylight time, UTC-7: {got}");
    assert!(got.contains("<t:End>2026-07-01T17:00:00Z</t:End>"), "{got}");
    assert!(got.contains("<t:StartTimeZone Id=\"Pacific Standard Time\""), "kept: {got}");
    assert!(got.contains("<t:EndTimeZone Id=\"Pacific Standard Time\""), "the end follows the start's zone: {got}");
    assert!(got.contains("<t:TimeZone>(UTC-08:00) Pacific Time (US &amp; Canada)</t:TimeZone>"), "{got}");

    // UpdateItem: a wall-clock time is read in the stored zone (standard time in December).
    let update = format!(
        r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="calendar:End"/><t:CalendarItem><t:End>2026-12-03T10:00:00</t:End></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem><t:Start>2026-12-03T09:00:00</t:Start></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
    );
    assert!(ews(&app, &update).await.contains("NoError"));
    let got = ews(&app, &get_item(&id)).await;
    assert!(got.contains("<t:Start>2026-12-03T17:00:00Z</t:Start>"), "standard time, UTC-8: {got}");
    assert!(got.contains("<t:End>2026-12-03T18:00:00Z</t:End>"), "{got}");
    assert!(got.contains("<t:Duration>PT1H</t:Duration>"), "{got}");
}

#[tokio::test]
async fn folders_carry_effective_rights_in_schema_order() {
    let (dir_db, db) = (TestDatabase::sqlite(), TestDatabase::sqlite());
    let app = app(&dir_db, &db).await;
    let get = r#"<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>"#;
    let got = ews(&app, get).await;
    assert!(
        got.contains(
            "<t:EffectiveRights><t:CreateAssociated>true</t:CreateAssociated><t:CreateContents>true</t:CreateContents>"
        ),
        "{got}"
    );
    assert!(at(&got, "<t:ChildFolderCount>") < at(&got, "<t:EffectiveRights>"), "{got}");
    assert!(at(&got, "<t:EffectiveRights>") < at(&got, "<t:UnreadCount>"), "{got}");
    let got = ews(&app, &get.replace("AllProperties", "Default")).await;
    assert!(!got.contains("EffectiveRights"), "Default leaves it out: {got}");
}

/// A read-flag-only UpdateItem is a ReadFlagChange to SyncFolderItems; any other change after
/// the state makes it an Update again; pull notifications still see a ModifiedEvent.
async fn read_flag_changes(db: &TestDatabase) {
    let dir_db = TestDatabase::sqlite();
    let app = app(&dir_db, db).await;
    let create = r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:Subject>Flag me</t:Subject></t:Message></m:Items></m:CreateItem>"#;
    let id = item_id(&ews(&app, create).await);
    let sync = |state: &str| {
        let state = if state.is_empty() { String::new() } else { format!("<m:SyncState>{state}</m:SyncState>") };
        format!(
            r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="drafts"/></m:SyncFolderId>{state}<m:MaxChangesReturned>100</m:MaxChangesReturned></m:SyncFolderItems>"#
        )
    };
    let first = ews(&app, &sync("")).await;
    let at_state = |xml: &str| {
        let a = xml.find("<m:SyncState>").unwrap() + 13;
        xml[a..a + xml[a..].find('<').unwrap()].to_owned()
    };
    let state = at_state(&first);
    let subscribe = r#"<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="drafts"/></t:FolderIds><t:EventTypes><t:EventType>ModifiedEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>"#;
    let sub = ews(&app, subscribe).await;
    let field = |tag: &str| {
        let a = sub.find(&format!("<m:{tag}>")).unwrap() + tag.len() + 4;
        sub[a..a + sub[a..].find('<').unwrap()].to_owned()
    };
    let (sub_id, watermark) = (field("SubscriptionId"), field("Watermark"));
    let set = |field: &str, value: &str| {
        format!(
            r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="{field}"/><t:Message>{value}</t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
        )
    };
    assert!(ews(&app, &set("message:IsRead", "<t:IsRead>false</t:IsRead>")).await.contains("NoError"));
    let got = ews(&app, &sync(&state)).await;
    assert!(got.contains("<t:ReadFlagChange><t:ItemId Id=\""), "{got}");
    assert!(got.contains("<t:IsRead>false</t:IsRead></t:ReadFlagChange>") && !got.contains("<t:Update>"), "{got}");
    let events = ews(
        &app,
        &format!(r#"<m:GetEvents><m:SubscriptionId>{sub_id}</m:SubscriptionId><m:Watermark>{watermark}</m:Watermark></m:GetEvents>"#),
    )
    .await;
    assert!(events.contains("<t:ModifiedEvent>"), "{events}");
    assert!(ews(&app, &set("item:Subject", "<t:Subject>Flagged</t:Subject>")).await.contains("NoError"));
    let got = ews(&app, &sync(&state)).await;
    assert!(got.contains("<t:Update>") && !got.contains("ReadFlagChange"), "{got}");
}

#[tokio::test]
async fn read_flag_changes_sqlite() {
    read_flag_changes(&TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn read_flag_changes_postgres() {
    let db = TestDatabase::postgres().await.expect("the PostgreSQL test server (see scripts/test.sh)");
    read_flag_changes(&db).await;
}
