//! Types shared by the operations: folder and item references, property paths (including MAPI
//! extended properties), shapes, restrictions, sort orders and paging.

use tandem_xml::{Node, child, children, is, text};

use crate::{ProtoError, ResponseCode, ns};

/// The distinguished folder names Tandem creates in every mailbox.
pub const DISTINGUISHED: &[&str] = &[
    "root",
    "msgfolderroot",
    "inbox",
    "drafts",
    "sentitems",
    "deleteditems",
    "junkemail",
    "outbox",
    "calendar",
    "contacts",
    "tasks",
    "notes",
    "journal",
    "conversationhistory",
    "quickcontacts",
    "imcontactlist",
    "voicemail",
    "syncissues",
    "conflicts",
    "localfailures",
    "serverfailures",
    "recoverableitemsroot",
    "recoverableitemsdeletions",
    "recoverableitemspurges",
    "recoverableitemsversions",
    "archiveinbox",
];

/// A folder as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderRef {
    Id(String),
    /// A distinguished name with the mailbox it belongs to, if given.
    Distinguished {
        name: String,
        mailbox: Option<String>,
    },
}

impl FolderRef {
    /// Reads `t:FolderId` or `t:DistinguishedFolderId`.
    pub fn parse(node: Node<'_, '_>) -> Result<FolderRef, ProtoError> {
        if is(node, ns::TYPES, "FolderId") {
            let id = node.attribute("Id").ok_or_else(|| ProtoError::schema("FolderId needs an Id"))?;
            return Ok(FolderRef::Id(id.to_owned()));
        }
        if is(node, ns::TYPES, "DistinguishedFolderId") {
            let name = node.attribute("Id").ok_or_else(|| ProtoError::schema("DistinguishedFolderId needs an Id"))?;
            let mailbox = child(node, ns::TYPES, "Mailbox")
                .and_then(|m| child(m, ns::TYPES, "EmailAddress"))
                .map(text)
                .filter(|s| !s.is_empty());
            return Ok(FolderRef::Distinguished { name: name.to_owned(), mailbox });
        }
        Err(ProtoError::schema(format!("unexpected element {} where a folder id belongs", node.tag_name().name())))
    }

    /// All folder references among `node`'s children.
    pub fn parse_all(node: Node<'_, '_>) -> Result<Vec<FolderRef>, ProtoError> {
        children(node).map(FolderRef::parse).collect()
    }
}

/// An item as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef {
    pub id: String,
    pub change_key: Option<String>,
}

impl ItemRef {
    pub fn parse(node: Node<'_, '_>) -> Result<ItemRef, ProtoError> {
        if is(node, ns::TYPES, "ItemId") {
            let id = node.attribute("Id").ok_or_else(|| ProtoError::schema("ItemId needs an Id"))?;
            return Ok(ItemRef { id: id.to_owned(), change_key: node.attribute("ChangeKey").map(str::to_owned) });
        }
        if is(node, ns::TYPES, "OccurrenceItemId") || is(node, ns::TYPES, "RecurringMasterItemId") {
            return Err(ProtoError::new(
                ResponseCode::ErrorNotSupported,
                "Occurrence and recurring-master ids are not supported by this server.",
            ));
        }
        Err(ProtoError::schema(format!("unexpected element {} where an item id belongs", node.tag_name().name())))
    }

    /// Every item reference among `node`'s children; each is parsed on its own so one bad id
    /// fails only its own response message.
    pub fn parse_each(node: Node<'_, '_>) -> Vec<Result<ItemRef, ProtoError>> {
        children(node).map(ItemRef::parse).collect()
    }
}

/// A MAPI extended property name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedField {
    pub distinguished_set: Option<String>,
    pub set_id: Option<String>,
    pub tag: Option<u32>,
    pub name: Option<String>,
    pub id: Option<u32>,
    pub property_type: String,
}

