//! One user's contact-list watch: the Unified Contact Store in the mailbox, read through EWS
//! (GetImItemList acting as the user with S2S tokens) and kept current by a streaming
//! subscription on the two folders that hold it (Quick Contacts and IM Contacts List), read over
//! the connections the calendar watches share ([`super::hub`]). Each change in the mailbox (an
//! EWS client adding or deleting a contact, an Im* operation) re-reads the list and hands it to
//! the SIP presence ([`crate::sip::presence`]), which sends the list's subscribers a full-state
//! NOTIFY when it differs. A failure keeps what subscribers were sent and starts over after a
//! backoff of 1 s doubling to 60 s. A list that lives in the Front End store (see [`crate::ucs`])
//! is served from there, and moved into the mailbox first when the user's policy allows it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tandem_ews_client::Mailbox;
use tandem_ews_proto::ops::im_items::ImItemList;
use tandem_ews_proto::ops::subscribe;
use tandem_ews_proto::types::FolderRef;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::hub::Heard;
use crate::exchange_connector::{ConnectorError, Hop, at};
use crate::sip::presence::ListEntry;
use crate::store::{FeGroup, ListLocation};

const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const EVENT_TYPES: &[&str] = &["CreatedEvent", "ModifiedEvent", "DeletedEvent", "MovedEvent", "CopiedEvent"];
/// The folders of the Unified Contact Store.
const FOLDERS: &[&str] = &["quickcontacts", "imcontactlist"];

/// The group whose members the owner blocks: its contacts are on the list (the owner sees their
/// presence) but are told the owner is offline (the Skype for Business client's "Blocked
/// Contacts" privacy relationship, kept in the mailbox as a group of that name).
pub const BLOCKED_GROUP: &str = "Blocked Contacts";

/// A persona's SIP address, lower-cased (`None` for `tel:` and other contacts without presence).
fn sip_address(p: &tandem_ews_proto::ops::im_items::Persona) -> Option<String> {
    let im = p.im_address.as_deref()?;
    let rest = im.get(..4).filter(|s| s.eq_ignore_ascii_case("sip:")).map(|_| &im[4..])?;
    Some(format!("sip:{}", rest.to_ascii_lowercase()))
}

/// The SIP contacts of a list, in the order its groups list them, each once (`tel:` contacts
/// have no presence and are left out).
pub(crate) fn entries(list: &ImItemList) -> Vec<ListEntry> {
    let mut out: Vec<ListEntry> = Vec::new();
    for g in &list.groups {
        for p in list.members_of(g) {
            let Some(uri) = sip_address(p) else { continue };
            if !out.iter().any(|(u, _)| *u == uri) {
                out.push((uri, p.display_name.clone()));
            }
        }
    }
    out
}

/// The SIP addresses in the list's blocked group ([`BLOCKED_GROUP`], any case).
pub(crate) fn blocked(list: &ImItemList) -> HashSet<String> {
    list.groups
        .iter()
        .filter(|g| g.display_name.trim().eq_ignore_ascii_case(BLOCKED_GROUP))
        .flat_map(|g| list.members_of(g))
        .filter_map(sip_address)
        .collect()
}

/// What one step of a watch ended with.
enum Step {
    Stopped,
    /// Look again where the list lives (the manager poked the watch).
    Recheck,
    /// The mailbox forgot the subscription: subscribe again after the backoff.
    Resubscribe,
    Failed(String),
}

