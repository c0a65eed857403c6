//! FindItem: items of folders, with IndexedPageItemView paging, CalendarView, Restriction,
//! SortOrder and QueryString.

use tandem_xml::{Node, child, children, text};

use super::create_item::{ItemData, parse_answer_item};
use super::{BuildRequest, need, opt};
use crate::reply::{self, MessageError, ReplyError};
use crate::types::{FolderRef, IndexedPage, ItemRef, Restriction, Shape, SortKey, parse_sort};
use crate::{ProtoError, ResponseCode, format_datetime, ns, parse_bool, parse_datetime};

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

impl Request {
    /// The items of `parents` under `shape`, unpaged, unfiltered and in the server's order.
    pub fn new(shape: Shape, parents: Vec<FolderRef>) -> Request {
        Request { shape, page: None, calendar: None, restriction: None, sort: Vec::new(), query: None, parents }
    }
}

impl BuildRequest for Request {
    const OPERATION: &'static str = "FindItem";

    fn to_xml(&self) -> String {
        let mut s = format!("<m:FindItem Traversal=\"Shallow\">{}", self.shape.to_xml("ItemShape"));
        if let Some(p) = &self.page {
            s.push_str(&p.to_xml("IndexedPageItemView"));
        }
        if let Some(c) = &self.calendar {
            let max = c.max.map(|m| format!(" MaxEntriesReturned=\"{m}\"")).unwrap_or_default();
            s.push_str(&format!(
                "<m:CalendarView{max} StartDate=\"{}\" EndDate=\"{}\"/>",
                format_datetime(c.start),
                format_datetime(c.end)
            ));
        }
        if let Some(r) = &self.restriction {
            s.push_str(&r.to_xml());
        }
        if !self.sort.is_empty() {
            s.push_str(&crate::build::sort_to_xml(&self.sort));
        }
        s.push_str("<m:ParentFolderIds>");
        for f in &self.parents {
            s.push_str(&f.to_xml());
        }
        s.push_str("</m:ParentFolderIds>");
        if let Some(q) = &self.query {
            s.push_str(&format!("<m:QueryString>{}</m:QueryString>", tandem_xml::escape(q)));
        }
        s.push_str("</m:FindItem>");
        s
    }
}

/// One folder's page of a FindItem answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// TotalItemsInView: items matching, across all pages.
    pub total: usize,
    pub includes_last: bool,
    pub items: Vec<(ItemRef, ItemData)>,
}

/// Reads a FindItem answer: for each parent folder, its page of items or the error.
pub fn parse_response(doc: &tandem_xml::Document<'_>) -> Result<Vec<Result<Found, MessageError>>, ReplyError> {
    let bad = |what: String| ReplyError::unexpected("FindItem", what);
    let mut out = Vec::new();
    for m in reply::messages(doc, "FindItem")? {
        let node = match m.result() {
            Err(e) => {
                out.push(Err(e));
                continue;
            }
            Ok(n) => n,
        };
        let root = child(node, ns::MESSAGES, "RootFolder").ok_or_else(|| bad("a success without RootFolder".into()))?;
        let items = match child(root, ns::TYPES, "Items") {
            Some(list) => {
                children(list).map(parse_answer_item).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.message))?
            }
            None => Vec::new(),
        };
        out.push(Ok(Found {
            total: root.attribute("TotalItemsInView").and_then(|t| t.parse().ok()).unwrap_or(items.len()),
            includes_last: root.attribute("IncludesLastItemInRange").and_then(parse_bool).unwrap_or(true),
            items,
        }));
    }
    Ok(out)
}