impl ExtendedField {
    pub fn parse(node: Node<'_, '_>) -> Result<ExtendedField, ProtoError> {
        let num = |s: &str| -> Result<u32, ProtoError> {
            let s = s.trim();
            let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(h) => u32::from_str_radix(h, 16),
                None => s.parse::<u32>(),
            };
            v.map_err(|_| ProtoError::schema(format!("`{s}` is not a property number")))
        };
        let f = ExtendedField {
            distinguished_set: node.attribute("DistinguishedPropertySetId").map(str::to_owned),
            set_id: node.attribute("PropertySetId").map(|s| s.to_ascii_lowercase()),
            tag: node.attribute("PropertyTag").map(num).transpose()?,
            name: node.attribute("PropertyName").map(str::to_owned),
            id: node.attribute("PropertyId").map(num).transpose()?,
            property_type: node
                .attribute("PropertyType")
                .ok_or_else(|| ProtoError::schema("ExtendedFieldURI needs a PropertyType"))?
                .to_owned(),
        };
        let named = f.name.is_some() || f.id.is_some();
        let set = f.distinguished_set.is_some() || f.set_id.is_some();
        if f.tag.is_some() == named || (named != set) {
            return Err(ProtoError::new(
                ResponseCode::ErrorInvalidExtendedPropertyValue,
                "An extended property needs either PropertyTag, or a property set with PropertyName or PropertyId.",
            ));
        }
        Ok(f)
    }

    /// A stable key for storage and comparison.
    pub fn key(&self) -> String {
        match (self.tag, &self.name, self.id) {
            (Some(t), _, _) => format!("tag:{t:04x}"),
            (_, Some(n), _) => format!("name:{}:{n}", self.set()),
            (_, _, Some(i)) => format!("id:{}:{i}", self.set()),
            _ => "invalid".to_owned(),
        }
    }

    fn set(&self) -> String {
        self.distinguished_set.clone().or_else(|| self.set_id.clone()).unwrap_or_default()
    }

    /// The `<t:ExtendedFieldURI …/>` element.
    pub fn render(&self) -> String {
        let mut s = String::from("<t:ExtendedFieldURI");
        if let Some(d) = &self.distinguished_set {
            s.push_str(&format!(" DistinguishedPropertySetId=\"{}\"", tandem_xml::escape(d)));
        }
        if let Some(p) = &self.set_id {
            s.push_str(&format!(" PropertySetId=\"{}\"", tandem_xml::escape(p)));
        }
        if let Some(t) = self.tag {
            s.push_str(&format!(" PropertyTag=\"0x{t:x}\""));
        }
        if let Some(n) = &self.name {
            s.push_str(&format!(" PropertyName=\"{}\"", tandem_xml::escape(n)));
        }
        if let Some(i) = self.id {
            s.push_str(&format!(" PropertyId=\"{i}\""));
        }
        s.push_str(&format!(" PropertyType=\"{}\"/>", tandem_xml::escape(&self.property_type)));
        s
    }
}

/// A property path: `FieldURI`, `IndexedFieldURI` or `ExtendedFieldURI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyPath {
    Field(String),
    Indexed { uri: String, index: String },
    Extended(ExtendedField),
}

impl PropertyPath {
    pub fn parse(node: Node<'_, '_>) -> Result<PropertyPath, ProtoError> {
        match node.tag_name().name() {
            "FieldURI" => Ok(PropertyPath::Field(
                node.attribute("FieldURI").ok_or_else(|| ProtoError::schema("FieldURI needs FieldURI"))?.to_owned(),
            )),
            "IndexedFieldURI" => Ok(PropertyPath::Indexed {
                uri: node.attribute("FieldURI").unwrap_or_default().to_owned(),
                index: node.attribute("FieldIndex").unwrap_or_default().to_owned(),
            }),
            "ExtendedFieldURI" => ExtendedField::parse(node).map(PropertyPath::Extended),
            other => Err(ProtoError::schema(format!("{other} is not a property path"))),
        }
    }

