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
use tandem_ews_client::EwsClientError;
use tandem_ews_proto::ops::im_items::{ImItemList, OTHER_CONTACTS};
use tandem_sip_proto::xcap::{self, Document, Entry, List, Selector, Target, XcapError};

use crate::exchange_connector::ExchangeConnector;
use crate::store::{FeContact, FeGroup, FrontendStore, ListLocation};
use crate::ucs::{self, MailboxList};

/// The XCAP root on the Front End's HTTPS listener.
pub const ROOT: &str = "/xcap";

#[derive(Debug)]
struct XcapState {
    directory: Directory,
    connector: Arc<ExchangeConnector>,
    fe: FrontendStore,
    realm: String,
}

/// The XCAP routes (`/xcap/…`).
pub fn routes(directory: Directory, connector: Arc<ExchangeConnector>, fe: FrontendStore, domain: &str) -> Router {
    let state = Arc::new(XcapState { directory, connector, fe, realm: domain.to_owned() });
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
    let aor = user.sip_uri.key();
    let policies = s.fe.user_services_policies().await.map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let unavailable = |e: crate::store::DataError| Refusal::Unavailable(e.to_string());
    let state = match s.fe.contact_list_state(&aor).await.map_err(unavailable)? {
        Some(st) => st,
        // The first use of the list pins where it lives (see `calendar_presence::contact_list`).
        None => {
            let here = ucs::location(None, ucs::ucs_allowed(&policies, &aor));
            s.fe.pin_contact_list_location(&aor, here).await.map_err(unavailable)?
        }
    };
    if state.location == ListLocation::FrontEnd {
        return front_end(s, &aor, &parts.method, &parts.headers, &target.selector, &body).await;
    }
    let mailbox =
        s.connector.mailbox(&user.smtp_address.to_string()).await.map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let mut list = MailboxList::read(s.connector.client(), &mailbox).await.map_err(refusal)?;
    let current = document_of(&list.list);
    let etag = current.etag();
    check_preconditions(&parts.method, &parts.headers, &etag)?;
    if parts.method == Method::GET {
        return get(&current, &etag, &target.selector);
    }
    let status = match (parts.method.clone(), &target.selector) {
        (Method::PUT, Selector::Entry { list: name, uri }) => {
            let entry = entry_for(&body, uri)?;
            check_sip(&entry)?;
            check_before_writing(
                &s.directory,
                &list,
                std::slice::from_ref(&List { name: name.clone(), entries: vec![entry.clone()] }),
            )
            .await?;
            if list.add(name, &entry.uri, entry.display_name.as_deref()).await.map_err(refusal)? {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            }
        }
        (Method::PUT, Selector::List { name }) => {
            let new = list_for(&body, name)?;
            sync(&s.directory, &mut list, &current, std::slice::from_ref(&new), false).await?;
            StatusCode::OK
        }
        (Method::PUT, Selector::Document) => {
            let doc = Document::parse(&body)?;
            sync(&s.directory, &mut list, &current, &doc.lists, true).await?;
            StatusCode::OK
        }
        (Method::DELETE, Selector::Entry { list: name, uri }) => {
            if current.list(name).and_then(|l| l.entry(uri)).is_none() {
                return Err(XcapError::NotFound(format!("entry `{uri}` in list `{name}`")).into());
            }
            list.remove(name, uri, false).await.map_err(refusal)?;
            StatusCode::OK
        }
        (Method::DELETE, _) => return Err(no_delete()),
        _ => return Ok(not_allowed()),
    };
    // The document's new entity tag, from the list as the mailbox now has it (one read for the
    // whole edit, so the tag is the one the next GET answers).
    let after = s.connector.client().get_im_item_list(&mailbox).await.map_err(refusal)?;
    Ok(answer(status, &document_of(&after).etag(), None))
}

fn no_delete() -> Refusal {
    XcapError::Constraint(
        "the contact list and its groups are not deleted over XCAP: delete its entries (or PUT the list without them)"
            .into(),
    )
    .into()
}

