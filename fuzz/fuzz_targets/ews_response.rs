//! EWS answers as the Front End's EWS client reads them (tandem-ews-client: the Exchange
//! connector, calendar presence, Autodiscover): any bytes give the operation's result or a
//! `ReplyError`, never a panic; time zone definitions in answers and in stored items parse or are
//! refused, and a parsed zone converts any wall-clock time without overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_ews_proto::autodiscover::get_user_settings;
use tandem_ews_proto::ops::{
    create_item, delete_item, find_item, get_attachment, get_folder, get_item, get_streaming_events,
    get_user_availability, get_user_oof_settings, subscribe,
};
use tandem_ews_proto::timezone::{self, Zone};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = timezone::parse_duration(text);
    let _ = timezone::has_offset(text);
    if let Some(zone) = Zone::from_stored(text) {
        convert(&zone);
    }
    let Ok(doc) = tandem_ews_proto::reply::parse(text) else { return };
    let _ = tandem_ews_proto::reply::body(&doc);
    let _ = create_item::parse_response(&doc);
    let _ = delete_item::parse_response(&doc);
    let _ = find_item::parse_response(&doc);
    let _ = get_folder::parse_response(&doc);
    let _ = get_item::parse_response(&doc);
    let _ = get_attachment::parse_response(&doc);
    let _ = get_streaming_events::parse_response(&doc);
    let _ = get_user_availability::parse_response(&doc, 0);
    let _ = get_user_availability::parse_response(&doc, -480);
    let _ = get_user_oof_settings::parse_response(&doc);
    let _ = subscribe::parse_response(&doc);
    let request = get_user_settings::Request {
        mailboxes: vec!["alice@litwareinc.com".into(), "bob@litwareinc.com".into()],
        settings: vec!["ExternalEwsUrl".into(), "InternalEwsUrl".into(), "UserDisplayName".into()],
    };
    let _ = get_user_settings::parse_response(&doc, &request);
    for node in doc.descendants().filter(|n| n.is_element()) {
        if let Some(zone) = Zone::parse(node) {
            convert(&zone);
        }
    }
});

fn convert(zone: &Zone) {
    // Year 1 to 9999: the range of xs:dateTime values the parsers accept.
    for local in [-62_135_596_800, -1, 0, 1_735_689_600, 253_402_300_799] {
        let _ = zone.to_utc(local);
    }
}
