//! The Exchange connector: the Front End's only path to mailbox data, as Skype for Business
//! reaches Exchange. SOAP Autodiscover (GetUserSettings at the configured
//! `ExchangeAutodiscoverUrl`) finds the user's EWS URL; EWS requests then carry a server-to-server
//! token acting as the user. Every failure names the hop (DNS, Autodiscover, token, EWS), what
//! failed and what to do, which is what `tandem test ex-storage-connectivity` prints.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tandem_oauth::token::UserIdentity;
use tandem_store::Store;

use tandem_trust::frontend::{self as oauth, TokenIssuer};

/// How long an Autodiscover answer (a user's EWS URL) is reused.
pub const AUTODISCOVER_TTL: Duration = Duration::from_secs(300);

/// The hops of the path, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Hop {
    Dns,
    Autodiscover,
    Token,
    Ews,
}

#[derive(Debug, thiserror::Error)]
#[error("{hop:?}: {message}; {hint}")]
pub struct ConnectorError {
    pub hop: Hop,
    pub message: String,
    pub hint: String,
}

fn fail(hop: Hop, message: impl Into<String>, hint: impl Into<String>) -> ConnectorError {
    ConnectorError { hop, message: message.into(), hint: hint.into() }
}

/// An item written to or read from a mailbox folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemRef {
    pub id: String,
    pub change_key: String,
}

#[derive(Debug)]
pub struct ExchangeConnector {
    store: Store,
    sip_domain: String,
    client: reqwest::Client,
    issuer: TokenIssuer,
    ews_urls: Mutex<HashMap<String, (Instant, String)>>,
}

const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const AUTOD_NS: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
const TYPES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
const MESSAGES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host =
        if host.starts_with('[') { host.split(']').next()?.trim_start_matches('[') } else { host.split(':').next()? };
    Some(host.to_ascii_lowercase())
}

impl ExchangeConnector {
    /// `client` must trust the mailbox's certificate and resolve the deployment's names.
    pub fn new(store: Store, sip_domain: &str, client: reqwest::Client) -> ExchangeConnector {
        ExchangeConnector {
            issuer: TokenIssuer::new(store.clone(), sip_domain),
            store,
            sip_domain: sip_domain.to_owned(),
            client,
            ews_urls: Mutex::new(HashMap::new()),
        }
    }

    /// The configured Autodiscover URL (Set-CsOAuthConfiguration -ExchangeAutodiscoverUrl).
    pub async fn autodiscover_url(&self) -> Result<String, ConnectorError> {
        let cfg = oauth::configuration(&self.store, &self.sip_domain)
            .await
            .map_err(|e| fail(Hop::Autodiscover, e.to_string(), "check the Front End store"))?;
        cfg.exchange_autodiscover_url.ok_or_else(|| {
            fail(
                Hop::Autodiscover,
                "no ExchangeAutodiscoverUrl is configured",
                "run `tandem cs set-oauth-configuration --exchange-autodiscover-url https://autodiscover.<domain>/autodiscover/autodiscover.svc`",
            )
        })
    }

    async fn token(&self, url: &str, smtp: &str) -> Result<std::sync::Arc<str>, ConnectorError> {
        let host = host_of(url).ok_or_else(|| fail(Hop::Token, format!("`{url}` has no host"), "fix the URL"))?;
        self.issuer.user_token(&host, &UserIdentity { smtp: smtp.to_owned(), sip: None }).await.map_err(|e| {
            fail(
                Hop::Token,
                e.to_string(),
                "check `tandem cs get-certificate --type OAuthTokenIssuer` and the OAuth configuration",
            )
        })
    }