/// Runs the watch of one owner's list until `stop`: from the Front End store while the list
/// lives there (moving it into the mailbox first when a sign-in may, see [`crate::ucs`]), else
/// from the mailbox.
pub(super) async fn run(
    shared: Arc<Shared>,
    aor: String,
    smtp: String,
    mut recheck: mpsc::Receiver<()>,
    stop: CancellationToken,
) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let step = match placed(&shared, &aor, &smtp).await {
            Ok(ListLocation::FrontEnd) => front_end(&shared, &aor, &mut recheck, &stop).await,
            Ok(ListLocation::Mailbox) => round(&shared, &aor, &smtp, &mut recheck, &stop, &mut backoff).await,
            Err(e) => {
                // Until the list is in the mailbox, subscribers see the Front End store's.
                let _ = show_front_end(&shared, &aor).await;
                Step::Failed(format!("moving the list into the mailbox: {e}"))
            }
        };
        match step {
            Step::Stopped => break,
            Step::Recheck => continue,
            Step::Resubscribe => {}
            Step::Failed(e) => {
                metrics::counter!("tandem_contact_list_failures_total").increment(1);
                tracing::warn!(user = %aor, error = %e, "contact list: the watch failed; retrying");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = recheck.recv() => {}
            _ = tokio::time::sleep(super::jittered(backoff)) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    shared.core.presence.drop_contact_list(&aor);
}

/// Where the owner's list lives now, after moving it into the mailbox when that is due.
async fn placed(shared: &Shared, aor: &str, smtp: &str) -> Result<ListLocation, crate::ucs::UcsError> {
    // The store, not the manager's view (read once a second): a policy set or a rollback made
    // a moment ago counts, so a list is never moved against a policy the view has not read yet.
    let allowed = crate::ucs::ucs_allowed(&shared.fe.user_services_policies().await?, aor);
    let state = match shared.fe.contact_list_state(aor).await? {
        Some(s) => Some(s),
        // The first use of this user's list: where it lives now is where it stays until a
        // migration or a rollback moves it (a policy change alone moves nothing).
        None => Some(shared.fe.pin_contact_list_location(aor, crate::ucs::location(None, allowed)).await?),
    };
    if crate::ucs::migration_due(state.as_ref(), allowed, crate::ucs::now()) {
        let _slot = shared.ews_slot().await;
        crate::ucs::migrate(&shared.fe, &shared.connector, aor, smtp).await?;
        return Ok(ListLocation::Mailbox);
    }
    Ok(crate::ucs::location(state.as_ref(), allowed))
}

/// Gives the SIP presence the owner's list from the Front End store.
async fn show_front_end(shared: &Shared, aor: &str) -> Result<(), crate::store::DataError> {
    let groups = shared.fe.fe_contact_list(aor).await?;
    let (entries, blocked) = front_end_entries(&groups);
    metrics::histogram!("tandem_contact_list_size").record(entries.len() as f64);
    shared.core.presence.set_contact_list(&shared.core, aor, entries, blocked);
    Ok(())
}

/// The list entries and blocked addresses of a Front End store list, as [`entries`] and
/// [`blocked`] give them for a mailbox list.
pub(crate) fn front_end_entries(groups: &[FeGroup]) -> (Vec<ListEntry>, HashSet<String>) {
    let mut out: Vec<ListEntry> = Vec::new();
    let mut blocked = HashSet::new();
    for g in groups {
        let is_blocked = g.name.trim().eq_ignore_ascii_case(BLOCKED_GROUP);
        for c in &g.contacts {
            let uri = crate::ucs::normalize(&c.uri);
            if !uri.starts_with("sip:") {
                continue;
            }
            if is_blocked {
                blocked.insert(uri.clone());
            }
            if !out.iter().any(|(u, _)| *u == uri) {
                out.push((uri, c.display_name.clone().unwrap_or_default()));
            }
        }
    }
    (out, blocked)
}

/// Serves the list from the Front End store until stopped or poked (an edit there, a move).
async fn front_end(shared: &Shared, aor: &str, recheck: &mut mpsc::Receiver<()>, stop: &CancellationToken) -> Step {
    if let Err(e) = show_front_end(shared, aor).await {
        return Step::Failed(e.to_string());
    }
    tokio::select! {
        _ = stop.cancelled() => Step::Stopped,
        _ = recheck.recv() => Step::Recheck,
    }
}

/// One subscription's life.
async fn round(
    shared: &Shared,
    aor: &str,
    smtp: &str,
    recheck: &mut mpsc::Receiver<()>,
    stop: &CancellationToken,
    backoff: &mut Duration,
) -> Step {
    let client = shared.connector.client();
    let slot = shared.ews_slot().await;
    let mailbox = match shared.connector.mailbox(smtp).await {
        Ok(m) => m,
        Err(e) => return Step::Failed(e.to_string()),
    };
    drop(slot);
    let folders = FOLDERS.iter().map(|f| FolderRef::distinguished(f)).collect();
    let slot = shared.ews_slot().await;
    let sub = match client.subscribe(&mailbox, &subscribe::Request::streaming(folders, EVENT_TYPES)).await {
        Ok(s) => s,
        Err(e) => return Step::Failed(at(Hop::Ews)(e).to_string()),
    };
    drop(slot);
    let (tx, mut heard) = mpsc::channel(1);
    shared.hub.add(&sub.id, &mailbox, tx);
    let result = follow(shared, aor, &mailbox, &mut heard, recheck, stop, backoff).await;
    shared.hub.remove(&sub.id);
    if matches!(result, Step::Stopped | Step::Recheck) {
        let _ = client.unsubscribe(&mailbox, &sub.id).await;
    }
    result
}

async fn follow(
    shared: &Shared,
    aor: &str,
    mailbox: &Mailbox,
    heard: &mut mpsc::Receiver<Heard>,
    recheck: &mut mpsc::Receiver<()>,
    stop: &CancellationToken,
    backoff: &mut Duration,
) -> Step {
    // Subscribed before this read: a change after it is in the subscription's events.
    if let Err(e) = read(shared, aor, mailbox).await {
        return Step::Failed(e.to_string());
    }
    *backoff = BACKOFF_FIRST;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Step::Stopped,
            _ = recheck.recv() => return Step::Recheck,
            h = heard.recv() => match h {
                Some(Heard::Changed) => {
                    metrics::counter!("tandem_contact_list_changes_total").increment(1);
                    if let Err(e) = read(shared, aor, mailbox).await {
                        return Step::Failed(e.to_string());
                    }
                }
                Some(Heard::Lost { gone: true, .. }) | None => return Step::Resubscribe,
                Some(Heard::Lost { error, .. }) => return Step::Failed(error.to_string()),
            }
        }
    }
}

