//! FindFolder: Shallow or Deep, with a restriction evaluated on folder properties and paging.

use tandem_ews_proto::ops::find_folder::{Request, Traversal};
use tandem_ews_proto::types::PropertyPath;
use tandem_ews_proto::{ResponseMessages, format_datetime};

use super::query::matches;
use super::{Ctx, EwsError, folder_xml};
use crate::data::Folder;

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    let mut out = ResponseMessages::new("FindFolder");
    let mut all = ctx.s.data.folders_of(ctx.mailbox()).await?;
    all.retain(|f| ctx.may_see(f));
    for parent in &req.parents {
        let p = match ctx.folder_for_read(parent, false).await {
            Ok(p) => p,
            Err(EwsError::Ews(e)) => {
                out.error(e.code, &e.message, "");
                continue;
            }
            Err(other) => return Err(other),
        };
        let mut found: Vec<&Folder> = Vec::new();
        collect(&all, &p.id, req.traversal == Traversal::Deep, &mut found);
        if let Some(r) = &req.restriction {
            found.retain(|f| matches(r, &|path| folder_value(f, path, &all)));
        }
        let total = found.len();
        let (offset, max) = match req.page {
            Some(pg) => (pg.offset.min(total), pg.max.unwrap_or(usize::MAX)),
            None => (0, usize::MAX),
        };
        let page: Vec<&Folder> = found.iter().skip(offset).take(max).copied().collect();
        let last = offset + page.len() >= total;
        let mut xml = String::new();
        for f in &page {
            xml.push_str(&folder_xml(ctx, f, &req.shape, &all).await?);
        }
        out.success(&format!(
            "<m:RootFolder IndexedPagingOffset=\"{}\" TotalItemsInView=\"{total}\" IncludesLastItemInRange=\"{last}\"><t:Folders>{xml}</t:Folders></m:RootFolder>",
            offset + page.len()
        ));
    }
    Ok(out.finish())
}

fn collect<'a>(all: &'a [Folder], parent: &str, deep: bool, out: &mut Vec<&'a Folder>) {
    for f in all.iter().filter(|f| f.parent_id.as_deref() == Some(parent)) {
        out.push(f);
        if deep {
            collect(all, &f.id, deep, out);
        }
    }
}

fn folder_value(f: &Folder, path: &PropertyPath, all: &[Folder]) -> Option<Vec<String>> {
    let v = match path {
        PropertyPath::Field(uri) => match uri.as_str() {
            "folder:DisplayName" => f.display_name.clone(),
            "folder:FolderClass" => f.class.clone(),
            "folder:TotalCount" => f.item_count.to_string(),
            "folder:UnreadCount" => f.unread_count.to_string(),
            "folder:ChildFolderCount" => {
                all.iter().filter(|c| c.parent_id.as_deref() == Some(&f.id)).count().to_string()
            }
            _ => return None,
        },
        PropertyPath::Extended(e) => match e.tag? {
            0x3613 if !f.class.is_empty() => f.class.clone(),
            0x3001 | 0x10f3 => f.display_name.clone(),
            0x3602 => f.item_count.to_string(),
            0x3603 => f.unread_count.to_string(),
            0x3008 => format_datetime(f.modified_at),
            _ => return None,
        },
        PropertyPath::Indexed { .. } => return None,
    };
    Some(vec![v])
}
