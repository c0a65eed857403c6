//! XCAP (RFC 4825) for the contact list: the Front End serves each user's Unified Contact Store
//! as their `resource-lists` document (RFC 4826) at
//! `/xcap/resource-lists/users/<sip uri>/index`, one `<list>` per contact group and one `<entry>`
//! per contact. The list stays in the mailbox: every read is GetImItemList and every edit an Im*
//! operation through the Exchange connector (S2S tokens acting as the user), so an edit here is
//! at once what Outlook-style clients and the SIP list subscription see, and the mailbox's own
//! change notification brings it to the user's SIP clients.
//!
//! Signed in with the user's own password (HTTP Basic over TLS, under the directory's lockout
//! policy); a user reads and edits only their own document (403 for any other, whether it
//! exists or not). Entity tags and `If-Match` / `If-None-Match` as RFC 4825 §7.11 says.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tandem_directory::{Directory, SignIn, User};
use tandem_ews_client::{EwsClientError, Mailbox};
use tandem_ews_proto::ops::im_items::{ImGroup, ImItemList, Persona};
use tandem_ews_proto::ops::{add_im_contact_to_group, add_new_im_contact_to_group, remove_im_contact_from_group};
use tandem_sip_proto::xcap::{self, Document, Entry, List, Selector, Target, XcapError};

use crate::exchange_connector::ExchangeConnector;

/// The XCAP root on the Front End's HTTPS listener.
pub const ROOT: &str = "/xcap";

#[derive(Debug)]
struct XcapState {
    directory: Directory,
    connector: Arc<ExchangeConnector>,
    realm: String,
}

/// The XCAP routes (`/xcap/…`).
pub fn routes(directory: Directory, connector: Arc<ExchangeConnector>, domain: &str) -> Router {
    let state = Arc::new(XcapState { directory, connector, realm: domain.to_owned() });
    Router::new().route(&format!("{ROOT}/{{*path}}"), axum::routing::any(handle)).with_state(state)
}

