//! Shared types of GetDelegate, AddDelegate, UpdateDelegate and RemoveDelegate.

use tandem_xml::{Node, Writer, child, children, text};

use crate::{ProtoError, ResponseCode, ns, parse_bool};

/// The folders a delegate permission names, with their element names.
pub const FOLDERS: &[(&str, &str)] = &[
    ("calendar", "CalendarFolderPermissionLevel"),
    ("tasks", "TasksFolderPermissionLevel"),
    ("inbox", "InboxFolderPermissionLevel"),
    ("contacts", "ContactsFolderPermissionLevel"),
    ("notes", "NotesFolderPermissionLevel"),
    ("journal", "JournalFolderPermissionLevel"),
];

pub const LEVELS: &[&str] = &["None", "Reviewer", "Author", "Editor"];

/// One delegate: the user's address and a level per folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegate {
    pub address: String,
    /// (folder name, level) for the folders given.
    pub permissions: Vec<(String, String)>,
    pub receive_copies: bool,
    pub view_private: bool,
}

impl Delegate {
    pub fn level(&self, folder: &str) -> &str {
        self.permissions.iter().find(|(f, _)| f == folder).map(|(_, l)| l.as_str()).unwrap_or("None")
    }

    /// Storage form: `folder=Level;…;rc=bool;vp=bool`.
    pub fn encode(&self) -> String {
        let mut parts: Vec<String> = self.permissions.iter().map(|(f, l)| format!("{f}={l}")).collect();
        parts.push(format!("rc={}", self.receive_copies));
        parts.push(format!("vp={}", self.view_private));
        parts.join(";")
    }

    pub fn decode(address: &str, s: &str) -> Delegate {
        let mut d = Delegate {
            address: address.to_owned(),
            permissions: Vec::new(),
            receive_copies: false,
            view_private: false,
        };
        for part in s.split(';') {
            match part.split_once('=') {
                Some(("rc", v)) => d.receive_copies = v == "true",
                Some(("vp", v)) => d.view_private = v == "true",
                Some((f, l)) => d.permissions.push((f.to_owned(), l.to_owned())),
                None => {}
            }
        }
        d
    }
}

/// The owner's mailbox address in `m:Mailbox`.
pub fn parse_mailbox(op: Node<'_, '_>) -> Result<String, ProtoError> {
    child(op, ns::MESSAGES, "Mailbox")
        .and_then(|m| child(m, ns::TYPES, "EmailAddress"))
        .map(text)
        .ok_or_else(|| ProtoError::schema(format!("{} needs Mailbox/EmailAddress", op.tag_name().name())))
}

/// `t:UserId/t:PrimarySmtpAddress`.
pub fn parse_user_id(node: Node<'_, '_>) -> Result<String, ProtoError> {
    child(node, ns::TYPES, "PrimarySmtpAddress").map(text).filter(|a| !a.is_empty()).ok_or_else(|| {
        ProtoError::new(ResponseCode::ErrorInvalidRequest, "A delegate must be named by PrimarySmtpAddress.")
    })
}

/// `t:DelegateUser` elements.
pub fn parse_delegate_users(node: Node<'_, '_>) -> Result<Vec<Delegate>, ProtoError> {
    let t = ns::TYPES;
    children(node)
        .map(|du| {
            let uid = child(du, t, "UserId").ok_or_else(|| ProtoError::schema("DelegateUser needs UserId"))?;
            let address = parse_user_id(uid)?;
            let mut permissions = Vec::new();
            if let Some(p) = child(du, t, "DelegatePermissions") {
                for (folder, element) in FOLDERS {
                    if let Some(l) = child(p, t, element).map(text) {
                        if !LEVELS.contains(&l.as_str()) {
                            return Err(ProtoError::new(
                                ResponseCode::ErrorNotSupported,
                                format!("The permission level {l} is not supported (None, Reviewer, Author, Editor)."),
                            ));
                        }
                        permissions.push(((*folder).to_owned(), l));
                    }
                }
            }
            let flag = |n: &str| child(du, t, n).map(text).and_then(|v| parse_bool(&v)).unwrap_or(false);
            Ok(Delegate {
                address,
                permissions,
                receive_copies: flag("ReceiveCopiesOfMeetingMessages"),
                view_private: flag("ViewPrivateItems"),
            })
        })
        .collect()
}

/// One delegate's outcome: the delegate with its display name, or an error code and text.
pub type Entry = Result<(Delegate, String), (ResponseCode, String)>;

/// A whole delegate response: `ResponseClass` on the response element itself, one message per
/// delegate (`Ok((delegate, display name))` or an error), and DeliverMeetingRequests.
pub fn render(op: &str, entries: &[Entry], deliver: Option<&str>, permissions: bool) -> String {
    let mut w = Writer::new();
    w.start(&format!("m:{op}Response"), &[("ResponseClass", "Success")]).leaf("m:ResponseCode", "NoError");
    w.start("m:ResponseMessages", &[]);
    for e in entries {
        match e {
            Ok((d, name)) => {
                w.start("m:DelegateUserResponseMessageType", &[("ResponseClass", "Success")])
                    .leaf("m:ResponseCode", "NoError");
                w.start("m:DelegateUser", &[]);
                w.start("t:UserId", &[]).leaf("t:PrimarySmtpAddress", &d.address).leaf("t:DisplayName", name).end();
                if permissions {
                    w.start("t:DelegatePermissions", &[]);
                    for (folder, element) in FOLDERS {
                        w.leaf(&format!("t:{element}"), d.level(folder));
                    }
                    w.end();
                }
                w.leaf("t:ReceiveCopiesOfMeetingMessages", if d.receive_copies { "true" } else { "false" });
                w.leaf("t:ViewPrivateItems", if d.view_private { "true" } else { "false" });
                w.end().end();
            }
            Err((code, msg)) => {
                w.start("m:DelegateUserResponseMessageType", &[("ResponseClass", "Error")])
                    .leaf("m:MessageText", msg)
                    .leaf("m:ResponseCode", code.as_str())
                    .leaf("m:DescriptiveLinkKey", "0")
                    .end();
            }
        }
    }
    w.end();
    if let Some(d) = deliver {
        w.leaf("m:DeliverMeetingRequests", d);
    }
    w.finish()
}
