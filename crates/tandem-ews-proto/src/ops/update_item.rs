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
        Ok(Request { conflict, disposition: Disposition::parse(op)?, changes })
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