/// Why a request failed, as the answer it gets.
enum Refusal {
    Xcap(XcapError),
    Status(StatusCode, &'static str),
    Unavailable(String),
}

impl From<XcapError> for Refusal {
    fn from(e: XcapError) -> Refusal {
        Refusal::Xcap(e)
    }
}

impl Refusal {
    fn into_response(self, realm: &str) -> Response {
        match self {
            Refusal::Xcap(e) => {
                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::CONFLICT);
                if status == StatusCode::CONFLICT {
                    ([(header::CONTENT_TYPE, xcap::ERROR_TYPE)], e.render()).into_response().with_status(status)
                } else {
                    (status, format!("{e}\n")).into_response()
                }
            }
            Refusal::Status(StatusCode::UNAUTHORIZED, why) => {
                let mut r = (StatusCode::UNAUTHORIZED, why).into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
            Refusal::Status(status, why) => (status, why).into_response(),
            Refusal::Unavailable(why) => {
                tracing::warn!(error = %why, "xcap: the mailbox cannot be reached");
                let mut r =
                    (StatusCode::SERVICE_UNAVAILABLE, "the contact list in the mailbox cannot be reached now\n")
                        .into_response();
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
                r
            }
        }
    }
}

trait WithStatus {
    fn with_status(self, status: StatusCode) -> Response;
}

impl WithStatus for Response {
    fn with_status(mut self, status: StatusCode) -> Response {
        *self.status_mut() = status;
        self
    }
}

async fn handle(State(s): State<Arc<XcapState>>, req: Request) -> Response {
    match serve(&s, req).await {
        Ok(r) => r,
        Err(refusal) => refusal.into_response(&s.realm),
    }
}

async fn serve(s: &XcapState, req: Request) -> Result<Response, Refusal> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().strip_prefix(ROOT).unwrap_or("").trim_start_matches('/');
    let target = Target::parse(path)?;
    let user = sign_in(s, &parts.headers, &parts.extensions).await?;
    let owner: Option<tandem_types::SipUri> = target.xui.parse().ok();
    if owner.map(|o| o.key()) != Some(user.sip_uri.key()) {
        return Err(Refusal::Status(StatusCode::FORBIDDEN, "a user reads and edits only their own contact list\n"));
    }
    if !user.can_use_mailbox() {
        return Err(XcapError::NotFound("the user has no mailbox, so no contact list".into()).into());
    }
    let body = match parts.method {
        Method::PUT => axum::body::to_bytes(body, xcap::MAX_BODY).await.map_err(|_| XcapError::TooLarge)?,
        _ => Default::default(),
    };
    let mailbox =
        s.connector.mailbox(&user.smtp_address.to_string()).await.map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let editor = Editor { s, mailbox };
    let list = editor.read().await?;
    let current = document_of(&list);
    let etag = current.etag();
    check_preconditions(&parts.method, &parts.headers, &etag)?;
    match (parts.method.clone(), &target.selector) {
        (Method::GET, selector) => {
            let (kind, text) = match selector {
                Selector::Document => (xcap::DOCUMENT_TYPE, current.render()),
                Selector::List { name } => {
                    let l = current.list(name).ok_or_else(|| XcapError::NotFound(format!("list `{name}`")))?;
                    (xcap::ELEMENT_TYPE, l.render_element())
                }
                Selector::Entry { list, uri } => {
                    let e = current
                        .list(list)
                        .and_then(|l| l.entry(uri))
                        .ok_or_else(|| XcapError::NotFound(format!("entry `{uri}` in list `{list}`")))?;
                    (xcap::ELEMENT_TYPE, e.render_element())
                }
            };
            Ok(answer(StatusCode::OK, &etag, Some((kind, text))))
        }
        (Method::PUT, Selector::Entry { list, uri }) => {
            let entry = Entry::parse_element(&body)?;
            if !entry.uri.eq_ignore_ascii_case(uri) {
                return Err(XcapError::Constraint(format!(
                    "the entry's uri `{}` is not the `{uri}` the request URI selects",
                    entry.uri
                ))
                .into());
            }
            let created = editor.put_entry(list, &entry).await?;
            editor.done(if created { StatusCode::CREATED } else { StatusCode::OK }).await
        }
        (Method::PUT, Selector::List { name }) => {
            let doc = Document::parse(&wrap_list(&body))?;
            let [new] = doc.lists.as_slice() else {
                return Err(XcapError::Schema("list element: the body must be one list".into()).into());
            };
            if new.name != *name {
                return Err(XcapError::Constraint(format!("the list's name `{}` is not the `{name}` selected", new.name))
                    .into());
            }
            editor.sync(&current, std::slice::from_ref(new), false).await?;
            editor.done(StatusCode::OK).await
        }
        (Method::PUT, Selector::Document) => {
            let doc = Document::parse(&body)?;
            editor.sync(&current, &doc.lists, true).await?;
            editor.done(StatusCode::OK).await
        }
        (Method::DELETE, Selector::Entry { list, uri }) => {
            if current.list(list).and_then(|l| l.entry(uri)).is_none() {
                return Err(XcapError::NotFound(format!("entry `{uri}` in list `{list}`")).into());
            }
            editor.delete_entry(list, uri, &[]).await?;
            editor.done(StatusCode::OK).await
        }
        (Method::DELETE, _) => Err(XcapError::Constraint(
            "the contact list and its groups are not deleted over XCAP: delete its entries (or PUT the list without them)"
                .into(),
        )
        .into()),
        _ => {
            let mut r = (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, PUT, DELETE"));
            Ok(r)
        }
    }
}

/// The user the request's Basic credentials sign in, under the directory's lockout policy.
async fn sign_in(s: &XcapState, headers: &HeaderMap, ext: &axum::http::Extensions) -> Result<User, Refusal> {
    let unauthorized = Refusal::Status(StatusCode::UNAUTHORIZED, "sign in with your account and password\n");
    let Some((login, password)) = tandem_http::basic::credentials(headers) else { return Err(unauthorized) };
    let source = ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    match s.directory.sign_in(&login, &password, source).await {
        Ok(SignIn::Accepted(u)) if u.can_use_sip() => Ok(u),
        Ok(_) => Err(unauthorized),
        Err(e) => Err(Refusal::Unavailable(e.to_string())),
    }
}

/// RFC 4825 §7.11 with RFC 9110: `If-Match` needs the current tag (or `*`), `If-None-Match`
/// the absence of it (a GET then answers 304).
fn check_preconditions(method: &Method, headers: &HeaderMap, etag: &str) -> Result<(), Refusal> {
    let matches = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').any(|t| t.trim() == "*" || t.trim() == etag))
    };
    if matches(header::IF_MATCH) == Some(false) {
        return Err(Refusal::Status(StatusCode::PRECONDITION_FAILED, "the document changed (If-Match)\n"));
    }
    if matches(header::IF_NONE_MATCH) == Some(true) {
        return Err(if *method == Method::GET {
            Refusal::Status(StatusCode::NOT_MODIFIED, "")
        } else {
            Refusal::Status(StatusCode::PRECONDITION_FAILED, "the document exists (If-None-Match)\n")
        });
    }
    Ok(())
}

