//! The Unified Contact Store as the Im* handlers share it. A user's IM list lives in two hidden
//! folders under Contacts, as on Exchange: contacts are ordinary `Contact` items (in Quick
//! Contacts when the list made them), groups are `DistributionList` items of class
//! `IPM.DistList.MOC.*` in IM Contacts List whose `Members` name their contacts by ItemId. So
//! FindItem, GetItem and exchangelib see the list as contacts and lists, and a contact another
//! client saves in either folder with an IM address is on the list: a contact no group names is
//! in Other Contacts, the default group. The default groups (Other Contacts, Tagged, Favorites)
//! are made on first use. Every operation is one transaction; a refused one writes nothing.

use tandem_ews_proto::ops::im_items::{self, DEFAULT_GROUPS, ImGroup, ImItemList, OTHER_CONTACTS, Persona};
use tandem_ews_proto::types::ItemRef;
use tandem_ews_proto::{ResponseCode, ids};

use super::{Ctx, EwsError, fail};
use crate::data::{self, Folder, Item, Write, new_id};

/// How many contacts a list holds (Exchange's UCS limit, `MaxImContacts`); more are refused
/// with ErrorImContactLimitReached, and a folder that other clients filled further is listed
/// up to this many.
pub(crate) const MAX_CONTACTS: usize = 1000;
/// How many groups a list holds (`MaxImGroups`); more are refused with ErrorImGroupLimitReached.
pub(crate) const MAX_GROUPS: usize = 64;
/// The longest group or contact display name accepted.
pub(crate) const MAX_NAME: usize = 256;

/// A user's list as stored: its two folders, its group items and its contact items.
pub(crate) struct Store {
    pub quick: Folder,
    pub list: Folder,
    pub groups: Vec<Item>,
    pub contacts: Vec<Item>,
}

/// Answers a single-message Im* operation: its error, when it failed, in the response element.
pub(crate) fn answer(op: &str, result: Result<String, EwsError>) -> Result<String, EwsError> {
    match result {
        Ok(body) => Ok(body),
        Err(e) => {
            let (code, text) = e.code();
            Ok(im_items::render_error(op, code, &text))
        }
    }
}

/// Loads the user's list, making the default groups first if any is missing.
pub(crate) async fn load(ctx: &Ctx<'_>) -> Result<Store, EwsError> {
    let folder = |name: &'static str| async move {
        ctx.s
            .data
            .folder_by_name(ctx.mailbox(), name)
            .await?
            .ok_or_else(|| fail(ResponseCode::ErrorFolderNotFound, "The IM list folders are missing."))
    };
    let (quick, list) = (folder("quickcontacts").await?, folder("imcontactlist").await?);
    let mut groups = read_groups(ctx, &quick, &list).await?;
    let missing: Vec<_> =
        DEFAULT_GROUPS.iter().filter(|(class, _)| !groups.iter().any(|g| &g.item_class == class)).collect();
    if !missing.is_empty() {
        let mut w = ctx.s.data.write().await?;
        for (class, name) in missing {
            let g = new_group(ctx.mailbox(), &list, class, name);
            insert(&mut w, ctx.mailbox(), g).await?;
        }
        w.commit().await?;
        groups = read_groups(ctx, &quick, &list).await?;
    }
    let contacts = ctx.s.data.im_list_items(&quick.id, &list.id, "Contact", MAX_CONTACTS).await?;
    Ok(Store { quick, list, groups, contacts })
}

async fn read_groups(ctx: &Ctx<'_>, quick: &Folder, list: &Folder) -> Result<Vec<Item>, EwsError> {
    let mut groups = ctx.s.data.im_list_items(&quick.id, &list.id, "DistributionList", MAX_GROUPS * 2).await?;
    groups.retain(|g| g.folder_id == list.id && g.item_class.starts_with("IPM.DistList.MOC."));
    // Two first uses at once may both make the default groups: the older one counts.
    let mut seen: Vec<String> = Vec::new();
    groups.retain(|g| {
        let default = DEFAULT_GROUPS.iter().any(|(c, _)| *c == g.item_class);
        if !default {
            return true;
        }
        if seen.contains(&g.item_class) {
            return false;
        }
        seen.push(g.item_class.clone());
        true
    });
    Ok(groups)
}

