//! GetUserSettings: per-user settings (EWS URLs, display name, DN, versions…).

use tandem_xml::{Node, Writer, child, children_named, text};

use super::USER_SETTING_NAMES;
use crate::reply::ReplyError;
use crate::{ProtoError, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// SMTP addresses, in request order.
    pub mailboxes: Vec<String>,
    /// Setting names, in request order.
    pub settings: Vec<String>,
}

impl Request {
    pub fn parse(op: Node<'_, '_>) -> Result<Request, ProtoError> {
        let a = ns::AUTODISCOVER;
        let req = child(op, a, "Request").ok_or_else(|| ProtoError::schema("GetUserSettings needs a Request"))?;
        let users = child(req, a, "Users").ok_or_else(|| ProtoError::schema("GetUserSettings needs Users"))?;
        let mailboxes: Vec<String> = children_named(users, ns::AUTODISCOVER, "User")
            .map(|u| child(u, a, "Mailbox").map(text).unwrap_or_default())
            .collect();
        let settings: Vec<String> = child(req, a, "RequestedSettings")
            .map(|s| children_named(s, ns::AUTODISCOVER, "Setting").map(text).collect())
            .unwrap_or_default();
        if mailboxes.is_empty() {
            return Err(ProtoError::schema("GetUserSettings needs at least one User"));
        }
        if settings.is_empty() {
            return Err(ProtoError::schema("GetUserSettings needs at least one Setting"));
        }
        Ok(Request { mailboxes, settings })
    }
}

impl Request {
    /// `settings` of one mailbox.
    pub fn new(mailbox: &str, settings: &[&str]) -> Request {
        Request { mailboxes: vec![mailbox.to_owned()], settings: settings.iter().map(|s| (*s).to_owned()).collect() }
    }

    /// The `a:GetUserSettingsRequestMessage` element.
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.start("a:GetUserSettingsRequestMessage", &[]).start("a:Request", &[]).start("a:Users", &[]);
        for m in &self.mailboxes {
            w.start("a:User", &[]).leaf("a:Mailbox", m).end();
        }
        w.end().start("a:RequestedSettings", &[]);
        for s in &self.settings {
            w.leaf("a:Setting", s);
        }
        w.finish()
    }

    /// The whole request envelope, addressed to `to` when given.
    pub fn envelope(&self, to: Option<&str>) -> String {
        super::request_envelope("GetUserSettings", to, &self.to_xml())
    }
}

/// Every ErrorCode value MS-OXWSADISC defines, so a parsed code keeps the `'static` form the
/// rendering side uses; an unknown one reads as InternalServerError.
const ERROR_CODES: &[&str] = &[
    "NoError",
    "RedirectAddress",
    "RedirectUrl",
    "InvalidUser",
    "InvalidRequest",
    "InvalidSetting",
    "SettingIsNotAvailable",
    "ServerBusy",
    "InvalidDomain",
    "NotFederated",
    "InternalServerError",
];

fn error_code(s: &str) -> &'static str {
    ERROR_CODES.iter().copied().find(|c| *c == s).unwrap_or("InternalServerError")
}

/// A GetUserSettings answer as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The answer's own ErrorCode and ErrorMessage (NoError when the users were looked at).
    pub error_code: String,
    pub error_message: String,
    /// One per mailbox asked for, in order; an error other than the ones [`UserOutcome`] names
    /// reads as `InvalidUser`.
    pub users: Vec<(UserOutcome, Vec<SettingError>)>,
}

impl Response {
    /// The first user's value of `name`, when it is a string setting.
    pub fn setting(&self, name: &str) -> Option<&str> {
        match self.value(name)? {
            SettingValue::String(v) => Some(v),
            SettingValue::WebClientUrls(_) => None,
        }
    }

