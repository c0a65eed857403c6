//! FindItem. Without a restriction, query string or calendar view, and sorted on an indexed
//! column (received time, article number…), a page is one indexed query with LIMIT/OFFSET and
//! the total comes from the folder's maintained count, so the cost does not grow with the
//! folder. A QueryString is answered from the
//! full-text index (`data::search`), newest first; restrictions and other sort keys read the
//! folder's items and evaluate in memory.

use std::cmp::Ordering;

use tandem_ews_proto::ops::find_item::Request;
use tandem_ews_proto::types::{BaseShape, PropertyPath, Shape, SortKey};
use tandem_ews_proto::{ResponseCode, ResponseMessages};

use super::messages::record;
use super::query::{compare, item_value, matches, query_matches};
use super::{Ctx, EwsError, fail, item_xml};
use crate::data::search::Scope;
use crate::data::{self, Item, ItemOrder};
use tandem_ews_proto::aqs;

/// Largest page returned when the client sets no limit (Exchange's default throttling cap).
const MAX_PAGE: usize = 1000;
/// Most items a QueryString finds in one folder (Exchange caps AQS at 250 results a page; this
/// keeps paging through a larger result possible).
const MAX_QUERY_HITS: usize = 10_000;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("FindItem");
    for parent in &req.parents {
        record(&mut out, find(ctx, &req, parent).await, "")?;
    }
    Ok(out.finish())
}

fn needs_full(shape: &Shape) -> bool {
    shape.base != BaseShape::IdOnly || !shape.additional.is_empty() || shape.include_mime
}

/// The indexed column a sort key maps to, if any.
fn column(k: &SortKey) -> Option<ItemOrder> {
    match &k.path {
        PropertyPath::Field(f) => match f.as_str() {
            "item:DateTimeReceived" => Some(ItemOrder::Received),
            "item:DateTimeCreated" => Some(ItemOrder::Created),
            "calendar:Start" => Some(ItemOrder::Start),
            "calendar:End" => Some(ItemOrder::End),
            "item:Size" => Some(ItemOrder::Size),
            "item:Subject" => Some(ItemOrder::Subject),
            "message:IsRead" => Some(ItemOrder::IsRead),
            _ => None,
        },
        PropertyPath::Extended(e) => match e.tag? {
            0x0e23 => Some(ItemOrder::Article),
            0x0e06 => Some(ItemOrder::Received),
            0x0e08 => Some(ItemOrder::Size),
            0x3008 => Some(ItemOrder::Modified),
            _ => None,
        },
        PropertyPath::Indexed { .. } => None,
    }
}

