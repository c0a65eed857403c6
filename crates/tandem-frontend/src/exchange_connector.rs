//! The Exchange connector: the Front End's only path to mailbox data, as Skype for Business
//! reaches Exchange. SOAP Autodiscover (GetUserSettings at the configured
//! `ExchangeAutodiscoverUrl`) finds the user's EWS URL; EWS requests then carry a server-to-server
//! token acting as the user. The wire is `tandem-ews-client`'s; this module adds the Front End's
//! configuration and tokens, and names for every failure the hop (DNS, Autodiscover, token, EWS),
//! what failed and what to do, which is what `tandem test ex-storage-connectivity` prints.

use std::sync::Arc;

use tandem_ews_client::{EwsClient, EwsClientError, Mailbox, RedirectPolicy, TokenFuture, TokenProvider};
use tandem_ews_proto::ops::create_item::{self, ItemData};
use tandem_ews_proto::ops::delete_folder::DeleteType;
use tandem_ews_proto::ops::{delete_item, get_item};
use tandem_ews_proto::types::{self, BaseShape, FolderRef, Shape};
use tandem_oauth::token::UserIdentity;
use tandem_store::Store;

use tandem_trust::frontend::{self as oauth, TokenIssuer};

/// How long an Autodiscover answer (a user's EWS URL) is reused.
pub use tandem_ews_client::AUTODISCOVER_TTL;

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

/// The hop a client error belongs to when it happened during `step`, with what to do.
pub(crate) fn at(step: Hop) -> impl Fn(EwsClientError) -> ConnectorError {
    move |e| {
        let (hop, hint) = match &e {
            EwsClientError::Token { .. } => {
                (Hop::Token, "check `tandem cs get-certificate --type OAuthTokenIssuer` and the OAuth configuration")
            }
            EwsClientError::NoHost { .. } => (Hop::Token, "fix the URL"),
            EwsClientError::Transport { .. } => (
                if e.is_dns() { Hop::Dns } else { step },
                "check DNS (`tandem test dns`) and that the mailbox role runs",
            ),
            EwsClientError::Unauthorized { .. } => {
                (Hop::Token, "check the partner application on the mailbox (`tandem exchange get-partner-application`)")
            }
            EwsClientError::RedirectRefused { .. } | EwsClientError::TooManyRedirects { .. } => (
                Hop::Autodiscover,
                "check the user's mail-user redirect (`tandem exchange get-mail-user`) and \
                 ExchangeAutodiscoverAllowedDomains (`tandem cs get-oauth-configuration`)",
            ),
            EwsClientError::NoEwsUrl { .. } => {
                (Hop::Autodiscover, "check the mailbox exists and `tandem exchange get-client-access-server`")
            }
            _ => (step, "see the mailbox's log"),
        };
        fail(hop, e.to_string(), hint)
    }
}

fn configured_url(cfg: oauth::OAuthConfiguration) -> Result<String, ConnectorError> {
    cfg.exchange_autodiscover_url.ok_or_else(|| {
        fail(
            Hop::Autodiscover,
            "no ExchangeAutodiscoverUrl is configured",
            "run `tandem cs set-oauth-configuration --exchange-autodiscover-url https://autodiscover.<domain>/autodiscover/autodiscover.svc`",
        )
    })
}

/// An item written to or read from a mailbox folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemRef {
    pub id: String,
    pub change_key: String,
}

/// The Front End's S2S tokens, acting as a user at a host: the one place the connector meets
/// the token issuer.
#[derive(Debug)]
struct IssuerTokens(TokenIssuer);

impl TokenProvider for IssuerTokens {
    fn bearer<'a>(&'a self, audience: &'a str, smtp: &'a str) -> TokenFuture<'a> {
        Box::pin(async move {
            let user = UserIdentity { smtp: smtp.to_owned(), sip: None };
            self.0.user_token(audience, &user).await.map_err(Into::into)
        })
    }
}

#[derive(Debug)]
pub struct ExchangeConnector {
    store: Store,
    sip_domain: String,
    client: EwsClient,
}

impl ExchangeConnector {
    /// `client` must trust the mailbox's certificate and resolve the deployment's names.
    pub fn new(store: Store, sip_domain: &str, client: reqwest::Client) -> ExchangeConnector {
        let tokens = Arc::new(IssuerTokens(TokenIssuer::new(store.clone(), sip_domain)));
        ExchangeConnector { store, sip_domain: sip_domain.to_owned(), client: EwsClient::new(client, tokens) }
    }

    async fn oauth_configuration(&self) -> Result<oauth::OAuthConfiguration, ConnectorError> {
        oauth::configuration(&self.store, &self.sip_domain)
            .await
            .map_err(|e| fail(Hop::Autodiscover, e.to_string(), "check the Front End store"))
    }