    /// The first user's value of `name`, of any type.
    pub fn value(&self, name: &str) -> Option<&SettingValue> {
        match self.users.first() {
            Some((UserOutcome::Settings(s), _)) => s.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A user setting's value: most are `StringSetting`s; the web client URLs are a collection of
/// their own type (`WebClientUrlCollectionSetting`), as Exchange answers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue {
    String(String),
    WebClientUrls(Vec<WebClientUrl>),
}

impl From<String> for SettingValue {
    fn from(v: String) -> SettingValue {
        SettingValue::String(v)
    }
}

/// One web client (OWA) URL and how a browser signs in there (`Fba`, `Basic`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebClientUrl {
    pub authentication_methods: String,
    pub url: String,
}

/// Reads a GetUserSettings answer for `request` (which names the users in order).
pub fn parse_response(doc: &tandem_xml::Document<'_>, request: &Request) -> Result<Response, ReplyError> {
    let a = ns::AUTODISCOVER;
    let op = crate::reply::body(doc)?;
    let bad = |what: &str| ReplyError::unexpected("GetUserSettings", what);
    if !tandem_xml::is(op, a, "GetUserSettingsResponseMessage") {
        return Err(bad("the answer is not a GetUserSettingsResponseMessage"));
    }
    let resp = child(op, a, "Response").ok_or_else(|| bad("the answer has no Response"))?;
    let mut users = Vec::new();
    for (n, u) in
        child(resp, a, "UserResponses").into_iter().flat_map(|l| children_named(l, a, "UserResponse")).enumerate()
    {
        let f = |name: &str| child(u, a, name).map(text).unwrap_or_default();
        let outcome = match f("ErrorCode").as_str() {
            "NoError" => UserOutcome::Settings(
                child(u, a, "UserSettings")
                    .into_iter()
                    .flat_map(|l| children_named(l, a, "UserSetting"))
                    .map(|s| {
                        let g = |node: Node<'_, '_>, name: &str| child(node, a, name).map(text).unwrap_or_default();
                        let value = match child(s, a, "WebClientUrls") {
                            Some(list) => SettingValue::WebClientUrls(
                                children_named(list, a, "WebClientUrl")
                                    .map(|u| WebClientUrl {
                                        authentication_methods: g(u, "AuthenticationMethods"),
                                        url: g(u, "Url"),
                                    })
                                    .collect(),
                            ),
                            None => SettingValue::String(g(s, "Value")),
                        };
                        (g(s, "Name"), value)
                    })
                    .collect(),
            ),
            "RedirectAddress" => UserOutcome::RedirectAddress(f("RedirectTarget")),
            "RedirectUrl" => UserOutcome::RedirectUrl(f("RedirectTarget")),
            _ => UserOutcome::InvalidUser(request.mailboxes.get(n).cloned().unwrap_or_default()),
        };
        let errors = child(u, a, "UserSettingErrors")
            .into_iter()
            .flat_map(|l| children_named(l, a, "UserSettingError"))
            .map(|e| {
                let g = |name: &str| child(e, a, name).map(text).unwrap_or_default();
                SettingError { name: g("SettingName"), code: error_code(&g("ErrorCode")), message: g("ErrorMessage") }
            })
            .collect();
        users.push((outcome, errors));
    }
    Ok(Response {
        error_code: child(resp, a, "ErrorCode").map(text).unwrap_or_default(),
        error_message: child(resp, a, "ErrorMessage").map(text).unwrap_or_default(),
        users,
    })
}

/// The per-user error codes (`ErrorCode` of a UserResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOutcome {
    /// Settings found: (name, value) for each known, available one.
    Settings(Vec<(String, SettingValue)>),
    InvalidUser(String),
    RedirectAddress(String),
    RedirectUrl(String),
}

/// How each requested setting turned out for a found user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub name: String,
    pub code: &'static str,
    pub message: String,
}

/// Splits requested names into known and unknown ones (InvalidSetting errors).
pub fn classify(requested: &[String]) -> (Vec<&str>, Vec<SettingError>) {
    let mut known = Vec::new();
    let mut errors = Vec::new();
    for name in requested {
        match USER_SETTING_NAMES.iter().find(|n| *n == name) {
            Some(n) => known.push(*n),
            None => errors.push(SettingError {
                name: name.clone(),
                code: "InvalidSetting",
                message: format!("The requested setting {name} is not valid."),
            }),
        }
    }
    (known, errors)
}

