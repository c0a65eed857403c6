//! FindItem: items of folders, with IndexedPageItemView paging, CalendarView, Restriction,
//! SortOrder and QueryString.

use tandem_xml::{Node, text};

use super::{need, opt};
use crate::types::{FolderRef, IndexedPage, Restriction, Shape, SortKey, parse_sort};
use crate::{ProtoError, ResponseCode, parse_datetime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarView {
    pub start: i64,
    pub end: i64,
    pub max: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub shape: Shape,
    pub page: Option<IndexedPage>,
    pub calendar: Option<CalendarView>,
    pub restriction: Option<Restriction>,
    pub sort: Vec<SortKey>,
    pub query: Option<String>,
    pub parents: Vec<FolderRef>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        match op.attribute("Traversal").unwrap_or("Shallow") {
            "Shallow" => {}
            "Associated" | "SoftDeleted" => {
                return Err(ProtoError::new(
                    ResponseCode::ErrorNotSupported,
                    "Associated and SoftDeleted traversals are not supported.",
                ));
            }
            other => return Err(ProtoError::schema(format!("Traversal {other} is not valid"))),
        }
        for unsupported in
            ["FractionalPageItemView", "ContactsView", "SeekToConditionPageItemView", "GroupBy", "DistinguishedGroupBy"]
        {
            if opt(op, unsupported).is_some() {
                return Err(ProtoError::new(
                    ResponseCode::ErrorNotSupported,
                    format!("{unsupported} is not supported."),
                ));
            }
        }
        let calendar = match opt(op, "CalendarView") {
            Some(cv) => {
                let t = |a: &str| {
                    cv.attribute(a)
                        .and_then(parse_datetime)
                        .ok_or_else(|| ProtoError::schema(format!("CalendarView {a} is not a date-time")))
                };
                let max = cv.attribute("MaxEntriesReturned").and_then(|m| m.parse().ok());
                Some(CalendarView { start: t("StartDate")?, end: t("EndDate")?, max })
            }
            None => None,
        };
        Ok(Request {
            shape: Shape::parse(need(op, "ItemShape")?)?,
            page: opt(op, "IndexedPageItemView").map(IndexedPage::parse).transpose()?,
            calendar,
            restriction: opt(op, "Restriction").map(Restriction::parse_container).transpose()?,
            sort: opt(op, "SortOrder").map(parse_sort).transpose()?.unwrap_or_default(),
            query: opt(op, "QueryString").map(text).filter(|q| !q.is_empty()),
            parents: FolderRef::parse_all(need(op, "ParentFolderIds")?)?,
        })
    }
}