    /// The configured Autodiscover URL (Set-CsOAuthConfiguration -ExchangeAutodiscoverUrl).
    pub async fn autodiscover_url(&self) -> Result<String, ConnectorError> {
        configured_url(self.oauth_configuration().await?)
    }

    /// The user's mailbox through SOAP Autodiscover (cached for [`AUTODISCOVER_TTL`]), following
    /// redirects to the hosts ExchangeAutodiscoverAllowedDomains allows.
    pub async fn mailbox(&self, smtp: &str) -> Result<Mailbox, ConnectorError> {
        let cfg = self.oauth_configuration().await?;
        let policy = RedirectPolicy::from_allowed_domains(cfg.exchange_autodiscover_allowed_domains.as_deref());
        let autod = configured_url(cfg)?;
        self.client.discover(&autod, smtp, &policy).await.map_err(at(Hop::Autodiscover))
    }

    /// The user's EWS URL from SOAP Autodiscover (cached for [`AUTODISCOVER_TTL`]).
    pub async fn ews_url(&self, smtp: &str) -> Result<String, ConnectorError> {
        Ok(self.mailbox(smtp).await?.ews_url)
    }

    /// The typed EWS client, for calls this module has no shorthand for.
    pub fn client(&self) -> &EwsClient {
        &self.client
    }

    /// Writes a message item into a distinguished folder of the user's mailbox.
    pub async fn create_item(
        &self,
        smtp: &str,
        folder: &str,
        subject: &str,
        body: &str,
    ) -> Result<ItemRef, ConnectorError> {
        let mailbox = self.mailbox(smtp).await?;
        let item = ItemData::new("Message").with_item_class("IPM.Note").with_subject(subject).with_body("Text", body);
        let req = create_item::Request::save(FolderRef::distinguished(folder), vec![item]);
        let ids = self.client.create_item(&mailbox, &req).await.map_err(at(Hop::Ews))?;
        let id = ids
            .into_iter()
            .next()
            .ok_or_else(|| fail(Hop::Ews, "CreateItem returned no ItemId", "see the mailbox's log"))?;
        Ok(ItemRef { id: id.id, change_key: id.change_key.unwrap_or_default() })
    }

    /// Reads an item back; returns its subject.
    pub async fn get_item_subject(&self, smtp: &str, item: &ItemRef) -> Result<String, ConnectorError> {
        let mailbox = self.mailbox(smtp).await?;
        let req = get_item::Request::new(Shape::base(BaseShape::Default), vec![item_ref(item)]);
        let items = self.client.get_item(&mailbox, &req).await.map_err(at(Hop::Ews))?;
        items
            .into_iter()
            .find_map(|(_, data)| data.subject)
            .ok_or_else(|| fail(Hop::Ews, "no Subject in the answer", "see the mailbox's log"))
    }

    pub async fn delete_item(&self, smtp: &str, item: &ItemRef) -> Result<(), ConnectorError> {
        let mailbox = self.mailbox(smtp).await?;
        let req = delete_item::Request::new(DeleteType::HardDelete, vec![item_ref(item)]);
        self.client.delete_item(&mailbox, &req).await.map_err(at(Hop::Ews))
    }
}

/// The id as EWS takes it (the change key is left out, as a read or hard delete needs none).
fn item_ref(item: &ItemRef) -> types::ItemRef {
    types::ItemRef { id: item.id.clone(), change_key: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_name_their_hop() {
        let refused =
            EwsClientError::Unauthorized { url: "https://mail/EWS".into(), diagnostics: Some("2000001".into()) };
        let e = at(Hop::Ews)(refused);
        assert_eq!((e.hop, e.message.as_str()), (Hop::Token, "https://mail/EWS refused the token: 2000001"));
        let e = at(Hop::Ews)(EwsClientError::NoEwsUrl { smtp: "a@b".into(), code: "InvalidUser".into() });
        assert_eq!((e.hop, e.message.as_str()), (Hop::Autodiscover, "no EWS URL for a@b (ErrorCode InvalidUser)"));
        let e = at(Hop::Autodiscover)(EwsClientError::Status { url: "https://autod".into(), status: 500 });
        assert_eq!((e.hop, e.hint.as_str()), (Hop::Autodiscover, "see the mailbox's log"));
        let e = at(Hop::Ews)(EwsClientError::Ews {
            operation: "GetItem",
            code: "ErrorItemNotFound".into(),
            message: "gone".into(),
        });
        assert_eq!((e.hop, e.message.as_str()), (Hop::Ews, "GetItem: ErrorItemNotFound gone"));
    }
}
