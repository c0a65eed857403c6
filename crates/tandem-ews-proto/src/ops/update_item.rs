//! UpdateItem: SetItemField, AppendToItemField and DeleteItemField with ConflictResolution.

use tandem_xml::{Node, child, children};

use super::create_item::{Disposition, ItemData, parse_item};
use super::need;
use crate::types::{ITEM_ELEMENTS, ItemRef, PropertyPath};
use crate::{ProtoError, ns};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictResolution {
    NeverOverwrite,
    AutoResolve,
    AlwaysOverwrite,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Set { path: PropertyPath, value: ItemData },
    Append { path: PropertyPath, value: ItemData },
    Delete { path: PropertyPath },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemChange {
    pub item: Result<ItemRef, ProtoError>,
    pub updates: Result<Vec<Update>, ProtoError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub conflict: ConflictResolution,
    pub disposition: Option<Disposition>,
    /// `SendMeetingInvitationsOrCancellations`: for a meeting its organizer changes, whether
    /// the attendees are sent the update.
    pub send_invitations: Option<String>,
    pub changes: Vec<ItemChange>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let conflict = match op.attribute("ConflictResolution").unwrap_or("AutoResolve") {
            "NeverOverwrite" => ConflictResolution::NeverOverwrite,
            "AutoResolve" => ConflictResolution::AutoResolve,
            "AlwaysOverwrite" => ConflictResolution::AlwaysOverwrite,
            other => return Err(ProtoError::schema(format!("ConflictResolution {other} is not valid"))),
        };
        let mut changes = Vec::new();
        for ic in children(need(op, "ItemChanges")?) {
            let item = children(ic)
                .find(|c| c.tag_name().name() != "Updates")
                .ok_or_else(|| ProtoError::schema("ItemChange needs an item id"))
                .and_then(ItemRef::parse);
            let updates = child(ic, ns::TYPES, "Updates")
                .ok_or_else(|| ProtoError::schema("ItemChange needs Updates"))
                .and_then(|u| children(u).map(parse_update).collect());
            changes.push(ItemChange { item, updates });
        }
        Ok(Request {
            conflict,
            disposition: Disposition::parse(op)?,
            send_invitations: op.attribute("SendMeetingInvitationsOrCancellations").map(str::to_owned),
            changes,
        })
    }
}

fn parse_update(u: Node<'_, '_>) -> Result<Update, ProtoError> {
    let path = PropertyPath::first_in(u)?;
    let value = || -> Result<ItemData, ProtoError> {
        let el = children(u)
            .find(|c| ITEM_ELEMENTS.contains(&c.tag_name().name()))
            .ok_or_else(|| ProtoError::schema(format!("{} needs an item element", u.tag_name().name())))?;
        parse_item(el)
    };
    match u.tag_name().name() {
        "SetItemField" => Ok(Update::Set { path, value: value()? }),
        "AppendToItemField" => Ok(Update::Append { path, value: value()? }),
        "DeleteItemField" => Ok(Update::Delete { path }),
        other => Err(ProtoError::schema(format!("{other} is not an item update"))),
    }
}

impl ConflictResolution {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictResolution::NeverOverwrite => "NeverOverwrite",
            ConflictResolution::AutoResolve => "AutoResolve",
            ConflictResolution::AlwaysOverwrite => "AlwaysOverwrite",
        }
    }
}

impl Request {
    /// Sets properties of one item, overwriting whatever a client changed meanwhile
    /// (AlwaysOverwrite, SaveOnly): each update names its path and carries `value`, an item
    /// element holding that one property (the Front End rewriting a transcript it owns).
    pub fn set(item: ItemRef, updates: Vec<(PropertyPath, ItemData)>) -> Request {
        Request {
            conflict: ConflictResolution::AlwaysOverwrite,
            disposition: Some(Disposition::SaveOnly),
            send_invitations: None,
            changes: vec![ItemChange {
                item: Ok(item),
                updates: Ok(updates.into_iter().map(|(path, value)| Update::Set { path, value }).collect()),
            }],
        }
    }
}

impl super::BuildRequest for Request {
    const OPERATION: &'static str = "UpdateItem";

    /// Changes that failed to parse (only a parsed request has them) are left out.
    fn to_xml(&self) -> String {
        let mut s = format!("<m:UpdateItem ConflictResolution=\"{}\"", self.conflict.as_str());
        if let Some(d) = self.disposition {
            s.push_str(&format!(" MessageDisposition=\"{}\"", d.as_str()));
        }
        if let Some(i) = &self.send_invitations {
            s.push_str(&format!(" SendMeetingInvitationsOrCancellations=\"{}\"", tandem_xml::escape(i)));
        }
        s.push_str("><m:ItemChanges>");
        for change in &self.changes {
            let (Ok(item), Ok(updates)) = (&change.item, &change.updates) else { continue };
            s.push_str("<t:ItemChange>");
            s.push_str(&item.to_xml());
            s.push_str("<t:Updates>");
            for u in updates {
                let (name, path, value) = match u {
                    Update::Set { path, value } => ("SetItemField", path, Some(value)),
                    Update::Append { path, value } => ("AppendToItemField", path, Some(value)),
                    Update::Delete { path } => ("DeleteItemField", path, None),
                };
                s.push_str(&format!("<t:{name}>{}", path.to_xml()));
                if let Some(v) = value {
                    s.push_str(&v.to_xml());
                }
                s.push_str(&format!("</t:{name}>"));
            }
            s.push_str("</t:Updates></t:ItemChange>");
        }
        s.push_str("</m:ItemChanges></m:UpdateItem>");
        s
    }
}

/// Reads an UpdateItem answer: for each change, the item's new id and change key.
pub fn parse_response(
    doc: &tandem_xml::Document<'_>,
) -> Result<Vec<Result<Vec<ItemRef>, crate::reply::MessageError>>, crate::reply::ReplyError> {
    Ok(super::create_item::items_of(doc, "UpdateItem")?
        .into_iter()
        .map(|r| r.map(|items| items.into_iter().map(|(id, _)| id).collect()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::BuildRequest;

    /// What the Front End builds is what the Mailbox's parser reads, property by property.
    #[test]
    fn a_built_update_parses_back() {
        let id = ItemRef { id: "AAMk<&>".into(), change_key: Some("CQ==".into()) };
        let body = ItemData::new("Message").with_body("HTML", "<p>a &amp; b</p>");
        let req = Request::set(id.clone(), vec![(PropertyPath::Field("item:Body".into()), body.clone())]);
        let xml = format!("<m:Root xmlns:m=\"{}\" xmlns:t=\"{}\">{}</m:Root>", ns::MESSAGES, ns::TYPES, req.to_xml());
        let doc = tandem_xml::parse(xml.as_bytes(), tandem_xml::Limits::default()).unwrap();
        let op = children(doc.root_element()).next().unwrap();
        let parsed = Request::parse(op).unwrap();
        assert_eq!(parsed.conflict, ConflictResolution::AlwaysOverwrite);
        assert_eq!(parsed.disposition, Some(Disposition::SaveOnly));
        assert_eq!(parsed.changes.len(), 1);
        assert_eq!(parsed.changes[0].item.as_ref().unwrap(), &id);
        let updates = parsed.changes[0].updates.as_ref().unwrap();
        let [Update::Set { path, value }] = updates.as_slice() else { panic!("{updates:?}") };
        assert_eq!(path, &PropertyPath::Field("item:Body".into()));
        assert_eq!(value.fields, body.fields);
    }
}
