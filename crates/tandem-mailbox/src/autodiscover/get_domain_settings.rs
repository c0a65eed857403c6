//! GetDomainSettings: the organisation's external EWS URL and version, for its own domains.

use tandem_ews_proto::autodiscover::envelope;
use tandem_ews_proto::autodiscover::get_domain_settings::{DOMAIN_SETTING_NAMES, DomainOutcome, Request, render};

use super::{AutodiscoverError, cas_version};
use crate::Shared;
use crate::client_access::{self, Setting};

pub(crate) async fn handle(s: &Shared, req: Request) -> Result<String, AutodiscoverError> {
    let cas = client_access::load(&s.store, &s.defaults).await?;
    let users = s.directory.list().await?;
    let mut out: Vec<DomainOutcome> = Vec::with_capacity(req.domains.len());
    for domain in &req.domains {
        let ours = users.iter().any(|u| u.smtp_address.domain().as_str().eq_ignore_ascii_case(domain.trim()));
        if !ours {
            out.push(Err(format!("The domain '{domain}' is not valid for this server.")));
            continue;
        }
        let mut values = Vec::new();
        let mut unknown = Vec::new();
        for name in &req.settings {
            let v = match name.as_str() {
                "ExternalEwsUrl" => cas.get(Setting::EwsExternalUrl).map(str::to_owned),
                "ExternalEwsVersion" => Some(cas_version()),
                _ => None,
            };
            match v {
                Some(v) if DOMAIN_SETTING_NAMES.contains(&name.as_str()) => values.push((name.clone(), v)),
                _ => unknown.push(name.clone()),
            }
        }
        out.push(Ok((values, unknown)));
    }
    Ok(envelope("GetDomainSettingsResponse", &render(&out)))
}
