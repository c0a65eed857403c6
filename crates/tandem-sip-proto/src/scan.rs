//! The small XML scanner the presence documents share (PIDF, RLMI): bodies are bounded by their
//! parsers before they get here, DTDs refused, and only element names, attributes and the text
//! after each tag are needed, so no tree is built.

/// One element start or end met by the scanner, with its attributes and the text after it.
pub(crate) struct Tag {
    /// The local name (without a namespace prefix).
    pub name: String,
    pub closing: bool,
    /// A self-closing element (`<a/>`): no end tag follows.
    pub empty: bool,
    pub attrs: Vec<(String, String)>,
    /// Text up to the next tag, still escaped.
    pub text: String,
}

impl Tag {
    pub fn attr(&self, name: &str) -> Option<String> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| unescape(v))
    }
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn attributes(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].trim_start();
        let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else { break };
        let Some(end) = after[1..].find(q) else { break };
        out.push((name, after[1..1 + end].to_owned()));
        rest = &after[end + 2..];
    }
    out
}

pub(crate) fn tags(text: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(lt) = rest.find('<') {
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else { break };
        let inner = &after[..gt];
        let next = &after[gt + 1..];
        let text_end = next.find('<').unwrap_or(next.len());
        if !(inner.starts_with('?') || inner.starts_with('!')) {
            let closing = inner.starts_with('/');
            let empty = inner.ends_with('/');
            let body = inner.trim_start_matches('/').trim_end_matches('/');
            let (name, attrs) = match body.find(char::is_whitespace) {
                Some(sp) => (&body[..sp], attributes(&body[sp..])),
                None => (body, Vec::new()),
            };
            out.push(Tag { name: local(name).to_owned(), closing, empty, attrs, text: next[..text_end].to_owned() });
        }
        rest = next;
    }
    out
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub(crate) fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}
