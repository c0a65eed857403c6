//! A typed client for EWS and SOAP Autodiscover, as a Skype for Business Front End calls
//! Exchange: Autodiscover (GetUserSettings) finds a user's EWS URL, cached for
//! [`AUTODISCOVER_TTL`]; each request carries a bearer token acting as the user, asked of a
//! caller-supplied [`TokenProvider`] (so this crate knows nothing of how tokens are minted);
//! requests are built and answers read by `tandem-ews-proto`, answers are bounded in size and
//! requests in time, and every failure is a typed [`EwsClientError`] naming its hop.

mod error;
mod redirect;
mod stream;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_ews_proto::autodiscover::get_user_settings;
use tandem_ews_proto::ops::create_item::{self, ItemData};
use tandem_ews_proto::ops::get_events::{self, UnsubscribeRequest};
use tandem_ews_proto::ops::get_user_availability::{self, FreeBusy};
use tandem_ews_proto::ops::get_user_oof_settings::{self, OofSettings};
use tandem_ews_proto::ops::get_user_photo;
use tandem_ews_proto::ops::subscribe::{self, Subscription};
use tandem_ews_proto::ops::{
    self, BuildRequest, add_im_contact_to_group, add_im_group, add_new_im_contact_to_group, delete_item, find_item,
    get_folder, get_im_item_list, get_item, get_streaming_events, im_items, remove_contact_from_im_list,
    remove_im_contact_from_group, set_im_list_migration_completed, update_item,
};
use tandem_ews_proto::render::FolderView;
use tandem_ews_proto::reply::{self, MessageError, ReplyError};
use tandem_ews_proto::types::ItemRef;
use tandem_http::client::FetchError;

pub use error::{EwsClientError, TokenError};
pub use redirect::{MAX_REDIRECTS, RedirectPolicy, autodiscover_url_for};
pub use stream::EventStream;

/// How long an Autodiscover answer (a user's EWS URL) is reused.
pub const AUTODISCOVER_TTL: Duration = Duration::from_secs(300);

/// A bearer token, or why there is none.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Arc<str>, TokenError>> + Send + 'a>>;

/// Gives the bearer token to act as a user at a service: `audience` is the host name of the URL
/// called (Autodiscover or EWS), `smtp` the user's primary SMTP address.
pub trait TokenProvider: Send + Sync {
    fn bearer<'a>(&'a self, audience: &'a str, smtp: &'a str) -> TokenFuture<'a>;
}

/// Bounds on one exchange with a server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest answer read (one envelope, for a stream).
    pub max_answer_bytes: usize,
    /// Time allowed for a request and its answer (a stream gets its connection timeout more).
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // Items with attachments are the largest answers the Front End asks for; the time is
        // the outbound client's everywhere in Tandem (`tandem_http::client::FETCH_TIMEOUT`).
        Limits { max_answer_bytes: 16 * 1024 * 1024, timeout: tandem_http::client::FETCH_TIMEOUT }
    }
}

/// A user's mailbox as Autodiscover found it (or as the caller already knows it).
/// A GetUserPhoto answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPhoto {
    /// The answer's ETag header, to send back in `If-None-Match`.
    pub etag: Option<String>,
    pub has_changed: bool,
    /// The JPEG, when it changed.
    pub picture: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub smtp: String,
    pub ews_url: String,
}

/// A request made only to see how a service answers (Test-OAuthConnectivity, setup checks).
#[derive(Debug, Clone, Copy)]
pub enum Probe<'a> {
    /// SOAP Autodiscover GetUserSettings (ExternalEwsUrl) for `mailbox`.
    Autodiscover { mailbox: &'a str },
    /// EWS GetFolder of the Inbox (IdOnly).
    EwsInbox,
}

/// How a service answered a [`Probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub status: u16,
    /// `x-ms-diagnostics`, which says why a token was refused.
    pub diagnostics: Option<String>,
}