fn not_allowed() -> Response {
    let mut r = (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, PUT, DELETE"));
    r
}

/// A GET of the document, a list or an entry.
fn get(current: &Document, etag: &str, selector: &Selector) -> Result<Response, Refusal> {
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
    Ok(answer(StatusCode::OK, etag, Some((kind, text))))
}

/// The `<entry>` a PUT to an entry selector carries, checked against the selected uri.
fn entry_for(body: &[u8], uri: &str) -> Result<Entry, Refusal> {
    let entry = Entry::parse_element(body)?;
    if !entry.uri.eq_ignore_ascii_case(uri) {
        return Err(XcapError::Constraint(format!(
            "the entry's uri `{}` is not the `{uri}` the request URI selects",
            entry.uri
        ))
        .into());
    }
    Ok(entry)
}

/// The `<list>` a PUT to a list selector carries, checked against the selected name.
fn list_for(body: &[u8], name: &str) -> Result<List, Refusal> {
    let doc = Document::parse(&wrap_list(body))?;
    let [new] = doc.lists.as_slice() else {
        return Err(XcapError::Schema("list element: the body must be one list".into()).into());
    };
    if new.name != *name {
        return Err(
            XcapError::Constraint(format!("the list's name `{}` is not the `{name}` selected", new.name)).into()
        );
    }
    Ok(new.clone())
}

fn check_sip(entry: &Entry) -> Result<(), Refusal> {
    if !entry.uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("sip:")) {
        return Err(XcapError::Constraint(format!("`{}`: only sip: contacts are kept here", entry.uri)).into());
    }
    Ok(())
}

/// The document a Front End store list is.
fn document_of_front_end(groups: &[FeGroup]) -> Document {
    Document {
        lists: groups
            .iter()
            .map(|g| List {
                name: g.name.clone(),
                entries: g
                    .contacts
                    .iter()
                    .map(|c| Entry { uri: c.uri.clone(), display_name: c.display_name.clone() })
                    .collect(),
            })
            .collect(),
    }
}

/// The contacts of a `<list>` as the Front End store keeps them (each address once).
fn contacts_of(l: &List) -> Vec<FeContact> {
    let mut out: Vec<FeContact> = Vec::new();
    for e in &l.entries {
        let uri = ucs::normalize(&e.uri);
        if !out.iter().any(|c| c.uri == uri) {
            out.push(FeContact { uri, display_name: e.display_name.clone() });
        }
    }
    out
}

