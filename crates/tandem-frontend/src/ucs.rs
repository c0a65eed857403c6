//! Where a user's contact list lives, and moving it, as Skype for Business Server does with the
//! Unified Contact Store: a list kept in the Front End's store (from before UCS, while the
//! user's services policy has UcsAllowed false, or after a rollback) is moved into the mailbox at
//! the user's next sign-in once the policy allows it; `tandem cs invoke-ucs-rollback` moves it
//! back and keeps it out of the mailbox for seven days.
//!
//! A migration only adds: each group missing from the mailbox is made (AddImGroup), each contact
//! missing from a group is put there (AddNewImContactToGroup, AddImContactToGroup), then the
//! mailbox is told the migration completed (SetImListMigrationCompleted) and the Front End store
//! records the list as living in the mailbox, dropping its own copy in the same transaction. A
//! migration stopped halfway (a crash, the mailbox going away) leaves the Front End store as it
//! was, and the next sign-in runs it again over what the mailbox already holds: one copy of
//! each contact in the end.
//!
//! Edits to a mailbox list are made against the list read once ([`MailboxList`]), kept current
//! from each operation's answer, with no re-read in between; contacts new to the list that go to
//! Other Contacts are made by one CreateItem ([`MailboxList::create_other_contacts`]).

use std::time::Duration;

use tandem_ews_client::{EwsClient, EwsClientError, Mailbox};
use tandem_ews_proto::ops::create_item::{self, ItemData};
use tandem_ews_proto::ops::im_items::{ImGroup, ImItemList, Persona};
use tandem_ews_proto::ops::{add_im_contact_to_group, add_new_im_contact_to_group, remove_im_contact_from_group};
use tandem_ews_proto::types::FolderRef;

use crate::exchange_connector::{ConnectorError, ExchangeConnector, Hop, at};
use crate::store::{
    ContactListState, DataError, FeContact, FeGroup, FrontendStore, GLOBAL_POLICY, ListLocation, UserServicesPolicyRow,
};

/// How long a rolled-back list stays out of the mailbox (Invoke-CsUcsRollback's seven days).
pub const ROLLBACK_HOLD: Duration = Duration::from_secs(7 * 24 * 3600);

/// The environment variable that moves the clock the seven-day rule reads by that many seconds
/// (positive: later), so tests can see the hold end without waiting a week.
pub const CLOCK_OFFSET_ENV: &str = "TANDEM_UCS_CLOCK_OFFSET_SECS";

/// The most contacts a list holds in either store (the mailbox's UCS limit).
pub const MAX_CONTACTS: usize = 1000;

/// The clock of the seven-day rule: Unix seconds, moved by [`CLOCK_OFFSET_ENV`].
pub fn now() -> i64 {
    tandem_store::now_unix().saturating_add(offset(std::env::var(CLOCK_OFFSET_ENV).ok().as_deref()))
}

/// The clock offset a [`CLOCK_OFFSET_ENV`] value says (0 when unset or not a number).
fn offset(value: Option<&str>) -> i64 {
    value.and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0)
}

/// Why moving a list failed.
#[derive(Debug, thiserror::Error)]
pub enum UcsError {
    #[error(transparent)]
    Store(#[from] DataError),
    #[error(transparent)]
    Exchange(#[from] ConnectorError),
}

/// UcsAllowed for `aor`: their own policy instance, else the global one, else true.
pub fn ucs_allowed(policies: &[UserServicesPolicyRow], aor: &str) -> bool {
    let find = |id: &str| policies.iter().find(|p| p.identity.eq_ignore_ascii_case(id)).and_then(|p| p.ucs_allowed);
    find(aor).or_else(|| find(GLOBAL_POLICY)).unwrap_or(true)
}

/// Where `aor`'s list lives: as recorded, else in the mailbox when UCS is allowed, else in the
/// Front End store (empty until something is put there).
pub fn location(state: Option<&ContactListState>, allowed: bool) -> ListLocation {
    match state {
        Some(s) => s.location,
        None if allowed => ListLocation::Mailbox,
        None => ListLocation::FrontEnd,
    }
}

/// Whether a list recorded as `state` is to be moved into the mailbox at a sign-in at `now`.
pub fn migration_due(state: Option<&ContactListState>, allowed: bool, now: i64) -> bool {
    state.is_some_and(|s| s.location == ListLocation::FrontEnd && allowed && now >= s.migrate_after)
}

/// The contact's SIP address as lists compare them (lower case, `sip:` prefix).
pub fn normalize(uri: &str) -> String {
    let u = uri.trim();
    match u.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("sip:") => format!("sip:{}", u[4..].to_ascii_lowercase()),
        _ => u.to_ascii_lowercase(),
    }
}

/// The groups of a mailbox list as the Front End store keeps them (SIP contacts only: the
/// Front End store never held phone-number contacts).
pub fn groups_of(list: &ImItemList) -> Vec<FeGroup> {
    list.groups
        .iter()
        .map(|g| FeGroup {
            name: g.display_name.clone(),
            contacts: list
                .members_of(g)
                .into_iter()
                .filter_map(|p| {
                    let im = p.im_address.as_deref()?;
                    im.get(..4).filter(|s| s.eq_ignore_ascii_case("sip:"))?;
                    Some(FeContact {
                        uri: normalize(im),
                        display_name: Some(p.display_name.clone()).filter(|d| !d.trim().is_empty()),
                    })
                })
                .collect(),
        })
        .collect()
}

/// Every (group, contact) pair of a list, normalized, for comparing two lists.
pub fn pairs(groups: &[FeGroup]) -> std::collections::BTreeSet<(String, String)> {
    groups.iter().flat_map(|g| g.contacts.iter().map(|c| (g.name.clone(), normalize(&c.uri)))).collect()
}

/// One user's mailbox list, read once and kept current from each edit's answer.
#[derive(Debug)]
pub struct MailboxList<'a> {
    client: &'a EwsClient,
    mailbox: &'a Mailbox,
    pub list: ImItemList,
}