/// A new group item (numbers are assigned when it is written).
pub(crate) fn new_group(mailbox: &str, list: &Folder, class: &str, name: &str) -> Item {
    let now = tandem_store::now_unix();
    Item {
        id: new_id(ids::IdKind::Item),
        mailbox: mailbox.to_owned(),
        folder_id: list.id.clone(),
        element: "DistributionList".into(),
        item_class: class.to_owned(),
        subject: name.to_owned(),
        is_read: true,
        received_at: now,
        created_at: now,
        modified_at: now,
        sent_at: None,
        size: 0,
        start_at: None,
        end_at: None,
        article: 0,
        change_number: 0,
        fields: String::new(),
        ext: String::new(),
        mime: None,
    }
    .with_group_fields(name, &[])
}

/// A new contact item in Quick Contacts.
pub(crate) fn new_contact(
    mailbox: &str,
    quick: &Folder,
    name: &str,
    im: &str,
    email: Option<&str>,
    phone: Option<&str>,
) -> Item {
    let now = tandem_store::now_unix();
    let esc = tandem_xml::escape;
    let mut fields = format!("<t:DisplayName>{}</t:DisplayName>", esc(name));
    if let Some(e) = email {
        fields.push_str(&format!(
            "<t:EmailAddresses><t:Entry Key=\"EmailAddress1\">{}</t:Entry></t:EmailAddresses>",
            esc(e)
        ));
    }
    if let Some(p) = phone {
        fields
            .push_str(&format!("<t:PhoneNumbers><t:Entry Key=\"BusinessPhone\">{}</t:Entry></t:PhoneNumbers>", esc(p)));
    }
    fields.push_str(&format!("<t:ImAddresses><t:Entry Key=\"ImAddress1\">{}</t:Entry></t:ImAddresses>", esc(im)));
    Item {
        id: new_id(ids::IdKind::Item),
        mailbox: mailbox.to_owned(),
        folder_id: quick.id.clone(),
        element: "Contact".into(),
        item_class: "IPM.Contact".into(),
        subject: name.to_owned(),
        is_read: true,
        received_at: now,
        created_at: now,
        modified_at: now,
        sent_at: None,
        size: fields.len() as i64,
        start_at: None,
        end_at: None,
        article: 0,
        change_number: 0,
        fields,
        ext: String::new(),
        mime: None,
    }
}

/// Group and contact fields read from their stored elements.
pub(crate) trait ImFields {
    fn with_group_fields(self, name: &str, members: &[(String, String, String)]) -> Self;
    fn members(&self) -> Vec<String>;
    fn display_name(&self) -> String;
    fn first_entry(&self, element: &str) -> Option<String>;
    fn im_address(&self) -> Option<String>;
}

impl ImFields for Item {
    /// Rewrites a group's DisplayName and Members: (contact id, name, address) per member.
    fn with_group_fields(mut self, name: &str, members: &[(String, String, String)]) -> Item {
        let esc = tandem_xml::escape;
        let mut f = format!("<t:DisplayName>{}</t:DisplayName>", esc(name));
        if !members.is_empty() {
            f.push_str("<t:Members>");
            for (id, n, a) in members {
                f.push_str(&format!(
                    "<t:Member><t:Mailbox><t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Contact</t:MailboxType><t:ItemId Id=\"{}\"/></t:Mailbox><t:Status>Normal</t:Status></t:Member>",
                    esc(n),
                    esc(a),
                    esc(id)
                ));
            }
            f.push_str("</t:Members>");
        }
        self.subject = name.to_owned();
        self.size = f.len() as i64;
        self.fields = f;
        self
    }

