//! POX Autodiscover (`autodiscover.xml`) with the Outlook response schema: EXCH (internal),
//! EXPR (external, when an external EWS URL is set) and WEB (OWA) protocol entries.

use axum::http::StatusCode;
use axum::response::Response;
use tandem_directory::User;
use tandem_ews_proto::pox::{self, PoxError, Protocol, Request, Settings};

use super::{deployment_id, mdb_dn, server_dn, user_dn};
use crate::client_access::{self, ClientAccess, Setting};
use crate::{Call, Shared, xml_response};

pub(crate) async fn handle(s: &Shared, call: Call) -> Response {
    let body = call.body.clone();
    let parsed =
        crate::offload::run(body.len(), move || match tandem_xml::parse(&body, tandem_xml::Limits::default()) {
            Ok(doc) => Request::parse(&doc),
            Err(_) => Err(PoxError::InvalidRequest),
        });
    let request = match parsed.await {
        Some(Ok(r)) => r,
        Some(Err(e)) => return error(e.code(), &e.to_string()),
        None => return error(603, "The server cannot service this request right now. Try again later."),
    };
    let found = match (&request.email, &request.legacy_dn) {
        (Some(addr), _) => s.directory.find(addr).await,
        (None, Some(dn)) => match dn.rsplit_once("/cn=") {
            Some((_, name)) if dn.starts_with(&format!("/o={}", super::ORGANIZATION)) => s.directory.find(name).await,
            _ => Ok(None),
        },
        (None, None) => Ok(None),
    };
    let user = match found {
        Ok(Some(u)) if u.can_use_mailbox() => u,
        Ok(Some(User { external_email_address: Some(target), mailbox_enabled: false, enabled: true, .. })) => {
            return xml_response(StatusCode::OK, pox::render_redirect_address(&target.to_string()));
        }
        Ok(_) => return error(pox::NO_MAILBOX.0, pox::NO_MAILBOX.1),
        Err(e) => {
            tracing::error!(error = %e, "directory failure in POX autodiscover");
            return error(603, "The server cannot service this request right now. Try again later.");
        }
    };
    match client_access::load(&s.store, &s.defaults).await {
        Ok(cas) => xml_response(StatusCode::OK, pox::render_settings(&settings(&cas, &user))),
        Err(e) => {
            tracing::error!(error = %e, "mailbox store failure in POX autodiscover");
            error(603, "The server cannot service this request right now. Try again later.")
        }
    }
}

fn error(code: u16, message: &str) -> Response {
    let now = tandem_ews_proto::format_datetime(tandem_store::now_unix());
    let time = now.split('T').nth(1).unwrap_or("").trim_end_matches('Z').to_owned();
    let id = format!("{}", rand::random::<u32>());
    xml_response(StatusCode::OK, pox::render_error(code, message, &time, &id))
}

fn settings(cas: &ClientAccess, user: &User) -> Settings {
    let get = |s: Setting| cas.get(s).map(str::to_owned);
    let mut protocols = Vec::new();
    let mut exch = vec![
        ("Server", cas.fqdn.clone()),
        ("ServerDN", server_dn(&cas.name)),
        ("ServerVersion", "73C18880".to_owned()),
        ("MdbDN", mdb_dn(&cas.name)),
        ("AD", cas.fqdn.clone()),
    ];
    if let Some(ews) = get(Setting::EwsInternalUrl) {
        exch.extend([("ASUrl", ews.clone()), ("EwsUrl", ews.clone()), ("EmwsUrl", ews.clone()), ("OOFUrl", ews)]);
    }
    if let Some(um) = get(Setting::UmInternalUrl) {
        exch.push(("UMUrl", um));
    }
    if let Some(oab) = get(Setting::OabInternalUrl) {
        exch.push(("OABUrl", oab));
    }
    exch.extend([("AuthPackage", "basic".to_owned()), ("SSL", "On".to_owned())]);
    protocols.push(Protocol { kind: "EXCH", fields: exch });
    if let Some(ews) = get(Setting::EwsExternalUrl) {
        let host = ews.strip_prefix("https://").and_then(|r| r.split('/').next()).unwrap_or(&cas.fqdn).to_owned();
        let mut expr = vec![
            ("Server", host),
            ("SSL", "On".to_owned()),
            ("AuthPackage", "basic".to_owned()),
            ("ASUrl", ews.clone()),
            ("EwsUrl", ews.clone()),
            ("EmwsUrl", ews.clone()),
            ("OOFUrl", ews),
        ];
        if let Some(um) = get(Setting::UmExternalUrl) {
            expr.push(("UMUrl", um));
        }
        if let Some(oab) = get(Setting::OabExternalUrl) {
            expr.push(("OABUrl", oab));
        }
        protocols.push(Protocol { kind: "EXPR", fields: expr });
    }
    Settings {
        display_name: user.display_name.clone(),
        legacy_dn: user_dn(user),
        smtp_address: user.smtp_address.to_string(),
        deployment_id: deployment_id(&cas.fqdn),
        protocols,
        owa_internal: get(Setting::OwaInternalUrl),
        owa_external: get(Setting::OwaExternalUrl),
    }
}