/// Renders the response body for all users.
pub fn render(users: &[(UserOutcome, Vec<SettingError>)]) -> String {
    let mut w = Writer::new();
    w.start("GetUserSettingsResponseMessage", &[("xmlns", ns::AUTODISCOVER)]);
    w.start("Response", &[]).leaf("ErrorCode", "NoError").leaf("ErrorMessage", "").start("UserResponses", &[]);
    for (outcome, errors) in users {
        w.start("UserResponse", &[]);
        match outcome {
            UserOutcome::Settings(settings) => {
                w.leaf("ErrorCode", "NoError").leaf("ErrorMessage", "No error.");
                w.empty("RedirectTarget", &[("i:nil", "true")]);
                w.start("UserSettingErrors", &[]);
                for e in errors {
                    w.start("UserSettingError", &[])
                        .leaf("ErrorCode", e.code)
                        .leaf("ErrorMessage", &e.message)
                        .leaf("SettingName", &e.name)
                        .end();
                }
                w.end().start("UserSettings", &[]);
                for (name, value) in settings {
                    match value {
                        SettingValue::String(v) => {
                            w.start("UserSetting", &[("i:type", "StringSetting")]).leaf("Name", name).leaf("Value", v);
                        }
                        SettingValue::WebClientUrls(urls) => {
                            w.start("UserSetting", &[("i:type", "WebClientUrlCollectionSetting")])
                                .leaf("Name", name)
                                .start("WebClientUrls", &[]);
                            for u in urls {
                                w.start("WebClientUrl", &[])
                                    .leaf("AuthenticationMethods", &u.authentication_methods)
                                    .leaf("Url", &u.url)
                                    .end();
                            }
                            w.end();
                        }
                    }
                    w.end();
                }
                w.end();
            }
            UserOutcome::InvalidUser(addr) => {
                w.leaf("ErrorCode", "InvalidUser")
                    .leaf("ErrorMessage", &format!("Invalid user: '{addr}'"))
                    .empty("RedirectTarget", &[("i:nil", "true")])
                    .empty("UserSettingErrors", &[])
                    .empty("UserSettings", &[]);
            }
            UserOutcome::RedirectAddress(target) | UserOutcome::RedirectUrl(target) => {
                let code =
                    if matches!(outcome, UserOutcome::RedirectAddress(_)) { "RedirectAddress" } else { "RedirectUrl" };
                w.leaf("ErrorCode", code)
                    .leaf("ErrorMessage", "Redirection.")
                    .leaf("RedirectTarget", target)
                    .empty("UserSettingErrors", &[])
                    .empty("UserSettings", &[]);
            }
        }
        w.end();
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_xml::soap::Envelope;

    #[test]
    fn parses_exchangelib_request() {
        let xml = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:wsa="http://www.w3.org/2005/08/addressing"><s:Header><a:RequestedServerVersion>Exchange2016</a:RequestedServerVersion><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action></s:Header><s:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>alice@litwareinc.com</a:Mailbox></a:User></a:Users><a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting><a:Setting>Bogus</a:Setting></a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></s:Body></s:Envelope>"#;
        let doc = tandem_xml::parse(xml.as_bytes(), Default::default()).unwrap();
        let env = Envelope::of(&doc).unwrap();
        let crate::autodiscover::Request::GetUserSettings(r) = crate::autodiscover::parse(&env).unwrap() else {
            panic!()
        };
        assert_eq!(r.mailboxes, ["alice@litwareinc.com"]);
        let (known, errors) = classify(&r.settings);
        assert_eq!(known, ["ExternalEwsUrl"]);
        assert_eq!(errors[0].name, "Bogus");
        let urls = vec![WebClientUrl { authentication_methods: "Fba".into(), url: "https://x/owa/".into() }];
        let body = render(&[(
            UserOutcome::Settings(vec![
                ("ExternalEwsUrl".into(), "https://x/EWS".to_owned().into()),
                ("ExternalWebClientUrls".into(), SettingValue::WebClientUrls(urls.clone())),
            ]),
            errors,
        )]);
        let full = crate::autodiscover::envelope("GetUserSettingsResponse", &body);
        let doc = tandem_xml::parse(full.as_bytes(), Default::default()).unwrap();
        let two = Request::new("alice@litwareinc.com", &["ExternalEwsUrl", "ExternalWebClientUrls"]);
        let read = parse_response(&doc, &two).unwrap();
        assert_eq!(read.setting("ExternalEwsUrl"), Some("https://x/EWS"));
        assert_eq!(read.value("ExternalWebClientUrls"), Some(&SettingValue::WebClientUrls(urls)));
        assert!(full.contains(r#"i:type="WebClientUrlCollectionSetting""#), "{full}");
    }
}