    /// The contact item ids a group's Members name, in order.
    fn members(&self) -> Vec<String> {
        let wrapped = format!("<r xmlns:t=\"{}\">{}</r>", tandem_ews_proto::ns::TYPES, self.fields);
        let Ok(doc) = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()) else {
            return Vec::new();
        };
        let t = tandem_ews_proto::ns::TYPES;
        doc.root_element()
            .descendants()
            .filter(|n| tandem_xml::is(*n, t, "ItemId"))
            .filter_map(|n| n.attribute("Id").map(str::to_owned))
            .collect()
    }

    fn display_name(&self) -> String {
        data::split_elements(&self.fields)
            .ok()
            .and_then(|els| els.into_iter().find(|(n, _)| n == "DisplayName"))
            .map(|(_, x)| data::element_text(&x))
            .unwrap_or_else(|| self.subject.clone())
    }

    /// The text of the first `Entry` of a dictionary element (EmailAddresses, ImAddresses…).
    fn first_entry(&self, element: &str) -> Option<String> {
        let (_, xml) = data::split_elements(&self.fields).ok()?.into_iter().find(|(n, _)| n == element)?;
        first_entry_of(&xml)
    }

    fn im_address(&self) -> Option<String> {
        self.first_entry("ImAddresses")
    }
}

impl Store {
    /// The group a request names, or ErrorInvalidImGroupId.
    pub fn group(&self, r: &ItemRef) -> Result<&Item, EwsError> {
        self.groups
            .iter()
            .find(|g| g.id == r.id.trim())
            .ok_or_else(|| fail(ResponseCode::ErrorInvalidImGroupId, "The IM group id is not a group of this list."))
    }

    /// The group a request names, or Other Contacts when it names none.
    pub fn group_or_default(&self, r: Option<&ItemRef>) -> Result<&Item, EwsError> {
        match r {
            Some(r) => self.group(r),
            None => self
                .groups
                .iter()
                .find(|g| g.item_class == OTHER_CONTACTS)
                .ok_or_else(|| fail(ResponseCode::ErrorInvalidImGroupId, "The list has no Other Contacts group.")),
        }
    }

    /// The contact on the list with this IM address (compared without case).
    pub fn contact_by_address(&self, im: &str) -> Option<&Item> {
        self.contacts.iter().find(|c| c.im_address().is_some_and(|a| a.eq_ignore_ascii_case(im)))
    }
}

/// A contact a request names: one of the list's, or another contact item of the user's that has
/// an IM address (AddImContactToGroup of a contact from the Contacts folder); else
/// ErrorInvalidImContactId.
pub(crate) async fn contact(ctx: &Ctx<'_>, store: &Store, r: &ItemRef) -> Result<Item, EwsError> {
    let invalid = || fail(ResponseCode::ErrorInvalidImContactId, "The IM contact id is not a contact of this mailbox.");
    if let Some(c) = store.contacts.iter().find(|c| c.id == r.id.trim()) {
        return Ok(c.clone());
    }
    let Ok(key) = ids::decode(&r.id, ids::IdKind::Item) else { return Err(invalid()) };
    match ctx.s.data.item(&key).await? {
        Some(i) if i.mailbox == ctx.mailbox() && i.element == "Contact" && i.im_address().is_some() => Ok(i),
        _ => Err(invalid()),
    }
}

