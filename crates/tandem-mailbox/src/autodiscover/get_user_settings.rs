//! GetUserSettings: the settings a client asked for, for each user asked about.

use tandem_directory::User;
use tandem_ews_proto::autodiscover::envelope;
use tandem_ews_proto::autodiscover::get_user_settings::{
    Request, SettingError, SettingValue, UserOutcome, WebClientUrl, classify, render,
};

use super::{AutodiscoverError, cas_version, deployment_id, mdb_dn, server_dn, user_dn};
use crate::Shared;
use crate::client_access::{self, ClientAccess, Setting};

pub(crate) async fn handle(s: &Shared, _caller: &User, req: Request) -> Result<String, AutodiscoverError> {
    let cas = client_access::load(&s.store, &s.defaults).await?;
    let (known, unknown) = classify(&req.settings);
    let mut users = Vec::with_capacity(req.mailboxes.len());
    for addr in &req.mailboxes {
        let found = if addr.contains('@') { s.directory.find(addr).await? } else { None };
        match found.filter(|u| u.can_use_mailbox() || u.is_mail_user()) {
            None => users.push((UserOutcome::InvalidUser(addr.clone()), Vec::new())),
            // A mail user's mailbox is elsewhere: the client starts again with that address, as
            // Exchange answers for a MailUser or a migrated (remote) mailbox.
            Some(User { external_email_address: Some(target), mailbox_enabled: false, .. }) => {
                users.push((UserOutcome::RedirectAddress(target.to_string()), Vec::new()));
            }
            Some(user) => {
                let mut errors = unknown.clone();
                let mut values = Vec::new();
                for name in &known {
                    match value(&cas, &user, name) {
                        Some(v) => values.push(((*name).to_owned(), v)),
                        None => errors.push(SettingError {
                            name: (*name).to_owned(),
                            code: "SettingIsNotAvailable",
                            message: format!("User setting '{name}' is not available."),
                        }),
                    }
                }
                users.push((UserOutcome::Settings(values), errors));
            }
        }
    }
    Ok(envelope("GetUserSettingsResponse", &render(&users)))
}

/// The value of one known setting for `user`, or `None` when this server has none.
fn value(cas: &ClientAccess, user: &User, name: &str) -> Option<SettingValue> {
    // The web client URLs, from the same OWA settings as POX's WEB protocol; forms-based and
    // Basic sign-in, as Exchange's OWA virtual directory offers by default.
    let web = |s: Setting| {
        cas.get(s).map(|u| {
            SettingValue::WebClientUrls(vec![WebClientUrl {
                authentication_methods: "Fba, Basic".to_owned(),
                url: u.to_owned(),
            }])
        })
    };
    match name {
        "InternalWebClientUrls" => return web(Setting::OwaInternalUrl),
        "ExternalWebClientUrls" => return web(Setting::OwaExternalUrl),
        _ => {}
    }
    string_value(cas, user, name).map(SettingValue::String)
}

fn string_value(cas: &ClientAccess, user: &User, name: &str) -> Option<String> {
    let url = |s: Setting| cas.get(s).map(str::to_owned);
    Some(match name {
        "UserDisplayName" => user.display_name.clone(),
        "UserDN" => user_dn(user),
        "UserDeploymentId" => deployment_id(&cas.fqdn),
        "AutoDiscoverSMTPAddress" => user.smtp_address.to_string(),
        "InternalMailboxServer" | "InternalRpcClientServer" | "ActiveDirectoryServer" => cas.fqdn.clone(),
        "InternalMailboxServerDN" => server_dn(&cas.name),
        "MailboxDN" => mdb_dn(&cas.name),
        "InternalEwsUrl" => url(Setting::EwsInternalUrl)?,
        "ExternalEwsUrl" => url(Setting::EwsExternalUrl)?,
        "InternalOABUrl" => url(Setting::OabInternalUrl)?,
        "ExternalOABUrl" => url(Setting::OabExternalUrl)?,
        "InternalUMUrl" => url(Setting::UmInternalUrl)?,
        "ExternalUMUrl" => url(Setting::UmExternalUrl)?,
        "CasVersion" | "ExternalEwsVersion" => cas_version(),
        "EwsSupportedSchemas" => tandem_ews_proto::version::SUPPORTED_SCHEMAS.to_owned(),
        "CrossOrganizationSharingEnabled" | "UserMSOnline" | "MapiHttpEnabled" => "False".to_owned(),
        "ShowGalAsDefaultView" => "True".to_owned(),
        _ => return None,
    })
}