impl<'a> MailboxList<'a> {
    /// Reads the list (GetImItemList).
    pub async fn read(client: &'a EwsClient, mailbox: &'a Mailbox) -> Result<MailboxList<'a>, EwsClientError> {
        let list = client.get_im_item_list(mailbox).await?;
        Ok(MailboxList { client, mailbox, list })
    }

    /// The persona with SIP address `uri`.
    pub fn persona(&self, uri: &str) -> Option<&Persona> {
        persona(&self.list, uri)
    }

    /// The group named `name`, made (AddImGroup) when the list has none.
    pub async fn group(&mut self, name: &str) -> Result<ImGroup, EwsClientError> {
        if let Some(g) = self.list.groups.iter().find(|g| g.display_name == name) {
            return Ok(g.clone());
        }
        let g = self.client.add_im_group(self.mailbox, name).await?;
        self.list.groups.push(g.clone());
        Ok(g)
    }

    /// Puts `uri` in the group named `name` (made when missing); true when the contact is new
    /// to the whole list.
    pub async fn add(&mut self, name: &str, uri: &str, display_name: Option<&str>) -> Result<bool, EwsClientError> {
        let group = self.group(name).await?;
        let existing = self.persona(uri).map(|p| p.source.clone());
        let member = match existing {
            Some(id) if group.members.iter().any(|m| m.id == id.id) => return Ok(false),
            Some(id) => {
                let req = add_im_contact_to_group::Request { contact_id: id.clone(), group_id: Some(group.id.clone()) };
                self.client.add_im_contact_to_group(self.mailbox, &req).await?;
                (id, false)
            }
            None => {
                let req = add_new_im_contact_to_group::Request {
                    im_address: uri.to_owned(),
                    display_name: display_name.map(str::to_owned),
                    group_id: Some(group.id.clone()),
                };
                let p = self.client.add_new_im_contact_to_group(self.mailbox, &req).await?;
                let id = p.source.clone();
                // An address the list had under another spelling comes back as that persona.
                let new = !self.list.personas.iter().any(|q| q.source.id == id.id);
                if new {
                    self.list.personas.push(p);
                }
                (id, new)
            }
        };
        if let Some(g) = self.list.groups.iter_mut().find(|g| g.id.id == group.id.id)
            && !g.members.iter().any(|m| m.id == member.0.id)
        {
            g.members.push(member.0);
        }
        Ok(member.1)
    }

    /// Makes contacts new to the list with one CreateItem of Contact items in Quick Contacts,
    /// as the mailbox's AddNewImContactToGroup makes each (DisplayName, EmailAddress1,
    /// ImAddress1): a contact no group names is in Other Contacts, so this is the bulk path of a
    /// document that puts many new contacts there. Each is (SIP address, display name, e-mail
    /// address), checked by the caller (users of the directory, room under the 1,000 cap); the
    /// list is read again afterwards.
    pub async fn create_other_contacts(&mut self, new: &[(String, String, String)]) -> Result<(), EwsClientError> {
        if new.is_empty() {
            return Ok(());
        }
        let esc = tandem_xml::escape;
        let items = new
            .iter()
            .map(|(im, name, email)| {
                Ok(ItemData {
                    element: "Contact".into(),
                    fields: vec![
                        ("DisplayName".into(), format!("<t:DisplayName>{}</t:DisplayName>", esc(name))),
                        (
                            "EmailAddresses".into(),
                            format!(
                                "<t:EmailAddresses><t:Entry Key=\"EmailAddress1\">{}</t:Entry></t:EmailAddresses>",
                                esc(email)
                            ),
                        ),
                        (
                            "ImAddresses".into(),
                            format!("<t:ImAddresses><t:Entry Key=\"ImAddress1\">{}</t:Entry></t:ImAddresses>", esc(im)),
                        ),
                    ],
                    subject: Some(name.clone()),
                    ..ItemData::default()
                })
            })
            .collect();
        let req = create_item::Request {
            disposition: None,
            send_invitations: None,
            saved_folder: Some(FolderRef::distinguished("quickcontacts")),
            items,
        };
        self.client.create_item(self.mailbox, &req).await?;
        self.list = self.client.get_im_item_list(self.mailbox).await?;
        Ok(())
    }

    /// Takes `uri` out of the group named `name`: off the whole list when no other group holds
    /// it and `keep` is false.
    pub async fn remove(&mut self, name: &str, uri: &str, keep: bool) -> Result<(), EwsClientError> {
        let (Some(group), Some(p)) =
            (self.list.groups.iter().find(|g| g.display_name == name).cloned(), self.persona(uri).cloned())
        else {
            return Ok(());
        };
        let elsewhere = keep
            || self.list.groups.iter().any(|g| g.display_name != name && g.members.iter().any(|m| m.id == p.source.id));
        if elsewhere {
            let req =
                remove_im_contact_from_group::Request { contact_id: p.source.clone(), group_id: group.id.clone() };
            self.client.remove_im_contact_from_group(self.mailbox, &req).await?;
            if let Some(g) = self.list.groups.iter_mut().find(|g| g.id.id == group.id.id) {
                g.members.retain(|m| m.id != p.source.id);
            }
        } else {
            self.client.remove_contact_from_im_list(self.mailbox, &p.source).await?;
            for g in &mut self.list.groups {
                g.members.retain(|m| m.id != p.source.id);
            }
            self.list.personas.retain(|q| q.source.id != p.source.id);
        }
        Ok(())
    }
}