    /// The first property path among `node`'s children.
    pub fn first_in(node: Node<'_, '_>) -> Result<PropertyPath, ProtoError> {
        children(node)
            .find(|c| matches!(c.tag_name().name(), "FieldURI" | "IndexedFieldURI" | "ExtendedFieldURI"))
            .ok_or_else(|| ProtoError::schema("a property path is missing"))
            .and_then(PropertyPath::parse)
    }

    /// The element name a FieldURI stands for (`item:Subject` → `Subject`).
    pub fn element_name(&self) -> Option<&str> {
        match self {
            PropertyPath::Field(uri) | PropertyPath::Indexed { uri, .. } => {
                let local = uri.rsplit(':').next().unwrap_or(uri);
                Some(match local {
                    "EmailAddress" => "EmailAddresses",
                    "PhysicalAddress" => "PhysicalAddresses",
                    "PhoneNumber" => "PhoneNumbers",
                    "ImAddress" => "ImAddresses",
                    other => other,
                })
            }
            PropertyPath::Extended(_) => None,
        }
    }
}

/// BaseShape of an item or folder shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseShape {
    IdOnly,
    Default,
    AllProperties,
}

/// ItemShape / FolderShape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub base: BaseShape,
    pub additional: Vec<PropertyPath>,
    pub include_mime: bool,
}

impl Shape {
    pub fn parse(node: Node<'_, '_>) -> Result<Shape, ProtoError> {
        let base = match child(node, ns::TYPES, "BaseShape").map(text).as_deref() {
            Some("IdOnly") => BaseShape::IdOnly,
            Some("Default") => BaseShape::Default,
            Some("AllProperties") => BaseShape::AllProperties,
            other => return Err(ProtoError::schema(format!("BaseShape {other:?} is not valid"))),
        };
        let additional = match child(node, ns::TYPES, "AdditionalProperties") {
            Some(a) => children(a).map(PropertyPath::parse).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let include_mime =
            child(node, ns::TYPES, "IncludeMimeContent").map(text).and_then(|t| crate::parse_bool(&t)).unwrap_or(false)
                || additional.iter().any(|p| matches!(p, PropertyPath::Field(f) if f == "item:MimeContent"));
        Ok(Shape { base, additional, include_mime })
    }

    /// True when the shape asks for `uri` explicitly.
    pub fn wants(&self, uri: &str) -> bool {
        self.additional.iter().any(|p| matches!(p, PropertyPath::Field(f) if f == uri))
    }
}

/// A constant or another property on the right of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Constant(String),
    Path(PropertyPath),
}

/// How Contains compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containment {
    FullString,
    Prefixed,
    Substring,
    PrefixOnWords,
    ExactPhrase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    NotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

/// A Restriction's search expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restriction {
    And(Vec<Restriction>),
    Or(Vec<Restriction>),
    Not(Box<Restriction>),
    Exists(PropertyPath),
    Compare { path: PropertyPath, op: Comparison, value: Operand },
    Contains { path: PropertyPath, value: String, mode: Containment, ignore_case: bool },
    Excludes { path: PropertyPath, mask: u64 },
}

/// Deepest nesting accepted, so a hostile request cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

impl Restriction {
    /// Parses the one expression inside `m:Restriction`.
    pub fn parse_container(node: Node<'_, '_>) -> Result<Restriction, ProtoError> {
        let expr = children(node).next().ok_or_else(|| ProtoError::schema("Restriction is empty"))?;
        Restriction::parse(expr, 0)
    }