async fn read(shared: &Shared, aor: &str, mailbox: &Mailbox) -> Result<(), ConnectorError> {
    let _slot = shared.ews_slot().await;
    let list = shared.connector.client().get_im_item_list(mailbox).await.map_err(at(Hop::Ews))?;
    let entries = entries(&list);
    metrics::histogram!("tandem_contact_list_size").record(entries.len() as f64);
    shared.core.presence.set_contact_list(&shared.core, aor, entries, blocked(&list));
    Ok(())
}

#[cfg(test)]
mod tests {
    use tandem_ews_proto::ops::im_items::{ImGroup, ImItemList, Persona};
    use tandem_ews_proto::types::ItemRef;

    use super::{blocked, entries};

    fn id(i: &str) -> ItemRef {
        ItemRef { id: i.into(), change_key: None }
    }

    fn persona(i: &str, name: &str, im: Option<&str>) -> Persona {
        Persona {
            id: i.into(),
            created: 0,
            display_name: name.into(),
            given_name: String::new(),
            surname: String::new(),
            email: None,
            im_address: im.map(str::to_owned),
            source: id(i),
            folder: id("F"),
            quick_contact: true,
        }
    }

    fn group(name: &str, members: &[&str]) -> ImGroup {
        ImGroup {
            display_name: name.into(),
            group_type: String::new(),
            id: id(name),
            members: members.iter().map(|m| id(m)).collect(),
            smtp_address: None,
        }
    }

    #[test]
    fn list_entries_follow_the_groups_once_each_and_skip_phone_numbers() {
        let list = ImItemList {
            groups: vec![
                group("Other Contacts", &["c", "t"]),
                group("Favorites", &["b", "c"]),
                group("Empty", &["gone"]),
            ],
            personas: vec![
                persona("b", "Bob", Some("SIP:Bob@Litwareinc.com")),
                persona("c", "Carol", Some("sip:carol@litwareinc.com")),
                persona("t", "+1 425", Some("tel:+1425")),
            ],
        };
        assert_eq!(
            entries(&list),
            [
                ("sip:carol@litwareinc.com".to_owned(), "Carol".to_owned()),
                ("sip:bob@litwareinc.com".to_owned(), "Bob".to_owned())
            ]
        );
        assert!(blocked(&list).is_empty());
    }

    #[test]
    fn the_blocked_group_names_the_blocked_sip_contacts() {
        let list = ImItemList {
            groups: vec![
                group("Other Contacts", &["b"]),
                group("blocked contacts", &["c", "t"]),
                group("Blocked", &["b"]),
            ],
            personas: vec![
                persona("b", "Bob", Some("sip:bob@litwareinc.com")),
                persona("c", "Carol", Some("SIP:Carol@litwareinc.com")),
                persona("t", "+1 425", Some("tel:+1425")),
            ],
        };
        assert_eq!(blocked(&list), ["sip:carol@litwareinc.com".to_owned()].into_iter().collect());
        assert_eq!(entries(&list).len(), 2, "blocked contacts stay on the list");
    }
}