    async fn post(
        &self,
        hop: Hop,
        url: &str,
        smtp: &str,
        body: String,
        action: Option<&str>,
    ) -> Result<String, ConnectorError> {
        let token = self.token(url, smtp).await?;
        let mut req =
            self.client.post(url).header("Content-Type", "text/xml; charset=utf-8").bearer_auth(&*token).body(body);
        if let Some(a) = action {
            req = req.header("SOAPAction", a);
        }
        let resp = req.send().await.map_err(|e| {
            let cause = tandem_http::client::root_cause(&e);
            let hop = if cause.contains("dns") || cause.contains("resolve") || cause.contains("lookup") {
                Hop::Dns
            } else {
                hop
            };
            fail(
                hop,
                format!("cannot reach {url}: {cause}"),
                "check DNS (`tandem test dns`) and that the mailbox role runs",
            )
        })?;
        let status = resp.status().as_u16();
        let diag = resp.headers().get("x-ms-diagnostics").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = resp.text().await.unwrap_or_default();
        match status {
            200 => Ok(text),
            401 => Err(fail(
                Hop::Token,
                format!("{url} refused the token: {}", diag.unwrap_or_else(|| "no x-ms-diagnostics".into())),
                "check the partner application on the mailbox (`tandem exchange get-partner-application`)",
            )),
            _ => Err(fail(hop, format!("{url} answered HTTP {status}"), "see the mailbox's log")),
        }
    }

    /// The user's EWS URL from SOAP Autodiscover (cached for [`AUTODISCOVER_TTL`]).
    pub async fn ews_url(&self, smtp: &str) -> Result<String, ConnectorError> {
        if let Some((at, url)) = self.ews_urls.lock().unwrap_or_else(|p| p.into_inner()).get(smtp)
            && at.elapsed() < AUTODISCOVER_TTL
        {
            return Ok(url.clone());
        }
        let autod = self.autodiscover_url().await?;
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:a="{AUTOD_NS}" xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action><wsa:To>{autod}</wsa:To></soap:Header><soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>{}</a:Mailbox></a:User></a:Users><a:RequestedSettings><a:Setting>InternalEwsUrl</a:Setting><a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>"#,
            tandem_xml::escape(smtp)
        );
        let text = self
            .post(
                Hop::Autodiscover,
                &autod,
                smtp,
                body,
                Some("\"http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings\""),
            )
            .await?;
        let doc = tandem_xml::parse(text.as_bytes(), tandem_xml::Limits::default())
            .map_err(|e| fail(Hop::Autodiscover, format!("unreadable answer: {e}"), "see the mailbox's log"))?;
        let mut settings: HashMap<String, String> = HashMap::new();
        for n in doc.descendants().filter(|n| tandem_xml::is(*n, AUTOD_NS, "UserSetting")) {
            let name = tandem_xml::child(n, AUTOD_NS, "Name").map(tandem_xml::text).unwrap_or_default();
            let value = tandem_xml::child(n, AUTOD_NS, "Value").map(tandem_xml::text).unwrap_or_default();
            settings.insert(name, value);
        }
        let url = settings
            .get("InternalEwsUrl")
            .or_else(|| settings.get("ExternalEwsUrl"))
            .filter(|u| !u.is_empty())
            .cloned()
            .ok_or_else(|| {
                let code = doc
                    .descendants()
                    .find(|n| tandem_xml::is(*n, AUTOD_NS, "ErrorCode"))
                    .map(tandem_xml::text)
                    .unwrap_or_default();
                fail(
                    Hop::Autodiscover,
                    format!("no EWS URL for {smtp} (ErrorCode {code})"),
                    "check the mailbox exists and `tandem exchange get-client-access-server`",
                )
            })?;
        self.ews_urls.lock().unwrap_or_else(|p| p.into_inner()).insert(smtp.to_owned(), (Instant::now(), url.clone()));
        Ok(url)
    }

    async fn ews(&self, smtp: &str, operation: &str, body: &str) -> Result<roxmltree_owned::Owned, ConnectorError> {
        let url = self.ews_url(smtp).await?;
        let envelope = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:t="{TYPES_NS}" xmlns:m="{MESSAGES_NS}"><soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#
        );
        let action = format!("\"http://schemas.microsoft.com/exchange/services/2006/messages/{operation}\"");
        let text = self.post(Hop::Ews, &url, smtp, envelope, Some(&action)).await?;
        roxmltree_owned::Owned::check(text, operation)
    }

    /// Writes a message item into a distinguished folder of the user's mailbox.
    pub async fn create_item(
        &self,
        smtp: &str,
        folder: &str,
        subject: &str,
        body: &str,
    ) -> Result<ItemRef, ConnectorError> {
        let req = format!(
            r#"<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="{}"/></m:SavedItemFolderId><m:Items><t:Message><t:ItemClass>IPM.Note</t:ItemClass><t:Subject>{}</t:Subject><t:Body BodyType="Text">{}</t:Body></t:Message></m:Items></m:CreateItem>"#,
            tandem_xml::escape(folder),
            tandem_xml::escape(subject),
            tandem_xml::escape(body)
        );
        self.ews(smtp, "CreateItem", &req).await?.item_id()
    }

    /// Reads an item back; returns its subject.
    pub async fn get_item_subject(&self, smtp: &str, item: &ItemRef) -> Result<String, ConnectorError> {
        let req = format!(
            r#"<m:GetItem><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id="{}"/></m:ItemIds></m:GetItem>"#,
            tandem_xml::escape(&item.id)
        );
        self.ews(smtp, "GetItem", &req).await?.text_of(TYPES_NS, "Subject")
    }

    pub async fn delete_item(&self, smtp: &str, item: &ItemRef) -> Result<(), ConnectorError> {
        let req = format!(
            r#"<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="{}"/></m:ItemIds></m:DeleteItem>"#,
            tandem_xml::escape(&item.id)
        );
        self.ews(smtp, "DeleteItem", &req).await.map(|_| ())
    }
}