/// Serves a list that lives in the Front End store (the user's policy keeps it out of the
/// mailbox, or it was rolled back, or it waits for its migration): each edit computes the new
/// list, checks it whole ([`check_front_end_list`]) and writes it in one transaction, which the
/// running Front End's list watch picks up within a second.
async fn front_end(
    s: &XcapState,
    aor: &str,
    method: &Method,
    headers: &HeaderMap,
    selector: &Selector,
    body: &[u8],
) -> Result<Response, Refusal> {
    let unavailable = |e: crate::store::DataError| Refusal::Unavailable(e.to_string());
    let mut groups = s.fe.fe_contact_list(aor).await.map_err(unavailable)?;
    let current = document_of_front_end(&groups);
    let etag = current.etag();
    check_preconditions(method, headers, &etag)?;
    if *method == Method::GET {
        return get(&current, &etag, selector);
    }
    let status = match (method.clone(), selector) {
        (Method::PUT, Selector::Entry { list: name, uri }) => {
            let entry = entry_for(body, uri)?;
            check_sip(&entry)?;
            let contact = FeContact { uri: ucs::normalize(&entry.uri), display_name: entry.display_name.clone() };
            let created = !groups.iter().any(|g| g.contacts.iter().any(|c| c.uri == contact.uri));
            match groups.iter_mut().find(|g| g.name == *name) {
                Some(g) => match g.contacts.iter_mut().find(|c| c.uri == contact.uri) {
                    Some(c) => *c = contact,
                    None => g.contacts.push(contact),
                },
                None => groups.push(FeGroup { name: name.clone(), contacts: vec![contact] }),
            }
            if created { StatusCode::CREATED } else { StatusCode::OK }
        }
        (Method::PUT, Selector::List { name }) => {
            let g = FeGroup { name: name.clone(), contacts: contacts_of(&list_for(body, name)?) };
            match groups.iter_mut().find(|old| old.name == *name) {
                Some(old) => *old = g,
                None => groups.push(g),
            }
            StatusCode::OK
        }
        (Method::PUT, Selector::Document) => {
            let doc = Document::parse(body)?;
            for l in &doc.lists {
                for e in &l.entries {
                    check_sip(e)?;
                }
            }
            groups = doc.lists.iter().map(|l| FeGroup { name: l.name.clone(), contacts: contacts_of(l) }).collect();
            StatusCode::OK
        }
        (Method::DELETE, Selector::Entry { list: name, uri }) => {
            let uri = ucs::normalize(uri);
            let g = groups
                .iter_mut()
                .find(|g| g.name == *name && g.contacts.iter().any(|c| c.uri == uri))
                .ok_or_else(|| XcapError::NotFound(format!("entry `{uri}` in list `{name}`")))?;
            g.contacts.retain(|c| c.uri != uri);
            StatusCode::OK
        }
        (Method::DELETE, _) => return Err(no_delete()),
        _ => return Ok(not_allowed()),
    };
    check_front_end_list(&s.directory, &groups).await.map_err(|e| match e {
        FrontEndListError::Refused(e) => Refusal::Xcap(e),
        FrontEndListError::Directory(e) => Refusal::Unavailable(e),
    })?;
    s.fe.put_fe_contact_list(aor, &groups, None).await.map_err(unavailable)?;
    Ok(answer(status, &document_of_front_end(&groups).etag(), None))
}

/// Why a Front End store list is refused.
#[derive(Debug)]
pub enum FrontEndListError {
    /// The list breaks a rule (an XCAP constraint failure).
    Refused(XcapError),
    /// The directory could not be asked.
    Directory(String),
}

impl std::fmt::Display for FrontEndListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrontEndListError::Refused(e) => write!(f, "{e}"),
            FrontEndListError::Directory(e) => write!(f, "the directory cannot be read: {e}"),
        }
    }
}