    fn parse(node: Node<'_, '_>, depth: usize) -> Result<Restriction, ProtoError> {
        if depth > MAX_DEPTH {
            return Err(ProtoError::schema("the restriction is nested too deeply"));
        }
        let name = node.tag_name().name();
        let compare = |op| -> Result<Restriction, ProtoError> {
            let path = PropertyPath::first_in(node)?;
            let with = child(node, ns::TYPES, "FieldURIOrConstant")
                .ok_or_else(|| ProtoError::schema(format!("{name} needs FieldURIOrConstant")))?;
            let inner = children(with).next().ok_or_else(|| ProtoError::schema("FieldURIOrConstant is empty"))?;
            let value = if inner.tag_name().name() == "Constant" {
                Operand::Constant(inner.attribute("Value").unwrap_or_default().to_owned())
            } else {
                Operand::Path(PropertyPath::parse(inner)?)
            };
            Ok(Restriction::Compare { path, op, value })
        };
        match name {
            "And" | "Or" => {
                let parts = children(node).map(|c| Restriction::parse(c, depth + 1)).collect::<Result<Vec<_>, _>>()?;
                Ok(if name == "And" { Restriction::And(parts) } else { Restriction::Or(parts) })
            }
            "Not" => {
                let inner = children(node).next().ok_or_else(|| ProtoError::schema("Not is empty"))?;
                Ok(Restriction::Not(Box::new(Restriction::parse(inner, depth + 1)?)))
            }
            "Exists" => Ok(Restriction::Exists(PropertyPath::first_in(node)?)),
            "IsEqualTo" => compare(Comparison::Equal),
            "IsNotEqualTo" => compare(Comparison::NotEqual),
            "IsGreaterThan" => compare(Comparison::Greater),
            "IsGreaterThanOrEqualTo" => compare(Comparison::GreaterOrEqual),
            "IsLessThan" => compare(Comparison::Less),
            "IsLessThanOrEqualTo" => compare(Comparison::LessOrEqual),
            "Contains" => {
                let path = PropertyPath::first_in(node)?;
                let value = child(node, ns::TYPES, "Constant")
                    .and_then(|c| c.attribute("Value"))
                    .ok_or_else(|| ProtoError::schema("Contains needs a Constant"))?
                    .to_owned();
                let mode = match node.attribute("ContainmentMode").unwrap_or("FullString") {
                    "FullString" => Containment::FullString,
                    "Prefixed" => Containment::Prefixed,
                    "Substring" => Containment::Substring,
                    "PrefixOnWords" => Containment::PrefixOnWords,
                    "ExactPhrase" => Containment::ExactPhrase,
                    other => return Err(ProtoError::schema(format!("ContainmentMode {other} is not valid"))),
                };
                let ignore_case = !matches!(node.attribute("ContainmentComparison"), None | Some("Exact"));
                Ok(Restriction::Contains { path, value, mode, ignore_case })
            }
            "Excludes" => {
                let path = PropertyPath::first_in(node)?;
                let mask = child(node, ns::TYPES, "Bitmask")
                    .and_then(|b| b.attribute("Value"))
                    .and_then(|v| {
                        let v = v.trim();
                        match v.strip_prefix("0x") {
                            Some(h) => u64::from_str_radix(h, 16).ok(),
                            None => v.parse().ok(),
                        }
                    })
                    .ok_or_else(|| ProtoError::schema("Excludes needs a Bitmask"))?;
                Ok(Restriction::Excludes { path, mask })
            }
            other => Err(ProtoError::new(
                ResponseCode::ErrorUnsupportedQueryFilter,
                format!("The restriction {other} is not supported."),
            )),
        }
    }
}

/// One key of a SortOrder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub path: PropertyPath,
    pub ascending: bool,
}

pub fn parse_sort(node: Node<'_, '_>) -> Result<Vec<SortKey>, ProtoError> {
    children(node)
        .map(|o| {
            Ok(SortKey {
                path: PropertyPath::first_in(o)?,
                ascending: o.attribute("Order").unwrap_or("Ascending") != "Descending",
            })
        })
        .collect()
}

/// IndexedPage(Item|Folder)View.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedPage {
    pub max: Option<usize>,
    pub offset: usize,
    pub from_end: bool,
}