/// An EWS answer kept as text and re-read on demand (roxmltree documents borrow their input).
mod roxmltree_owned {
    use super::{ConnectorError, Hop, ItemRef, MESSAGES_NS, TYPES_NS, fail};

    #[derive(Debug)]
    pub struct Owned(String);

    impl Owned {
        /// Accepts a response whose messages all have ResponseClass="Success".
        pub fn check(text: String, operation: &str) -> Result<Owned, ConnectorError> {
            let doc = tandem_xml::parse(text.as_bytes(), tandem_xml::Limits::default())
                .map_err(|e| fail(Hop::Ews, format!("{operation}: unreadable answer: {e}"), "see the mailbox's log"))?;
            for n in doc.descendants().filter(|n| n.attribute("ResponseClass").is_some()) {
                if n.attribute("ResponseClass") != Some("Success") {
                    let code =
                        tandem_xml::child(n, MESSAGES_NS, "ResponseCode").map(tandem_xml::text).unwrap_or_default();
                    let text =
                        tandem_xml::child(n, MESSAGES_NS, "MessageText").map(tandem_xml::text).unwrap_or_default();
                    return Err(fail(Hop::Ews, format!("{operation}: {code} {text}"), "see the mailbox's log"));
                }
            }
            if doc.descendants().any(|n| n.tag_name().name() == "Fault") {
                return Err(fail(Hop::Ews, format!("{operation}: SOAP fault"), "see the mailbox's log"));
            }
            Ok(Owned(text))
        }

        fn doc(&self) -> Result<tandem_xml::Document<'_>, ConnectorError> {
            tandem_xml::parse(self.0.as_bytes(), tandem_xml::Limits::default())
                .map_err(|e| fail(Hop::Ews, e.to_string(), "see the mailbox's log"))
        }

        pub fn item_id(&self) -> Result<ItemRef, ConnectorError> {
            let doc = self.doc()?;
            let n = doc
                .descendants()
                .find(|n| tandem_xml::is(*n, TYPES_NS, "ItemId"))
                .ok_or_else(|| fail(Hop::Ews, "CreateItem returned no ItemId", "see the mailbox's log"))?;
            Ok(ItemRef {
                id: n.attribute("Id").unwrap_or_default().to_owned(),
                change_key: n.attribute("ChangeKey").unwrap_or_default().to_owned(),
            })
        }

        pub fn text_of(&self, ns: &str, name: &str) -> Result<String, ConnectorError> {
            let doc = self.doc()?;
            doc.descendants()
                .find(|n| tandem_xml::is(*n, ns, name))
                .map(tandem_xml::text)
                .ok_or_else(|| fail(Hop::Ews, format!("no {name} in the answer"), "see the mailbox's log"))
        }
    }
}
