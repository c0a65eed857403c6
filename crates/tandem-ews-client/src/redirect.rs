//! Which Autodiscover redirects the client follows. Skype for Business follows an Exchange
//! Autodiscover redirect only to hosts its administrator allowed
//! (`Set-CsOAuthConfiguration -ExchangeAutodiscoverAllowedDomains "*.contoso.com;*.fabrikam.com"`):
//! a redirect is an answer from the network telling the server where to send tokens acting as
//! a user, so an open rule would let anyone who can answer Autodiscover collect them.

/// At most this many redirects per lookup, as the EWS Managed API
/// (`AutodiscoverMaxRedirections`) and exchangelib allow.
pub const MAX_REDIRECTS: usize = 10;

/// The allowed-domains rule: `*.example.com` allows `example.com` and every name under it, a
/// name without `*.` only itself. Empty: no redirect leaves the host it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedirectPolicy {
    patterns: Vec<String>,
}

impl RedirectPolicy {
    /// Reads the `;`-separated list of Set-CsOAuthConfiguration (spaces and empty entries
    /// ignored, compared without case).
    pub fn from_allowed_domains(list: Option<&str>) -> RedirectPolicy {
        let patterns = list
            .unwrap_or("")
            .split([';', ','])
            .map(|p| p.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|p| !p.is_empty() && p != "*." && p != "*")
            .collect();
        RedirectPolicy { patterns }
    }

    /// True when a redirect may go to `host`.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.patterns.iter().any(|p| match p.strip_prefix("*.") {
            Some(domain) => {
                host == domain || host.strip_suffix(domain).is_some_and(|head| head.len() > 1 && head.ends_with('.'))
            }
            None => host == *p,
        })
    }

    /// The rule as an administrator wrote it, for error messages.
    pub fn describe(&self) -> String {
        if self.patterns.is_empty() { "(none)".to_owned() } else { self.patterns.join(";") }
    }
}

/// Where Autodiscover for an address in `domain` is, when a redirect names a new address: the
/// `autodiscover.<domain>` name the integration's DNS step requires.
pub fn autodiscover_url_for(domain: &str) -> String {
    format!("https://autodiscover.{}/autodiscover/autodiscover.svc", domain.to_ascii_lowercase())
}

/// The domain part of an address (after the last `@`), without case.
pub(crate) fn domain_of(address: &str) -> Option<String> {
    address.rsplit_once('@').map(|(_, d)| d.trim().to_ascii_lowercase()).filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_the_domain_and_names_under_it_only() {
        let p = RedirectPolicy::from_allowed_domains(Some(" *.Contoso.com ; mail.fabrikam.com;;"));
        for ok in ["contoso.com", "autodiscover.contoso.com", "a.b.CONTOSO.com.", "mail.fabrikam.com"] {
            assert!(p.allows(ok), "{ok}");
        }
        for refused in ["evilcontoso.com", "contoso.com.evil.net", "fabrikam.com", "autodiscover.fabrikam.com", ""] {
            assert!(!p.allows(refused), "{refused}");
        }
        assert_eq!(p.describe(), "*.contoso.com;mail.fabrikam.com");
    }

    #[test]
    fn nothing_is_allowed_by_default_and_a_bare_star_allows_nothing() {
        for list in [None, Some(""), Some("*"), Some("*.")] {
            assert!(!RedirectPolicy::from_allowed_domains(list).allows("autodiscover.contoso.com"), "{list:?}");
        }
    }

    #[test]
    fn new_addresses_go_to_autodiscover_of_their_domain() {
        assert_eq!(domain_of("Carol@Fabrikam.com").as_deref(), Some("fabrikam.com"));
        assert_eq!(domain_of("carol"), None);
        assert_eq!(
            autodiscover_url_for("Fabrikam.com"),
            "https://autodiscover.fabrikam.com/autodiscover/autodiscover.svc"
        );
    }
}