impl IndexedPage {
    pub fn parse(node: Node<'_, '_>) -> Result<IndexedPage, ProtoError> {
        let num = |a: &str| -> Result<Option<usize>, ProtoError> {
            node.attribute(a)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| {
                        ProtoError::new(
                            ResponseCode::ErrorInvalidIndexedPagingParameters,
                            format!("{a} `{v}` is not valid"),
                        )
                    })
                })
                .transpose()
        };
        Ok(IndexedPage {
            max: num("MaxEntriesReturned")?,
            offset: num("Offset")?.unwrap_or(0),
            from_end: node.attribute("BasePoint") == Some("End"),
        })
    }
}

/// Which element wraps an item of a kind.
pub fn item_element(kind: &str) -> &'static str {
    match kind {
        "Message" => "Message",
        "CalendarItem" => "CalendarItem",
        "Contact" => "Contact",
        "Task" => "Task",
        "MeetingRequest" => "MeetingRequest",
        "MeetingResponse" => "MeetingResponse",
        "MeetingCancellation" => "MeetingCancellation",
        "PostItem" => "PostItem",
        "DistributionList" => "DistributionList",
        _ => "Item",
    }
}

/// Item element names a request may create.
pub const ITEM_ELEMENTS: &[&str] =
    &["Item", "Message", "CalendarItem", "Contact", "Task", "PostItem", "DistributionList"];

/// Folder element names.
pub const FOLDER_ELEMENTS: &[&str] = &["Folder", "CalendarFolder", "ContactsFolder", "TasksFolder", "SearchFolder"];

/// The folder element for a folder class.
pub fn folder_element(class: &str) -> &'static str {
    if class.starts_with("IPF.Appointment") {
        "CalendarFolder"
    } else if class.starts_with("IPF.Contact") {
        "ContactsFolder"
    } else if class.starts_with("IPF.Task") {
        "TasksFolder"
    } else {
        "Folder"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(xml: &str) -> String {
        format!(r#"<r xmlns:t="{}" xmlns:m="{}">{xml}</r>"#, ns::TYPES, ns::MESSAGES)
    }

    #[test]
    fn parses_restrictions_and_paths() {
        let x = doc(
            r#"<m:Restriction><t:And><t:Contains ContainmentMode="Substring" ContainmentComparison="IgnoreCase"><t:FieldURI FieldURI="item:Subject"/><t:Constant Value="hi"/></t:Contains><t:Not><t:IsEqualTo><t:ExtendedFieldURI PropertyTag="0x3613" PropertyType="String"/><t:FieldURIOrConstant><t:Constant Value="IPF.Note"/></t:FieldURIOrConstant></t:IsEqualTo></t:Not></t:And></m:Restriction>"#,
        );
        let d = tandem_xml::parse(x.as_bytes(), Default::default()).unwrap();
        let r = Restriction::parse_container(children(d.root_element()).next().unwrap()).unwrap();
        let Restriction::And(parts) = r else { panic!() };
        assert!(matches!(&parts[0], Restriction::Contains { mode: Containment::Substring, ignore_case: true, .. }));
        let Restriction::Not(inner) = &parts[1] else { panic!() };
        let Restriction::Compare { path: PropertyPath::Extended(e), .. } = inner.as_ref() else { panic!() };
        assert_eq!(e.key(), "tag:3613");
    }

    #[test]
    fn refuses_deep_and_bad_extended_fields() {
        let mut x = String::new();
        for _ in 0..100 {
            x.push_str("<t:Not>");
        }
        x.push_str(r#"<t:Exists><t:FieldURI FieldURI="item:Subject"/></t:Exists>"#);
        for _ in 0..100 {
            x.push_str("</t:Not>");
        }
        let x = doc(&format!("<m:Restriction>{x}</m:Restriction>"));
        let d = tandem_xml::parse(x.as_bytes(), Default::default()).unwrap();
        assert!(Restriction::parse_container(children(d.root_element()).next().unwrap()).is_err());
        let x = doc(r#"<t:ExtendedFieldURI PropertyTag="0x1" PropertyName="x" PropertyType="String"/>"#);
        let d = tandem_xml::parse(x.as_bytes(), Default::default()).unwrap();
        assert!(ExtendedField::parse(children(d.root_element()).next().unwrap()).is_err());
    }
}