/// The list as the operations answer it: the groups in order (the defaults, then the user's,
/// then distribution groups) with their members, and one persona per listed contact.
pub(crate) async fn render_list(ctx: &Ctx<'_>, store: &Store) -> Result<ImItemList, EwsError> {
    let mut order: Vec<&Item> = store.groups.iter().collect();
    let rank = |g: &Item| match DEFAULT_GROUPS.iter().position(|(c, _)| *c == g.item_class) {
        Some(n) => n,
        None if g.item_class == im_items::DISTRIBUTION_GROUP => DEFAULT_GROUPS.len() + 1,
        None => DEFAULT_GROUPS.len(),
    };
    order.sort_by_key(|g| (rank(g), g.article));
    let mut contacts: Vec<Item> = store.contacts.clone();
    // Each group's Members read once: a contact of the list folders no group names is in
    // Other Contacts.
    let named: Vec<(&Item, Vec<String>)> = order.iter().map(|g| (*g, g.members())).collect();
    let grouped: std::collections::HashSet<&str> =
        named.iter().flat_map(|(_, m)| m.iter().map(String::as_str)).collect();
    let mut groups = Vec::new();
    for (g, listed) in &named {
        let g = *g;
        let mut members = Vec::new();
        for id in listed.iter().cloned() {
            if !contacts.iter().any(|c| c.id == id) {
                // A contact of another folder the group names (AddImContactToGroup).
                match ctx.s.data.item(&id).await? {
                    Some(i) if i.mailbox == ctx.mailbox() && i.element == "Contact" => contacts.push(i),
                    _ => continue, // deleted by another client: off the list
                }
            }
            if !members.contains(&id) {
                members.push(id);
            }
        }
        if g.item_class == OTHER_CONTACTS {
            for c in &store.contacts {
                if !grouped.contains(c.id.as_str()) && !members.contains(&c.id) && c.im_address().is_some() {
                    members.push(c.id.clone());
                }
            }
        }
        groups.push((g, members));
    }
    let listed: std::collections::HashSet<&String> = groups.iter().flat_map(|(_, m)| m.iter()).collect();
    let personas = contacts.iter().filter(|c| listed.contains(&c.id)).map(|c| persona(store, c)).collect();
    let by_id: std::collections::HashMap<&str, i64> =
        contacts.iter().map(|c| (c.id.as_str(), c.change_number)).collect();
    let groups = groups
        .into_iter()
        .map(|(g, members)| ImGroup {
            display_name: g.display_name(),
            group_type: g.item_class.clone(),
            id: item_ref(g),
            members: members
                .iter()
                .map(|id| {
                    let ck = by_id.get(id.as_str()).map(|n| ids::change_key(*n));
                    ItemRef { id: id.clone(), change_key: ck }
                })
                .collect(),
            smtp_address: None,
        })
        .collect();
    Ok(ImItemList { groups, personas })
}

pub(crate) fn item_ref(i: &Item) -> ItemRef {
    ItemRef { id: i.id.clone(), change_key: Some(ids::change_key(i.change_number)) }
}

/// The persona of one contact item.
pub(crate) fn persona(store: &Store, c: &Item) -> Persona {
    let folder = [&store.quick, &store.list].into_iter().find(|f| f.id == c.folder_id);
    // The stored elements are read once for all the persona's values.
    let els = data::split_elements(&c.fields).unwrap_or_default();
    let xml = |n: &str| els.iter().find(|(e, _)| e == n).map(|(_, x)| x.as_str());
    let text = |n: &str| xml(n).map(data::element_text).unwrap_or_default();
    let display_name = match text("DisplayName") {
        d if d.is_empty() => c.subject.clone(),
        d => d,
    };
    Persona {
        id: c.id.clone(),
        created: c.created_at,
        display_name,
        given_name: text("GivenName"),
        surname: text("Surname"),
        email: xml("EmailAddresses").and_then(first_entry_of),
        im_address: xml("ImAddresses").and_then(first_entry_of),
        source: item_ref(c),
        folder: ItemRef { id: c.folder_id.clone(), change_key: folder.map(|f| ids::change_key(f.change_number)) },
        quick_contact: c.folder_id == store.quick.id,
    }
}

/// The text of the first `Entry` of one stored dictionary element.
fn first_entry_of(xml: &str) -> Option<String> {
    let wrapped = format!("<r xmlns:t=\"{}\">{xml}</r>", tandem_ews_proto::ns::TYPES);
    let doc = tandem_xml::parse(wrapped.as_bytes(), tandem_xml::Limits::default()).ok()?;
    let t = tandem_ews_proto::ns::TYPES;
    let v = doc.root_element().descendants().find(|n| tandem_xml::is(*n, t, "Entry")).map(tandem_xml::text)?;
    let v = v.trim().to_owned();
    (!v.is_empty()).then_some(v)
}

/// Inserts a new item with fresh numbers.
pub(crate) async fn insert(w: &mut Write<'_>, mailbox: &str, mut i: Item) -> Result<Item, EwsError> {
    let (change, article) = w.next_numbers(mailbox, 1).await?;
    i.change_number = change;
    i.article = article;
    w.insert_item(&i).await?;
    Ok(i)
}