/// The client. `http` must trust the servers' certificates and resolve their names.
pub struct EwsClient {
    http: reqwest::Client,
    tokens: Arc<dyn TokenProvider>,
    limits: Limits,
    ews_urls: Mutex<HashMap<(String, String), (Instant, Mailbox)>>,
}

impl std::fmt::Debug for EwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwsClient").field("limits", &self.limits).finish_non_exhaustive()
    }
}

/// The host of a URL, lower-cased, without port or brackets: the token audience.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host =
        if host.starts_with('[') { host.split(']').next()?.trim_start_matches('[') } else { host.split(':').next()? };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn refused(from: &str, smtp: &str, target: &str, url: &str, reason: &str) -> EwsClientError {
    EwsClientError::RedirectRefused {
        from: from.to_owned(),
        smtp: smtp.to_owned(),
        target: target.to_owned(),
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The EWS URL in a GetUserSettings answer (InternalEwsUrl, else ExternalEwsUrl), or why none.
fn ews_url_of(answer: &get_user_settings::Response, smtp: &str) -> Result<String, EwsClientError> {
    answer
        .setting("InternalEwsUrl")
        .filter(|u| !u.is_empty())
        .or_else(|| answer.setting("ExternalEwsUrl").filter(|u| !u.is_empty()))
        .map(str::to_owned)
        .ok_or_else(|| {
            let code = match answer.users.first() {
                Some((get_user_settings::UserOutcome::Settings(_), _)) => "NoError".to_owned(),
                Some((get_user_settings::UserOutcome::InvalidUser(_), _)) => "InvalidUser".to_owned(),
                Some((get_user_settings::UserOutcome::RedirectAddress(_), _)) => "RedirectAddress".to_owned(),
                Some((get_user_settings::UserOutcome::RedirectUrl(_), _)) => "RedirectUrl".to_owned(),
                None => answer.error_code.clone(),
            };
            EwsClientError::NoEwsUrl { smtp: smtp.to_owned(), code }
        })
}

/// Who a request is sent as.
enum Auth<'a> {
    ActAs(&'a str),
    Bearer(&'a str),
    Anonymous,
}

impl EwsClient {
    pub fn new(http: reqwest::Client, tokens: Arc<dyn TokenProvider>) -> EwsClient {
        EwsClient::with_limits(http, tokens, Limits::default())
    }

    pub fn with_limits(http: reqwest::Client, tokens: Arc<dyn TokenProvider>, limits: Limits) -> EwsClient {
        EwsClient { http, tokens, limits, ews_urls: Mutex::new(HashMap::new()) }
    }

    async fn send(
        &self,
        url: &str,
        auth: Auth<'_>,
        action: &str,
        body: String,
        timeout: Duration,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, EwsClientError> {
        let token = match auth {
            Auth::ActAs(smtp) => {
                let audience = host_of(url).ok_or_else(|| EwsClientError::NoHost { url: url.to_owned() })?;
                let t = self
                    .tokens
                    .bearer(&audience, smtp)
                    .await
                    .map_err(|source| EwsClientError::Token { audience: audience.clone(), source })?;
                Some(t)
            }
            Auth::Bearer(t) => Some(Arc::from(t)),
            Auth::Anonymous => None,
        };
        let mut req = self
            .http
            .post(url)
            .timeout(timeout)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", action)
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(t) = token {
            req = req.bearer_auth(&*t);
        }
        req.send().await.map_err(|source| EwsClientError::Transport {
            url: url.to_owned(),
            cause: tandem_http::client::root_cause(&source),
            source,
        })
    }

    /// Reads an answer within the size limit, mapping 401 and other statuses to their errors; a
    /// 500 carrying a SOAP fault is the fault.
    async fn answer(
        &self,
        url: &str,
        operation: &'static str,
        resp: reqwest::Response,
    ) -> Result<String, EwsClientError> {
        let status = resp.status().as_u16();
        if status == 401 {
            let diagnostics = resp.headers().get("x-ms-diagnostics").and_then(|v| v.to_str().ok()).map(str::to_owned);
            return Err(EwsClientError::Unauthorized { url: url.to_owned(), diagnostics });
        }
        let body =
            tandem_http::client::read_limited(resp, self.limits.max_answer_bytes).await.map_err(|e| match e {
                FetchError::Transport { cause, source } => {
                    EwsClientError::Transport { url: url.to_owned(), cause, source }
                }
                _ => EwsClientError::TooLarge { url: url.to_owned(), limit: self.limits.max_answer_bytes },
            })?;
        let text = String::from_utf8(body)
            .map_err(|_| EwsClientError::Reply { operation, source: ReplyError::Xml(tandem_xml::XmlError::NotUtf8) })?;
        match status {
            200 => Ok(text),
            500 => match reply::parse(&text).and_then(|doc| reply::body(&doc).map(|_| ())) {
                Err(source @ ReplyError::Fault { .. }) => Err(EwsClientError::Reply { operation, source }),
                _ => Err(EwsClientError::Status { url: url.to_owned(), status }),
            },
            _ => Err(EwsClientError::Status { url: url.to_owned(), status }),
        }
    }

    /// Sends an EWS request acting as the mailbox's user and returns the answer's text.
    async fn call<R: BuildRequest>(&self, mailbox: &Mailbox, req: &R) -> Result<String, EwsClientError> {
        let url = &mailbox.ews_url;
        let body = req.envelope(ops::CLIENT_VERSION);
        let resp = self
            .send(url, Auth::ActAs(&mailbox.smtp), &ops::soap_action(R::OPERATION), body, self.limits.timeout, &[])
            .await?;
        self.answer(url, R::OPERATION, resp).await
    }

    /// SOAP Autodiscover GetUserSettings at `autodiscover_url`, acting as `smtp`.
    pub async fn get_user_settings(
        &self,
        autodiscover_url: &str,
        smtp: &str,
        settings: &[&str],
    ) -> Result<get_user_settings::Response, EwsClientError> {
        const OP: &str = "GetUserSettings";
        let req = get_user_settings::Request::new(smtp, settings);
        let action = format!("\"{}\"", tandem_ews_proto::autodiscover::action(OP));
        let resp = self
            .send(
                autodiscover_url,
                Auth::ActAs(smtp),
                &action,
                req.envelope(Some(autodiscover_url)),
                self.limits.timeout,
                &[],
            )
            .await?;
        let text = self.answer(autodiscover_url, OP, resp).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply(OP))?;
        get_user_settings::parse_response(&doc, &req).map_err(EwsClientError::reply(OP))
    }

    /// The user's mailbox: its EWS URL from Autodiscover (InternalEwsUrl, else ExternalEwsUrl),
    /// reused for [`AUTODISCOVER_TTL`]. Redirects are followed as the EWS Managed API follows
    /// them, at most [`MAX_REDIRECTS`] and never in a circle: RedirectAddress starts again with
    /// the new address (at the same URL when its domain is the same, else at
    /// `autodiscover.<its domain>`), RedirectUrl at the new URL; a redirect to another host only
    /// when `policy` allows that host, and only to `https://`. The mailbox returned is the one
    /// the redirects ended at, its address included.
    pub async fn discover(
        &self,
        autodiscover_url: &str,
        smtp: &str,
        policy: &RedirectPolicy,
    ) -> Result<Mailbox, EwsClientError> {
        let key = (autodiscover_url.to_owned(), smtp.to_owned());
        if let Some((at, mailbox)) = self.ews_urls.lock().unwrap_or_else(|p| p.into_inner()).get(&key)
            && at.elapsed() < AUTODISCOVER_TTL
        {
            return Ok(mailbox.clone());
        }
        let (mut url, mut address) = (autodiscover_url.to_owned(), smtp.to_owned());
        let mut seen = std::collections::HashSet::new();
        for hops in 0..=MAX_REDIRECTS {
            if !seen.insert((url.to_ascii_lowercase(), address.to_ascii_lowercase())) {
                return Err(EwsClientError::TooManyRedirects { smtp: smtp.to_owned(), hops, looped: true });
            }
            let answer = self.get_user_settings(&url, &address, &["InternalEwsUrl", "ExternalEwsUrl"]).await?;
            let next = match answer.users.first() {
                Some((get_user_settings::UserOutcome::RedirectAddress(target), _)) => {
                    let same_domain =
                        redirect::domain_of(target).is_some_and(|d| Some(d) == redirect::domain_of(&address));
                    let next_url = match redirect::domain_of(target) {
                        Some(_) if same_domain => url.clone(),
                        Some(domain) => redirect::autodiscover_url_for(&domain),
                        None => return Err(refused(&url, &address, target, "", "the target is not an e-mail address")),
                    };
                    (next_url, target.clone(), target.clone())
                }
                Some((get_user_settings::UserOutcome::RedirectUrl(target), _)) => {
                    (target.clone(), address.clone(), target.clone())
                }
                _ => {
                    let mailbox = Mailbox { smtp: address.clone(), ews_url: ews_url_of(&answer, &address)? };
                    self.ews_urls
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key, (Instant::now(), mailbox.clone()));
                    return Ok(mailbox);
                }
            };
            let (next_url, next_address, target) = next;
            if !next_url.starts_with("https://") {
                return Err(refused(&url, &address, &target, &next_url, "only https:// is followed"));
            }
            let host = host_of(&next_url).ok_or_else(|| EwsClientError::NoHost { url: next_url.clone() })?;
            if host_of(&url).as_deref() != Some(host.as_str()) && !policy.allows(&host) {
                let reason = format!(
                    "{host} is not in ExchangeAutodiscoverAllowedDomains ({}); to follow it, run \
                     `tandem cs set-oauth-configuration --exchange-autodiscover-allowed-domains \"…;*.{}\"`",
                    policy.describe(),
                    host.split_once('.').map_or(host.as_str(), |(_, d)| d),
                );
                return Err(refused(&url, &address, &target, &next_url, &reason));
            }
            tracing::info!(from = %url, to = %next_url, smtp = %address, new_smtp = %next_address,
                "following an Autodiscover redirect");
            (url, address) = (next_url, next_address);
        }
        Err(EwsClientError::TooManyRedirects { smtp: smtp.to_owned(), hops: MAX_REDIRECTS + 1, looped: false })
    }

    /// CreateItem: the ids of the created items, in request order.
    pub async fn create_item(
        &self,
        mailbox: &Mailbox,
        req: &create_item::Request,
    ) -> Result<Vec<ItemRef>, EwsClientError> {
        let text = self.call(mailbox, req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("CreateItem"))?;
        let per_item = create_item::parse_response(&doc).map_err(EwsClientError::reply("CreateItem"))?;
        Ok(all_ok("CreateItem", per_item)?.into_iter().flatten().collect())
    }

    /// GetItem: each item asked for, with its properties.
    pub async fn get_item(
        &self,
        mailbox: &Mailbox,
        req: &get_item::Request,
    ) -> Result<Vec<(ItemRef, ItemData)>, EwsClientError> {
        let text = self.call(mailbox, req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("GetItem"))?;
        let per_item = get_item::parse_response(&doc).map_err(EwsClientError::reply("GetItem"))?;
        Ok(all_ok("GetItem", per_item)?.into_iter().flatten().collect())
    }

    /// FindItem: one page of items per parent folder.
    pub async fn find_item(
        &self,
        mailbox: &Mailbox,
        req: &find_item::Request,
    ) -> Result<Vec<find_item::Found>, EwsClientError> {
        let text = self.call(mailbox, req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("FindItem"))?;
        all_ok("FindItem", find_item::parse_response(&doc).map_err(EwsClientError::reply("FindItem"))?)
    }

    /// UpdateItem: the new ids (with their change keys) of the items changed, in request order.
    pub async fn update_item(
        &self,
        mailbox: &Mailbox,
        req: &update_item::Request,
    ) -> Result<Vec<ItemRef>, EwsClientError> {
        let text = self.call(mailbox, req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("UpdateItem"))?;
        let per_item = update_item::parse_response(&doc).map_err(EwsClientError::reply("UpdateItem"))?;
        Ok(all_ok("UpdateItem", per_item)?.into_iter().flatten().collect())
    }

    /// GetAttachment: the attachments asked for, with their content.
    pub async fn get_attachments(
        &self,
        mailbox: &Mailbox,
        req: &tandem_ews_proto::ops::get_attachment::Fetch,
    ) -> Result<Vec<tandem_ews_proto::ops::attachments::NewAttachment>, EwsClientError> {
        let text = self.call(mailbox, req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("GetAttachment"))?;
        let per = tandem_ews_proto::ops::get_attachment::parse_response(&doc)
            .map_err(EwsClientError::reply("GetAttachment"))?;
        Ok(all_ok("GetAttachment", per)?.into_iter().flatten().collect())
    }

    pub async fn delete_item(&self, mailbox: &Mailbox, req: &delete_item::Request) -> Result<(), EwsClientError> {
        let text = self.call(mailbox, req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("DeleteItem"))?;
        all_ok("DeleteItem", delete_item::parse_response(&doc).map_err(EwsClientError::reply("DeleteItem"))?)
            .map(|_| ())
    }

    pub async fn get_folder(
        &self,
        mailbox: &Mailbox,
        req: &get_folder::Request,
    ) -> Result<Vec<FolderView>, EwsClientError> {
        let text = self.call(mailbox, req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("GetFolder"))?;
        all_ok("GetFolder", get_folder::parse_response(&doc).map_err(EwsClientError::reply("GetFolder"))?)
    }

    /// Subscribe (streaming or pull).
    pub async fn subscribe(&self, mailbox: &Mailbox, req: &subscribe::Request) -> Result<Subscription, EwsClientError> {
        let text = self.call(mailbox, req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("Subscribe"))?;
        let mut subs =
            all_ok("Subscribe", subscribe::parse_response(&doc).map_err(EwsClientError::reply("Subscribe"))?)?;
        if subs.is_empty() {
            return Err(EwsClientError::Reply {
                operation: "Subscribe",
                source: ReplyError::Unexpected { operation: "Subscribe".into(), what: "no response message".into() },
            });
        }
        Ok(subs.remove(0))
    }

    pub async fn unsubscribe(&self, mailbox: &Mailbox, subscription: &str) -> Result<(), EwsClientError> {
        let req = UnsubscribeRequest { subscription: subscription.to_owned() };
        let text = self.call(mailbox, &req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("Unsubscribe"))?;
        get_events::parse_unsubscribe_response(&doc)
            .map_err(EwsClientError::reply("Unsubscribe"))?
            .map_err(EwsClientError::message("Unsubscribe"))
    }

    /// GetStreamingEvents: the open connection, read envelope by envelope with
    /// [`EventStream::next`]. The request may take the connection timeout plus the usual limit.
    pub async fn get_streaming_events(
        &self,
        mailbox: &Mailbox,
        req: &get_streaming_events::Request,
    ) -> Result<EventStream, EwsClientError> {
        const OP: &str = "GetStreamingEvents";
        let url = &mailbox.ews_url;
        let timeout = self.limits.timeout + Duration::from_secs(req.timeout_minutes.saturating_mul(60));
        let resp = self
            .send(
                url,
                Auth::ActAs(&mailbox.smtp),
                &ops::soap_action(OP),
                req.envelope(ops::CLIENT_VERSION),
                timeout,
                &[],
            )
            .await?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(match self.answer(url, OP, resp).await {
                Err(e) => e,
                Ok(_) => EwsClientError::Status { url: url.clone(), status },
            });
        }
        Ok(EventStream::new(url.clone(), resp, self.limits.max_answer_bytes))
    }

    /// GetUserAvailability: one free/busy view or error per mailbox asked for.
    pub async fn get_user_availability(
        &self,
        mailbox: &Mailbox,
        req: &get_user_availability::Request,
    ) -> Result<Vec<Result<FreeBusy, MessageError>>, EwsClientError> {
        let text = self.call(mailbox, req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("GetUserAvailability"))?;
        get_user_availability::parse_response(&doc, req.bias_minutes)
            .map_err(EwsClientError::reply("GetUserAvailability"))
    }

    /// GetUserPhoto (SOAP) acting as the mailbox's user: `None` when the user has no photo
    /// (ErrorItemNotFound); with `if_none_match` (an ETag from an earlier answer) an unchanged
    /// photo comes back with `has_changed` false and no picture.
    pub async fn get_user_photo(
        &self,
        mailbox: &Mailbox,
        req: &get_user_photo::Request,
        if_none_match: Option<&str>,
    ) -> Result<Option<UserPhoto>, EwsClientError> {
        const OP: &str = "GetUserPhoto";
        let url = &mailbox.ews_url;
        let headers: Vec<(&str, &str)> = if_none_match.map(|t| ("If-None-Match", t)).into_iter().collect();
        let body = req.envelope(ops::CLIENT_VERSION);
        let resp = self
            .send(url, Auth::ActAs(&mailbox.smtp), &ops::soap_action(OP), body, self.limits.timeout, &headers)
            .await?;
        let etag = resp.headers().get("ETag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = self.answer(url, OP, resp).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply(OP))?;
        match get_user_photo::parse_response(&doc).map_err(EwsClientError::reply(OP))? {
            Ok(photo) => Ok(Some(UserPhoto { etag, has_changed: photo.has_changed, picture: photo.picture })),
            Err(e) if e.code == "ErrorItemNotFound" => Ok(None),
            Err(e) => Err(EwsClientError::message(OP)(e)),
        }
    }

    /// GetUserOofSettings of `address` (the caller's own mailbox, or one it may read).
    pub async fn get_user_oof_settings(&self, mailbox: &Mailbox, address: &str) -> Result<OofSettings, EwsClientError> {
        let req = get_user_oof_settings::Request { address: address.to_owned() };
        let text = self.call(mailbox, &req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply("GetUserOofSettings"))?;
        get_user_oof_settings::parse_response(&doc)
            .map_err(EwsClientError::reply("GetUserOofSettings"))?
            .map_err(EwsClientError::message("GetUserOofSettings"))
    }

    /// GetImItemList: the user's IM list (Unified Contact Store), every group and persona.
    pub async fn get_im_item_list(&self, mailbox: &Mailbox) -> Result<im_items::ImItemList, EwsClientError> {
        self.im(mailbox, &get_im_item_list::Request, get_im_item_list::parse_response).await
    }

    /// An Im* operation (single-message answer): sends `req`, reads the answer with `parse`.
    async fn im<R: BuildRequest, T>(
        &self,
        mailbox: &Mailbox,
        req: &R,
        parse: fn(&tandem_xml::Document<'_>) -> Result<Result<T, MessageError>, ReplyError>,
    ) -> Result<T, EwsClientError> {
        let text = self.call(mailbox, req).await?;
        let doc = reply::parse(&text).map_err(EwsClientError::reply(R::OPERATION))?;
        parse(&doc).map_err(EwsClientError::reply(R::OPERATION))?.map_err(EwsClientError::message(R::OPERATION))
    }

    /// AddNewImContactToGroup: a new IM contact for `im_address` (Other Contacts without a group).
    pub async fn add_new_im_contact_to_group(
        &self,
        mailbox: &Mailbox,
        req: &add_new_im_contact_to_group::Request,
    ) -> Result<im_items::Persona, EwsClientError> {
        self.im(mailbox, req, add_new_im_contact_to_group::parse_response).await
    }

    /// AddImContactToGroup: a contact already on the list into one more group.
    pub async fn add_im_contact_to_group(
        &self,
        mailbox: &Mailbox,
        req: &add_im_contact_to_group::Request,
    ) -> Result<(), EwsClientError> {
        self.im(mailbox, req, add_im_contact_to_group::parse_response).await
    }

    /// RemoveImContactFromGroup: a contact out of one group (it stays on the list).
    pub async fn remove_im_contact_from_group(
        &self,
        mailbox: &Mailbox,
        req: &remove_im_contact_from_group::Request,
    ) -> Result<(), EwsClientError> {
        self.im(mailbox, req, remove_im_contact_from_group::parse_response).await
    }

    /// AddImGroup: a new user group.
    pub async fn add_im_group(
        &self,
        mailbox: &Mailbox,
        display_name: &str,
    ) -> Result<im_items::ImGroup, EwsClientError> {
        let req = add_im_group::Request { display_name: display_name.to_owned() };
        self.im(mailbox, &req, add_im_group::parse_response).await
    }

    /// SetImListMigrationCompleted: records whether the user's list finished moving into the
    /// mailbox (true after a migration, false after a rollback).
    pub async fn set_im_list_migration_completed(
        &self,
        mailbox: &Mailbox,
        completed: bool,
    ) -> Result<(), EwsClientError> {
        let req = set_im_list_migration_completed::Request { completed };
        self.im(mailbox, &req, set_im_list_migration_completed::parse_response).await
    }

    /// RemoveContactFromImList: the contact off the list (and out of Quick Contacts).
    pub async fn remove_contact_from_im_list(
        &self,
        mailbox: &Mailbox,
        contact: &ItemRef,
    ) -> Result<(), EwsClientError> {
        let req = remove_contact_from_im_list::Request { contact_id: contact.clone() };
        self.im(mailbox, &req, remove_contact_from_im_list::parse_response).await
    }

    /// Sends a probe to `url` with `bearer` (or no credentials) and reports only how the service
    /// answered: a refused token or a missing service is an answer here, not an error.
    pub async fn probe(
        &self,
        url: &str,
        probe: Probe<'_>,
        bearer: Option<&str>,
    ) -> Result<ProbeAnswer, EwsClientError> {
        let (action, body) = match probe {
            Probe::Autodiscover { mailbox } => (
                format!("\"{}\"", tandem_ews_proto::autodiscover::action("GetUserSettings")),
                get_user_settings::Request::new(mailbox, &["ExternalEwsUrl"]).envelope(None),
            ),
            Probe::EwsInbox => {
                let req = get_folder::Request {
                    shape: tandem_ews_proto::types::Shape::base(tandem_ews_proto::types::BaseShape::IdOnly),
                    folders: vec![tandem_ews_proto::types::FolderRef::distinguished("inbox")],
                };
                (ops::soap_action("GetFolder"), req.envelope(ops::CLIENT_VERSION))
            }
        };
        let auth = bearer.map_or(Auth::Anonymous, Auth::Bearer);
        let resp = self.send(url, auth, &action, body, self.limits.timeout, &[]).await?;
        let diagnostics = resp.headers().get("x-ms-diagnostics").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(ProbeAnswer { status: resp.status().as_u16(), diagnostics })
    }
}

/// The results of every response message, or the first failing message as the error.
fn all_ok<T>(operation: &'static str, per_message: Vec<Result<T, MessageError>>) -> Result<Vec<T>, EwsClientError> {
    per_message.into_iter().map(|r| r.map_err(EwsClientError::message(operation))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_hosts() {
        assert_eq!(
            host_of("https://Mail.Litwareinc.com:8443/EWS/Exchange.asmx").as_deref(),
            Some("mail.litwareinc.com")
        );
        assert_eq!(host_of("https://user@[::1]:443/x").as_deref(), Some("::1"));
        assert_eq!(host_of("https:///x"), None);
        assert_eq!(host_of("mail.litwareinc.com"), None);
    }
}