fn answer(status: StatusCode, etag: &str, body: Option<(&'static str, String)>) -> Response {
    let mut r = match body {
        Some((kind, text)) => ([(header::CONTENT_TYPE, kind)], text).into_response(),
        None => Response::new(Body::empty()),
    };
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// A `<list>` element sent alone, wrapped into a document so one reader serves both.
fn wrap_list(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start();
    let text = text.strip_prefix("<?xml").map_or(text, |r| r.split_once("?>").map_or("", |(_, rest)| rest));
    let open = format!("<resource-lists xmlns=\"{}\">", xcap::NS);
    let mut out = open.into_bytes();
    if text.contains("xmlns") {
        out.extend_from_slice(text.as_bytes());
    } else {
        out.extend_from_slice(text.replacen("<list", &format!("<list xmlns=\"{}\"", xcap::NS), 1).as_bytes());
    }
    out.extend_from_slice(b"</resource-lists>");
    out
}

/// The document a contact list is: each group a list (in the store's order), each contact with
/// an IM address an entry of the groups that hold it.
fn document_of(list: &ImItemList) -> Document {
    let lists = list
        .groups
        .iter()
        .map(|g| List {
            name: g.display_name.clone(),
            entries: list
                .members_of(g)
                .into_iter()
                .filter_map(|p| {
                    let uri = p.im_address.clone()?;
                    let display_name = Some(p.display_name.clone()).filter(|d| !d.trim().is_empty());
                    Some(Entry { uri, display_name })
                })
                .collect(),
        })
        .collect();
    Document { lists }
}

/// Edits one user's list in the mailbox.
struct Editor<'a> {
    s: &'a XcapState,
    mailbox: Mailbox,
}

impl Editor<'_> {
    async fn read(&self) -> Result<ImItemList, Refusal> {
        self.s.connector.client().get_im_item_list(&self.mailbox).await.map_err(refusal)
    }

    /// The answer to an edit: the document's new entity tag.
    async fn done(&self, status: StatusCode) -> Result<Response, Refusal> {
        let etag = document_of(&self.read().await?).etag();
        Ok(answer(status, &etag, None))
    }

    /// The group named `name`, made when there is none.
    async fn group(&self, list: &ImItemList, name: &str) -> Result<ImGroup, Refusal> {
        if let Some(g) = list.groups.iter().find(|g| g.display_name == name) {
            return Ok(g.clone());
        }
        self.s.connector.client().add_im_group(&self.mailbox, name).await.map_err(refusal)
    }

    /// Puts `entry` in the list named `name`; true when the contact is new to the whole list.
    async fn put_entry(&self, name: &str, entry: &Entry) -> Result<bool, Refusal> {
        if !entry.uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("sip:")) {
            return Err(XcapError::Constraint(format!("`{}`: only sip: contacts are kept here", entry.uri)).into());
        }
        let list = self.read().await?;
        let group = self.group(&list, name).await?;
        let client = self.s.connector.client();
        match persona(&list, &entry.uri) {
            Some(p) if group.members.iter().any(|m| m.id == p.source.id) => Ok(false),
            Some(p) => {
                let req =
                    add_im_contact_to_group::Request { contact_id: p.source.clone(), group_id: Some(group.id.clone()) };
                client.add_im_contact_to_group(&self.mailbox, &req).await.map_err(refusal)?;
                Ok(false)
            }
            None => {
                let req = add_new_im_contact_to_group::Request {
                    im_address: entry.uri.clone(),
                    display_name: entry.display_name.clone(),
                    group_id: Some(group.id.clone()),
                };
                client.add_new_im_contact_to_group(&self.mailbox, &req).await.map_err(refusal)?;
                Ok(true)
            }
        }
    }

    /// Takes `uri` out of the list named `name`: out of the whole contact list when no other
    /// group holds it and `keep_in` names none of the others.
    async fn delete_entry(&self, name: &str, uri: &str, keep_in: &[String]) -> Result<(), Refusal> {
        let list = self.read().await?;
        let (Some(group), Some(p)) = (list.groups.iter().find(|g| g.display_name == name), persona(&list, uri)) else {
            return Ok(());
        };
        let elsewhere =
            list.groups.iter().any(|g| g.display_name != name && g.members.iter().any(|m| m.id == p.source.id))
                || keep_in.iter().any(|k| k != name);
        let client = self.s.connector.client();
        if elsewhere {
            let req =
                remove_im_contact_from_group::Request { contact_id: p.source.clone(), group_id: group.id.clone() };
            client.remove_im_contact_from_group(&self.mailbox, &req).await.map_err(refusal)
        } else {
            client.remove_contact_from_im_list(&self.mailbox, &p.source).await.map_err(refusal)
        }
    }

    /// Makes the lists `wanted` hold exactly their entries (adds first, so a contact moving
    /// between groups is never off the list); with `whole`, lists of `current` that `wanted`
    /// leaves out are emptied too (their groups stay: the default ones cannot go).
    async fn sync(&self, current: &Document, wanted: &[List], whole: bool) -> Result<(), Refusal> {
        for l in wanted {
            for e in &l.entries {
                if current.list(&l.name).and_then(|c| c.entry(&e.uri)).is_none() {
                    self.put_entry(&l.name, e).await?;
                }
            }
            if l.entries.is_empty() && current.list(&l.name).is_none() {
                let list = self.read().await?;
                self.group(&list, &l.name).await?;
            }
        }
        for c in &current.lists {
            let target = wanted.iter().find(|w| w.name == c.name);
            if target.is_none() && !whole {
                continue;
            }
            for e in &c.entries {
                if target.and_then(|t| t.entry(&e.uri)).is_some() {
                    continue;
                }
                // Where else the new document keeps this contact.
                let keep_in: Vec<String> =
                    wanted.iter().filter(|w| w.entry(&e.uri).is_some()).map(|w| w.name.clone()).collect();
                self.delete_entry(&c.name, &e.uri, &keep_in).await?;
            }
        }
        Ok(())
    }
}

fn persona<'a>(list: &'a ImItemList, uri: &str) -> Option<&'a Persona> {
    list.personas.iter().find(|p| p.im_address.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(uri)))
}

/// An EWS failure as the XCAP answer: the contact store's rules are constraint failures, the
/// rest means the mailbox cannot serve now.
fn refusal(e: EwsClientError) -> Refusal {
    match e.response_code() {
        Some("ErrorNameResolutionNoResults") => {
            Refusal::Xcap(XcapError::Constraint("the address is no user of this organisation".into()))
        }
        Some("ErrorImContactLimitReached") => {
            Refusal::Xcap(XcapError::Constraint("the contact list holds the most contacts it may (1,000)".into()))
        }
        Some("ErrorImGroupLimitReached") => {
            Refusal::Xcap(XcapError::Constraint("the contact list holds the most groups it may (64)".into()))
        }
        Some("ErrorImGroupDisplayNameAlreadyExists" | "ErrorInvalidImGroupId" | "ErrorInvalidImContactId") => {
            Refusal::Xcap(XcapError::Constraint(e.to_string()))
        }
        _ => Refusal::Unavailable(e.to_string()),
    }
}