/// Rewrites a group with `edit` applied to its members as they stand inside this write — the
/// group re-read and held ([`Write::item_for_update`]): read before the write, of two edits of one
/// group at once the later one lost the earlier's member — and, when `rename` is given, a new
/// display name; a new change number. Nothing is written when neither changes anything. The
/// members' names (the group item keeps them) come from `known` where it has them (the list as
/// loaded, and a contact written in this same transaction, which no other reader sees), so a
/// group of 250 costs no 250 reads.
pub(crate) async fn edit_group(
    w: &mut Write<'_>,
    ctx: &Ctx<'_>,
    known: &[&Item],
    group: &Item,
    rename: Option<&str>,
    edit: impl FnOnce(&mut Vec<String>),
) -> Result<(), EwsError> {
    let current = w
        .item_for_update(&group.id)
        .await?
        .ok_or_else(|| fail(ResponseCode::ErrorInvalidImGroupId, "The IM group was removed meanwhile."))?;
    let before = current.members();
    let mut members = before.clone();
    edit(&mut members);
    let name = rename.map_or_else(|| current.display_name(), str::to_string);
    if members == before && name == current.display_name() {
        return Ok(());
    }
    let mut named = Vec::with_capacity(members.len());
    for id in &members {
        if let Some(c) = known.iter().find(|c| c.id == *id) {
            named.push((id.clone(), c.display_name(), c.im_address().unwrap_or_default()));
        } else if let Some(c) = ctx.s.data.item(id).await? {
            named.push((id.clone(), c.display_name(), c.im_address().unwrap_or_default()));
        }
    }
    let mut g = current.with_group_fields(&name, &named);
    let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
    g.change_number = change;
    g.modified_at = tandem_store::now_unix();
    w.update_item(&g, None).await?;
    Ok(())
}

/// Puts a contact in a group (nothing when it is there already); see [`edit_group`].
pub(crate) async fn add_member(
    w: &mut Write<'_>,
    ctx: &Ctx<'_>,
    known: &[Item],
    group: &Item,
    contact: &Item,
) -> Result<(), EwsError> {
    let mut names: Vec<&Item> = known.iter().collect();
    names.push(contact);
    edit_group(w, ctx, &names, group, None, |members| {
        if !members.contains(&contact.id) {
            members.push(contact.id.clone());
        }
    })
    .await
}

/// Takes a contact out of a group (nothing when it is not there); see [`edit_group`].
pub(crate) async fn remove_member(
    w: &mut Write<'_>,
    ctx: &Ctx<'_>,
    known: &[Item],
    group: &Item,
    contact_id: &str,
) -> Result<(), EwsError> {
    let names: Vec<&Item> = known.iter().collect();
    edit_group(w, ctx, &names, group, None, |members| members.retain(|m| m != contact_id)).await
}

/// Checks a display name for a group or contact.
/// Deletes the group `group_id` when its class is `class`, else fails with `wrong`: the whole
/// of RemoveImGroup (user groups) and RemoveDistributionGroupFromImList.
pub(crate) async fn remove_group(
    ctx: &Ctx<'_>,
    group_id: &ItemRef,
    class: &str,
    wrong: (ResponseCode, &str),
) -> Result<(), EwsError> {
    let store = load(ctx).await?;
    let group = store.group(group_id)?;
    if group.item_class != class {
        return Err(fail(wrong.0, wrong.1));
    }
    let mut w = ctx.s.data.write().await?;
    let (change, _) = w.next_numbers(ctx.mailbox(), 0).await?;
    w.delete_item(group, change).await?;
    w.commit().await?;
    Ok(())
}

pub(crate) fn check_name(name: &str) -> Result<(), EwsError> {
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(fail(
            ResponseCode::ErrorInvalidRequest,
            format!("A display name has at most {MAX_NAME} characters and no control characters."),
        ));
    }
    Ok(())
}

/// Refuses a new contact once the list holds [`MAX_CONTACTS`] (read inside the write).
pub(crate) async fn check_contact_cap(w: &mut Write<'_>, store: &Store) -> Result<(), EwsError> {
    if w.im_contact_count(&store.quick.id, &store.list.id).await? >= MAX_CONTACTS as i64 {
        return Err(fail(
            ResponseCode::ErrorImContactLimitReached,
            format!("The IM list already holds the maximum of {MAX_CONTACTS} contacts."),
        ));
    }
    Ok(())
}