async fn find(ctx: &Ctx<'_>, req: &Request, parent: &tandem_ews_proto::types::FolderRef) -> Result<String, EwsError> {
    let folder = ctx.folder_for_read(parent, false).await?;
    let full = needs_full(&req.shape) || req.restriction.is_some() || req.query.is_some();
    let fast_sort = match req.sort.as_slice() {
        [] => Some((ItemOrder::Received, false)),
        [k] => column(k).map(|c| (c, k.ascending)),
        _ => None,
    };
    let (page, total, offset): (Vec<Item>, usize, usize) = match (&req.calendar, fast_sort) {
        (None, Some((col, asc))) if req.restriction.is_none() && req.query.is_none() => {
            let total = folder.item_count.max(0) as usize;
            let (offset, limit) = window(req, total)?;
            // The index is walked from the nearer end, so the last page costs what the first does.
            let from_end = offset.saturating_mul(2) > total;
            let count = limit.min(total.saturating_sub(offset));
            let skip = if from_end { total - offset - count } else { offset };
            let take = if from_end { count } else { limit };
            let mut items = ctx.s.data.items_page(&folder.id, col, asc != from_end, full, take, skip).await?;
            if from_end {
                items.reverse();
            }
            (items, total, offset)
        }
        _ => {
            let mut items = match (&req.calendar, &req.query) {
                (Some(cv), _) => ctx.s.data.items_overlapping(&folder.id, cv.start, cv.end).await?,
                // QueryString answers from the full-text index, not a scan of the folder.
                (None, Some(q)) => {
                    let plan = aqs::plan(q).map_err(|e| {
                        fail(ResponseCode::ErrorInvalidRequest, format!("The QueryString is not valid: {e}."))
                    })?;
                    ctx.s.data.search(Scope::Folder(&folder.id), &plan, MAX_QUERY_HITS).await?
                }
                (None, None) => ctx.s.data.items_in(&folder.id).await?,
            };
            let query_in_memory = req.calendar.is_some().then_some(req.query.as_ref()).flatten();
            if req.restriction.is_some() || query_in_memory.is_some() || !req.sort.is_empty() {
                let mut keyed = Vec::with_capacity(items.len());
                for i in items {
                    let stored = data::split_elements(&i.fields)?;
                    let ext = data::split_extended(&i.ext)?;
                    let keep =
                        req.restriction.as_ref().is_none_or(|r| matches(r, &|p| item_value(&i, &stored, &ext, p)))
                            && query_in_memory.is_none_or(|q| query_matches(q, &i, &stored));
                    if keep {
                        let keys: Vec<Option<String>> = req
                            .sort
                            .iter()
                            .map(|k| item_value(&i, &stored, &ext, &k.path).and_then(|v| v.into_iter().next()))
                            .collect();
                        keyed.push((keys, i));
                    }
                }
                if req.sort.is_empty() && req.calendar.is_none() {
                    keyed.sort_by(|a, b| b.1.received_at.cmp(&a.1.received_at).then(b.1.article.cmp(&a.1.article)));
                } else if !req.sort.is_empty() {
                    keyed.sort_by(|a, b| {
                        for (n, k) in req.sort.iter().enumerate() {
                            let o = match (&a.0[n], &b.0[n]) {
                                (Some(x), Some(y)) => compare(x, y),
                                (None, Some(_)) => Ordering::Less,
                                (Some(_), None) => Ordering::Greater,
                                (None, None) => Ordering::Equal,
                            };
                            let o = if k.ascending { o } else { o.reverse() };
                            if o != Ordering::Equal {
                                return o;
                            }
                        }
                        Ordering::Equal
                    });
                }
                items = keyed.into_iter().map(|(_, i)| i).collect();
            }
            if let Some(max) = req.calendar.as_ref().and_then(|c| c.max) {
                items.truncate(max);
            }
            let total = items.len();
            let (offset, limit) = window(req, total)?;
            let page = items.into_iter().skip(offset).take(limit).collect();
            (page, total, offset)
        }
    };
    let last = offset + page.len() >= total;
    let mut xml = String::with_capacity(page.len() * 256);
    for i in &page {
        xml.push_str(&item_xml(ctx, i, &req.shape, Some(&folder)).await?);
    }
    let attrs = if req.calendar.is_some() {
        format!("TotalItemsInView=\"{total}\" IncludesLastItemInRange=\"{last}\"")
    } else {
        format!(
            "IndexedPagingOffset=\"{}\" TotalItemsInView=\"{total}\" IncludesLastItemInRange=\"{last}\"",
            offset + page.len()
        )
    };
    Ok(format!("<m:RootFolder {attrs}><t:Items>{xml}</t:Items></m:RootFolder>"))
}

/// The (offset from the start, count) a paging view selects among `total` items.
fn window(req: &Request, total: usize) -> Result<(usize, usize), EwsError> {
    let Some(p) = req.page else { return Ok((0, MAX_PAGE)) };
    let max = p.max.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    if p.max == Some(0) {
        return Err(fail(ResponseCode::ErrorInvalidIndexedPagingParameters, "MaxEntriesReturned must be at least 1."));
    }
    if p.from_end {
        let end = total.saturating_sub(p.offset);
        let start = end.saturating_sub(max);
        Ok((start, end - start))
    } else {
        Ok((p.offset.min(total), max))
    }
}