/// The rules a Front End store list keeps (those of the mailbox's list, so a migration never
/// meets a list the mailbox refuses): SIP addresses of users of the directory, at most 1,000
/// contacts and 64 groups, group names unique and 1 to 256 characters.
pub async fn check_front_end_list(directory: &Directory, groups: &[FeGroup]) -> Result<(), FrontEndListError> {
    let refuse = |why: String| FrontEndListError::Refused(XcapError::Constraint(why));
    if groups.len() > 64 {
        return Err(refuse(format!("{} groups: the contact list holds at most 64", groups.len())));
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut unique: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut names: std::collections::HashSet<String> = std::collections::HashSet::new();
    for g in groups {
        if g.name.trim().is_empty() || g.name.chars().count() > 256 {
            return Err(refuse(format!("`{}`: a group name is 1 to 256 characters", g.name)));
        }
        if !names.insert(g.name.to_lowercase()) {
            return Err(refuse(format!("two groups are named `{}`", g.name)));
        }
        for c in &g.contacts {
            if unique.insert(c.uri.as_str()) {
                seen.push(c.uri.as_str());
            }
        }
    }
    if seen.len() > ucs::MAX_CONTACTS {
        return Err(refuse(format!("{} contacts: the contact list holds at most {}", seen.len(), ucs::MAX_CONTACTS)));
    }
    for uri in seen {
        if !uri.starts_with("sip:") {
            return Err(refuse(format!("`{uri}`: only sip: contacts are kept here")));
        }
        let found = directory.find(uri).await.map_err(|e| FrontEndListError::Directory(e.to_string()))?;
        if !found.is_some_and(|u| u.can_use_sip()) {
            return Err(refuse(format!("`{uri}` is no user of this organisation")));
        }
    }
    Ok(())
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

/// What the mailbox would refuse halfway through an edit, refused before anything is written:
/// entries that are not `sip:`, addresses new to the list that no SIP user of the directory has,
/// and more groups than a list holds (64).
async fn check_before_writing(directory: &Directory, list: &MailboxList<'_>, wanted: &[List]) -> Result<(), Refusal> {
    let mut groups: Vec<&str> = list.list.groups.iter().map(|g| g.display_name.as_str()).collect();
    for l in wanted {
        if !groups.contains(&l.name.as_str()) {
            groups.push(&l.name);
        }
        for e in &l.entries {
            check_sip(e)?;
            if list.persona(&e.uri).is_some() {
                continue;
            }
            let user =
                directory.find(&ucs::normalize(&e.uri)).await.map_err(|err| Refusal::Unavailable(err.to_string()))?;
            if !user.is_some_and(|u| u.can_use_sip()) {
                return Err(XcapError::Constraint(format!("`{}` is no user of this organisation", e.uri)).into());
            }
        }
    }
    if groups.len() > 64 {
        return Err(XcapError::Constraint(format!("{} groups: the contact list holds at most 64", groups.len())).into());
    }
    Ok(())
}

/// Makes the lists `wanted` hold exactly their entries in the mailbox (adds first, so a contact
/// moving between groups is never off the list); with `whole`, lists of `current` that `wanted`
/// leaves out are emptied too (their groups stay: the default ones cannot go). The list is read
/// once; new contacts for Other Contacts alone are one CreateItem, every other edit one Im*
/// request, and `list` is kept current from the answers.
async fn sync(
    directory: &Directory,
    list: &mut MailboxList<'_>,
    current: &Document,
    wanted: &[List],
    whole: bool,
) -> Result<(), Refusal> {
    check_before_writing(directory, list, wanted).await?;
    // The bulk path: contacts new to the list that the document puts in Other Contacts alone
    // are made by one CreateItem (checked here first as AddNewImContactToGroup checks each).
    let other = list.list.groups.iter().find(|g| g.group_type == OTHER_CONTACTS).map(|g| g.display_name.clone());
    if let Some(other) = other {
        let mut bulk: Vec<(String, String, String)> = Vec::new();
        for l in wanted.iter().filter(|l| l.name == other) {
            for e in &l.entries {
                let uri = ucs::normalize(&e.uri);
                let elsewhere = wanted.iter().any(|w| w.name != other && w.entry(&e.uri).is_some());
                if elsewhere || list.persona(&uri).is_some() || bulk.iter().any(|(u, _, _)| *u == uri) {
                    continue;
                }
                let user = directory
                    .find(&uri)
                    .await
                    .map_err(|err| Refusal::Unavailable(err.to_string()))?
                    .filter(|u| u.can_use_sip())
                    .ok_or_else(|| XcapError::Constraint(format!("`{uri}` is no user of this organisation")))?;
                let name = e.display_name.clone().filter(|d| !d.trim().is_empty()).unwrap_or(user.display_name);
                bulk.push((uri, name, user.smtp_address.to_string()));
            }
        }
        if list.list.personas.len() + bulk.len() > ucs::MAX_CONTACTS {
            return Err(XcapError::Constraint(format!(
                "the contact list would hold {} contacts; it holds at most {}",
                list.list.personas.len() + bulk.len(),
                ucs::MAX_CONTACTS
            ))
            .into());
        }
        list.create_other_contacts(&bulk).await.map_err(refusal)?;
    }
    for l in wanted {
        list.group(&l.name).await.map_err(refusal)?;
        for e in &l.entries {
            if current.list(&l.name).and_then(|c| c.entry(&e.uri)).is_none() {
                list.add(&l.name, &e.uri, e.display_name.as_deref()).await.map_err(refusal)?;
            }
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
            // Whether the new document keeps this contact in another list.
            let keep = wanted.iter().any(|w| w.name != c.name && w.entry(&e.uri).is_some());
            list.remove(&c.name, &e.uri, keep).await.map_err(refusal)?;
        }
    }
    Ok(())
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
