//! GetDomainSettings: organisation-wide settings (ExternalEwsUrl, ExternalEwsVersion).

use tandem_xml::{Node, Writer, child, children_named, text};

use crate::{ProtoError, ns};

/// Domain settings Exchange defines.
pub const DOMAIN_SETTING_NAMES: &[&str] = &["ExternalEwsUrl", "ExternalEwsVersion"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub domains: Vec<String>,
    pub settings: Vec<String>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let a = ns::AUTODISCOVER;
        let req = child(op, a, "Request").ok_or_else(|| ProtoError::schema("GetDomainSettings needs a Request"))?;
        let domains: Vec<String> = child(req, a, "Domains")
            .map(|d| children_named(d, ns::AUTODISCOVER, "Domain").map(text).collect())
            .unwrap_or_default();
        let settings: Vec<String> = child(req, a, "RequestedSettings")
            .map(|s| children_named(s, ns::AUTODISCOVER, "Setting").map(text).collect())
            .unwrap_or_default();
        if domains.is_empty() || settings.is_empty() {
            return Err(ProtoError::schema("GetDomainSettings needs Domains and RequestedSettings"));
        }
        Ok(Request { domains, settings })
    }
}

/// One domain's outcome: `Ok(settings, unknown names)` or `Err(message)` (InvalidDomain).
pub type DomainOutcome = Result<(Vec<(String, String)>, Vec<String>), String>;

pub fn render(domains: &[DomainOutcome]) -> String {
    let mut w = Writer::new();
    w.start("GetDomainSettingsResponseMessage", &[("xmlns", ns::AUTODISCOVER)]);
    w.start("Response", &[]).leaf("ErrorCode", "NoError").leaf("ErrorMessage", "").start("DomainResponses", &[]);
    for d in domains {
        w.start("DomainResponse", &[]);
        match d {
            Ok((settings, unknown)) => {
                w.leaf("ErrorCode", "NoError").leaf("ErrorMessage", "No error.");
                w.start("DomainSettingErrors", &[]);
                for name in unknown {
                    w.start("DomainSettingError", &[])
                        .leaf("ErrorCode", "InvalidSetting")
                        .leaf("ErrorMessage", &format!("The requested setting {name} is not valid."))
                        .leaf("SettingName", name)
                        .end();
                }
                w.end().start("DomainSettings", &[]);
                for (name, value) in settings {
                    w.start("DomainSetting", &[("i:type", "DomainStringSetting")])
                        .leaf("Name", name)
                        .leaf("Value", value)
                        .end();
                }
                w.end().empty("RedirectTarget", &[("i:nil", "true")]);
            }
            Err(message) => {
                w.leaf("ErrorCode", "InvalidDomain")
                    .leaf("ErrorMessage", message)
                    .empty("DomainSettingErrors", &[])
                    .empty("DomainSettings", &[])
                    .empty("RedirectTarget", &[("i:nil", "true")]);
            }
        }
        w.end();
    }
    w.finish()
}