/// The persona of `list` with SIP address `uri` (compared without case).
pub fn persona<'a>(list: &'a ImItemList, uri: &str) -> Option<&'a Persona> {
    list.personas.iter().find(|p| p.im_address.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(uri)))
}

/// A contact-list file (Import-CsUserData's list, as `tandem cs import-contact-list` reads
/// it): a resource-lists document (RFC 4826) bounded as XCAP bounds it, each list a group and
/// each entry a contact (once per group). More than [`MAX_CONTACTS`] entries are refused as
/// such before the document is read.
pub fn parse_list_document(body: &[u8]) -> Result<Vec<FeGroup>, String> {
    let entries = body.windows(6).filter(|w| w == b"<entry").count();
    if entries > MAX_CONTACTS {
        return Err(format!("{entries} entries: a contact list holds at most {MAX_CONTACTS} contacts"));
    }
    let doc = tandem_sip_proto::xcap::Document::parse(body).map_err(|e| e.to_string())?;
    Ok(doc
        .lists
        .iter()
        .map(|l| {
            let mut contacts: Vec<FeContact> = Vec::new();
            for e in &l.entries {
                let uri = normalize(&e.uri);
                if !contacts.iter().any(|c| c.uri == uri) {
                    contacts.push(FeContact { uri, display_name: e.display_name.clone() });
                }
            }
            FeGroup { name: l.name.clone(), contacts }
        })
        .collect())
}

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Moved {
    pub groups: usize,
    pub contacts: usize,
    /// Contacts the mailbox already held in their group (a migration run again).
    pub already_there: usize,
}

/// Moves `aor`'s list from the Front End store into their mailbox (see the module).
pub async fn migrate(
    fe: &FrontendStore,
    connector: &ExchangeConnector,
    aor: &str,
    smtp: &str,
) -> Result<Moved, UcsError> {
    let groups = fe.fe_contact_list(aor).await?;
    let mailbox = connector.mailbox(smtp).await?;
    let client = connector.client();
    let mut list = MailboxList::read(client, &mailbox).await.map_err(at(Hop::Ews))?;
    let mut moved = Moved { groups: groups.len(), ..Moved::default() };
    for g in &groups {
        list.group(&g.name).await.map_err(at(Hop::Ews))?;
        for c in &g.contacts {
            let had = list.persona(&c.uri).is_some_and(|p| {
                let id = p.source.id.clone();
                list.list.groups.iter().any(|lg| lg.display_name == g.name && lg.members.iter().any(|m| m.id == id))
            });
            if had {
                moved.already_there += 1;
                continue;
            }
            match list.add(&g.name, &c.uri, c.display_name.as_deref()).await {
                Ok(_) => moved.contacts += 1,
                // A contact who left the directory since is not carried over (as Skype for
                // Business drops contacts it cannot resolve); the rest of the list moves.
                Err(e) if e.response_code() == Some("ErrorNameResolutionNoResults") => {
                    tracing::warn!(user = aor, contact = %c.uri, "contact list migration: the contact is no user of the directory now; left out");
                }
                Err(e) => return Err(at(Hop::Ews)(e).into()),
            }
        }
    }
    client.set_im_list_migration_completed(&mailbox, true).await.map_err(at(Hop::Ews))?;
    fe.contact_list_moved_to_mailbox(aor).await?;
    metrics::counter!("tandem_contact_list_migrations_total").increment(1);
    tracing::info!(
        user = aor,
        groups = moved.groups,
        contacts = moved.contacts,
        already = moved.already_there,
        "contact list moved into the mailbox (Unified Contact Store)"
    );
    Ok(moved)
}

/// Moves `aor`'s list from their mailbox back into the Front End store, which keeps it for
/// [`ROLLBACK_HOLD`] from `now` before a sign-in may migrate it again (Invoke-CsUcsRollback).
/// The mailbox's copy stays (its contacts are ordinary contacts other clients see); the mailbox
/// is told the list is no longer migrated. Returns the groups now in the Front End store.
pub async fn rollback(
    fe: &FrontendStore,
    connector: &ExchangeConnector,
    aor: &str,
    smtp: &str,
    now: i64,
) -> Result<Vec<FeGroup>, UcsError> {
    let mailbox = connector.mailbox(smtp).await?;
    let client = connector.client();
    let list = client.get_im_item_list(&mailbox).await.map_err(at(Hop::Ews))?;
    let groups = groups_of(&list);
    let hold = i64::try_from(ROLLBACK_HOLD.as_secs()).unwrap_or(i64::MAX);
    fe.put_fe_contact_list(aor, &groups, Some(now.saturating_add(hold))).await?;
    client.set_im_list_migration_completed(&mailbox, false).await.map_err(at(Hop::Ews))?;
    tracing::info!(user = aor, groups = groups.len(), "contact list rolled back into the Front End store");
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(location: ListLocation, migrate_after: i64) -> ContactListState {
        ContactListState { aor: "sip:a@x.com".into(), location, migrate_after, changed_at: 0 }
    }

    #[test]
    fn the_users_policy_then_the_global_one_then_true() {
        let p = |id: &str, v: Option<bool>| UserServicesPolicyRow { identity: id.into(), ucs_allowed: v };
        assert!(ucs_allowed(&[], "sip:a@x.com"));
        let rows = [p("global", Some(false)), p("sip:b@x.com", Some(true)), p("sip:c@x.com", None)];
        assert!(!ucs_allowed(&rows, "sip:a@x.com"));
        assert!(ucs_allowed(&rows, "SIP:b@x.com"));
        assert!(!ucs_allowed(&rows, "sip:c@x.com"), "an instance without UcsAllowed inherits the global one");
    }

    #[test]
    fn a_list_moves_only_from_the_front_end_when_allowed_and_the_hold_is_over() {
        let fe = state(ListLocation::FrontEnd, 1000);
        assert!(!migration_due(Some(&fe), true, 999), "inside the seven days");
        assert!(migration_due(Some(&fe), true, 1000));
        assert!(!migration_due(Some(&fe), false, 5000), "the policy keeps it in the Front End store");
        assert!(!migration_due(Some(&state(ListLocation::Mailbox, 0)), true, 5000));
        assert!(!migration_due(None, true, 5000), "nothing recorded: nothing to move");
        assert_eq!(location(None, true), ListLocation::Mailbox);
        assert_eq!(location(None, false), ListLocation::FrontEnd);
        assert_eq!(location(Some(&fe), true), ListLocation::FrontEnd);
    }

    #[test]
    fn list_files_are_read_as_groups_and_bounded() {
        let doc = br#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="Work"><entry uri="SIP:Bob@x.com"/></list><list name="Other Contacts"/></resource-lists>"#;
        let g = parse_list_document(doc).unwrap_or_default();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].contacts, vec![FeContact { uri: "sip:bob@x.com".into(), display_name: None }]);
        let many: String = (0..10_000).map(|i| format!("<entry uri=\"sip:u{i}@x.com\"/>")).collect();
        let big = format!(
            "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"a\">{many}</list></resource-lists>"
        );
        let e = parse_list_document(big.as_bytes()).err().unwrap_or_default();
        assert!(e.contains("10000 entries"), "{e}");
        assert!(parse_list_document(b"<resource-lists").is_err());
    }

    #[test]
    fn the_clock_offset_is_a_number_of_seconds_or_nothing() {
        assert_eq!(offset(Some(" 691200 ")), 691_200);
        assert_eq!(offset(Some("-5")), -5);
        assert_eq!(offset(Some("a week")), 0);
        assert_eq!(offset(None), 0);
        assert_eq!(normalize(" SIP:Bob@X.com"), "sip:bob@x.com");
    }
}
