//! The AQS (Advanced Query Syntax) subset that FindItem's `QueryString` and the administrator's
//! eDiscovery search take: words, `"phrases"`, `subject:`, `body:`, `from:`, `to:`, `cc:`,
//! `participants:` on a word or phrase, a prefix (`budg*`, `"quarterly budg*"`: the last word,
//! at least [`MIN_PREFIX`] characters), `received:` with a day (`2026-12-01`), a range
//! (`2026-12-01..2026-12-31`) or a comparison (`>=2026-12-01`, `<2026-12-02`), `AND` (also
//! implied between terms), `OR`, `NOT` (beside a term it narrows: `budget NOT draft`), and
//! parentheses; `received:` may stand anywhere, inside an OR too (not under NOT). Matching is by whole word, case-insensitively, on the words [`words`] cuts a text into
//! (the index stores the same words).
//!
//! The parser is bounded: at most [`MAX_QUERY_CHARS`] characters, [`MAX_TERMS`] terms and
//! [`MAX_DEPTH`] levels of parentheses, and a [`plan`] has at most [`MAX_BRANCHES`] branches;
//! anything else is a typed [`AqsError`], never a panic.

/// Longest query accepted (characters).
pub const MAX_QUERY_CHARS: usize = 1024;
/// Most terms (words, phrases, ranges) in one query.
pub const MAX_TERMS: usize = 32;
/// Deepest nesting of parentheses.
pub const MAX_DEPTH: usize = 8;
/// Most words in one phrase.
pub const MAX_PHRASE_WORDS: usize = 16;
/// Shortest prefix (`abc*`) accepted: shorter ones match most of the index.
pub const MIN_PREFIX: usize = 3;
/// Most branches (text and received range each) a plan splits a query into: dates inside ORs
/// multiply them.
pub const MAX_BRANCHES: usize = 8;

/// Why a query string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AqsError {
    #[error("the query string is empty")]
    Empty,
    #[error("the query string is longer than {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("the query string has more than {MAX_TERMS} terms")]
    TooManyTerms,
    #[error("the query string nests parentheses deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("a phrase has more than {MAX_PHRASE_WORDS} words")]
    PhraseTooLong,
    #[error("unknown property {0:?} (subject, body, from, to, cc, participants, received)")]
    UnknownProperty(String),
    #[error("{0:?} has no word to search for")]
    NoWords(String),
    #[error("a phrase is not closed by a quote")]
    UnclosedQuote,
    #[error("a parenthesis is not matched")]
    Unbalanced,
    #[error("{0} needs a term on both sides")]
    DanglingOperator(&'static str),
    #[error("{0:?} is not a date or date range (YYYY-MM-DD, A..B, >=A, <A)")]
    BadDate(String),
    #[error("received: inside OR makes more than {MAX_BRANCHES} alternatives")]
    TooManyBranches,
    #[error("a prefix needs at least {MIN_PREFIX} letters or digits before the *")]
    ShortPrefix,
    #[error("NOT narrows a search: it needs a term beside it that is not negated (a NOT b)")]
    NotAlone,
    #[error("received: cannot stand under NOT")]
    DateInsideNot,
}

/// Where a word or phrase must occur.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Subject, body or participants.
    Any,
    Subject,
    Body,
    /// The sender (From, Sender).
    From,
    /// The recipients (To, Cc, Bcc).
    To,
    /// Sender or recipients.
    Participants,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Consecutive words (one word, or a phrase) in a field; with `prefix` the last word is a
    /// prefix.
    Words {
        field: Field,
        words: Vec<String>,
        prefix: bool,
    },
    /// Received in `[from, until)` (Unix seconds; open where None).
    Received {
        from: Option<i64>,
        until: Option<i64>,
    },
    And(Vec<Query>),
    Or(Vec<Query>),
    /// Items that do not match (only beside a term that is not negated).
    Not(Box<Query>),
}

/// A query split the way a full-text index answers it: alternatives ([`Branch`]), an item
/// matching any of them matches the query. A query whose dates stand beside the other terms is
/// one branch; `received:` inside an OR makes more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub branches: Vec<Branch>,
}

/// One alternative of a plan: its text part (None when it has only dates) and the received range
/// `[from, until)` its hits must fall in (open where None).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    pub text: Option<Query>,
    pub from: Option<i64>,
    pub until: Option<i64>,
}

impl Branch {
    /// Both conditions at once; None when the ranges do not meet.
    fn and(&self, other: &Branch) -> Option<Branch> {
        let text = match (&self.text, &other.text) {
            (None, t) | (t, None) => t.clone(),
            (Some(a), Some(b)) => {
                let mut parts = Vec::new();
                for q in [a, b] {
                    match q {
                        Query::And(v) => parts.extend(v.iter().cloned()),
                        other => parts.push(other.clone()),
                    }
                }
                Some(Query::And(parts))
            }
        };
        let from = self.from.max(other.from);
        let until = match (self.until, other.until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let (Some(f), Some(u)) = (from, until)
            && f >= u
        {
            return None;
        }
        Some(Branch { text, from, until })
    }
}

impl Plan {
    /// Narrows every branch to `[from, until)` (eDiscovery's start and end dates); a branch
    /// left with an empty range goes.
    pub fn narrow(&mut self, from: Option<i64>, until: Option<i64>) {
        let range = Branch { text: None, from, until };
        self.branches = self.branches.iter().filter_map(|b| b.and(&range)).collect();
    }
}

/// The words of a text as the index keeps them: lowercased runs of letters and digits.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// A text reduced to its words, space-separated (what is written to the index).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for w in words(text) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&w);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    /// `prop:` prefix (lowercased) and the value, `quoted` when it was a phrase.
    Term {
        prop: Option<String>,
        value: String,
        quoted: bool,
    },
}

fn tokenize(q: &str) -> Result<Vec<Tok>, AqsError> {
    let mut out = Vec::new();
    let mut chars = q.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '(' || c == ')' {
            chars.next();
            out.push(if c == '(' { Tok::Open } else { Tok::Close });
            continue;
        }
        // A bare run up to whitespace, a parenthesis or a quote; `prop:"…"` takes the phrase.
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let bare = &q[start..end];
        let quoted_next = matches!(chars.peek(), Some((_, '"')));
        let (prop, value, quoted) = if quoted_next && (bare.is_empty() || bare.ends_with(':')) {
            chars.next();
            let from = start + bare.len() + 1;
            let mut close = None;
            for (i, c) in chars.by_ref() {
                if c == '"' {
                    close = Some(i);
                    break;
                }
            }
            let close = close.ok_or(AqsError::UnclosedQuote)?;
            let prop = bare.strip_suffix(':').map(str::to_ascii_lowercase);
            (prop, q[from..close].to_owned(), true)
        } else if bare.is_empty() {
            // A quote right after a bare word with no colon: a stray quote.
            return Err(AqsError::UnclosedQuote);
        } else {
            match bare {
                "AND" => {
                    out.push(Tok::And);
                    continue;
                }
                "OR" => {
                    out.push(Tok::Or);
                    continue;
                }
                "NOT" => {
                    out.push(Tok::Not);
                    continue;
                }
                _ => {}
            }
            match bare.split_once(':') {
                Some((p, v)) if !p.is_empty() => (Some(p.to_ascii_lowercase()), v.to_owned(), false),
                _ => (None, bare.to_owned(), false),
            }
        };
        out.push(Tok::Term { prop, value, quoted });
        if out.len() > MAX_TERMS * 4 {
            return Err(AqsError::TooManyTerms);
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn or(&mut self, depth: usize) -> Result<Query, AqsError> {
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some(&Tok::Or) {
            self.at += 1;
            if matches!(self.peek(), None | Some(Tok::Close | Tok::Or | Tok::And)) {
                return Err(AqsError::DanglingOperator("OR"));
            }
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Query::Or(parts) })
    }

    fn and(&mut self, depth: usize) -> Result<Query, AqsError> {
        let mut parts = vec![self.unary(depth)?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.at += 1;
                    if matches!(self.peek(), None | Some(Tok::Close | Tok::Or | Tok::And)) {
                        return Err(AqsError::DanglingOperator("AND"));
                    }
                }
                Some(Tok::Open | Tok::Not | Tok::Term { .. }) => {}
                _ => break,
            }
            parts.push(self.unary(depth)?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Query::And(parts) })
    }

    fn unary(&mut self, depth: usize) -> Result<Query, AqsError> {
        match self.toks.get(self.at).cloned() {
            Some(Tok::Open) => {
                if depth >= MAX_DEPTH {
                    return Err(AqsError::TooDeep);
                }
                self.at += 1;
                let q = self.or(depth + 1)?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(AqsError::Unbalanced);
                }
                self.at += 1;
                Ok(q)
            }
            Some(Tok::Term { prop, value, quoted }) => {
                self.at += 1;
                self.terms += 1;
                if self.terms > MAX_TERMS {
                    return Err(AqsError::TooManyTerms);
                }
                term(prop.as_deref(), &value, quoted)
            }
            Some(Tok::Not) => {
                self.at += 1;
                if matches!(self.peek(), None | Some(Tok::Close | Tok::Or | Tok::And)) {
                    return Err(AqsError::DanglingOperator("NOT"));
                }
                if depth >= MAX_DEPTH {
                    return Err(AqsError::TooDeep);
                }
                Ok(Query::Not(Box::new(self.unary(depth + 1)?)))
            }
            Some(Tok::Close) => Err(AqsError::Unbalanced),
            Some(Tok::And) => Err(AqsError::DanglingOperator("AND")),
            Some(Tok::Or) => Err(AqsError::DanglingOperator("OR")),
            None => Err(AqsError::Empty),
        }
    }
}

fn term(prop: Option<&str>, value: &str, quoted: bool) -> Result<Query, AqsError> {
    let field = match prop {
        None => Field::Any,
        Some("subject") => Field::Subject,
        Some("body") => Field::Body,
        Some("from") => Field::From,
        Some("to" | "cc" | "bcc") => Field::To,
        Some("participants") => Field::Participants,
        Some("received") if !quoted => return received(value),
        Some(p) => return Err(AqsError::UnknownProperty(p.to_owned())),
    };
    let prefix = value.ends_with('*');
    let words: Vec<String> = words(value).collect();
    if words.is_empty() {
        return Err(AqsError::NoWords(value.to_owned()));
    }
    if words.len() > MAX_PHRASE_WORDS {
        return Err(AqsError::PhraseTooLong);
    }
    if prefix && words.last().is_some_and(|w| w.chars().count() < MIN_PREFIX) {
        return Err(AqsError::ShortPrefix);
    }
    Ok(Query::Words { field, words, prefix })
}

const DAY: i64 = 86_400;

fn day(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).ok().map(|d| d.midnight().assume_utc().unix_timestamp())
}

fn received(v: &str) -> Result<Query, AqsError> {
    let bad = || AqsError::BadDate(v.to_owned());
    let (from, until) = if let Some((a, b)) = v.split_once("..") {
        (Some(day(a).ok_or_else(bad)?), Some(day(b).ok_or_else(bad)? + DAY))
    } else if let Some(d) = v.strip_prefix(">=") {
        (Some(day(d).ok_or_else(bad)?), None)
    } else if let Some(d) = v.strip_prefix("<=") {
        (None, Some(day(d).ok_or_else(bad)? + DAY))
    } else if let Some(d) = v.strip_prefix('>') {
        (Some(day(d).ok_or_else(bad)? + DAY), None)
    } else if let Some(d) = v.strip_prefix('<') {
        (None, Some(day(d).ok_or_else(bad)?))
    } else {
        let d = day(v).ok_or_else(bad)?;
        (Some(d), Some(d + DAY))
    };
    Ok(Query::Received { from, until })
}

/// Parses a query string.
pub fn parse(q: &str) -> Result<Query, AqsError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(AqsError::TooLong);
    }
    let toks = tokenize(q)?;
    if toks.is_empty() {
        return Err(AqsError::Empty);
    }
    let mut p = Parser { toks, at: 0, terms: 0 };
    let query = p.or(0)?;
    match p.peek() {
        None => Ok(query),
        Some(Tok::Close) => Err(AqsError::Unbalanced),
        Some(_) => Err(AqsError::Unbalanced),
    }
}

fn has_date(q: &Query) -> bool {
    match q {
        Query::Received { .. } => true,
        Query::Words { .. } => false,
        Query::And(v) | Query::Or(v) => v.iter().any(has_date),
        Query::Not(q) => has_date(q),
    }
}

/// Whether a text query matches something of its own (not only "everything but"): a word, an
/// AND with such a part, an OR of such parts.
fn positive(q: &Query) -> bool {
    match q {
        Query::Words { .. } | Query::Received { .. } => true,
        Query::And(v) => v.iter().any(positive),
        Query::Or(v) => v.iter().all(positive),
        Query::Not(_) => false,
    }
}

/// The alternatives a query is: the terms without dates stay one text query; an OR with dates in
/// it becomes one branch per part with dates (and one for the rest), an AND the combinations of
/// its parts' branches, at most [`MAX_BRANCHES`] at every step.
fn branches(q: &Query) -> Result<Vec<Branch>, AqsError> {
    let out = match q {
        Query::Received { from, until } => vec![Branch { text: None, from: *from, until: *until }],
        Query::Not(inner) if has_date(inner) => return Err(AqsError::DateInsideNot),
        other if !has_date(other) => vec![Branch { text: Some(other.clone()), from: None, until: None }],
        Query::Or(parts) => {
            let mut out = Vec::new();
            let mut plain: Vec<Query> = Vec::new();
            for p in parts {
                if has_date(p) {
                    out.extend(branches(p)?);
                } else {
                    plain.push(p.clone());
                }
                if out.len() > MAX_BRANCHES {
                    return Err(AqsError::TooManyBranches);
                }
            }
            if !plain.is_empty() {
                let text = if plain.len() == 1 { plain.remove(0) } else { Query::Or(plain) };
                out.insert(0, Branch { text: Some(text), from: None, until: None });
            }
            out
        }
        Query::And(parts) => {
            let mut acc = vec![Branch { text: None, from: None, until: None }];
            for p in parts {
                let next = branches(p)?;
                if acc.len().saturating_mul(next.len()) > MAX_BRANCHES {
                    return Err(AqsError::TooManyBranches);
                }
                acc = acc.iter().flat_map(|a| next.iter().filter_map(|b| a.and(b))).collect();
            }
            acc
        }
        // Words and NOTs without dates were taken above.
        Query::Words { .. } | Query::Not(_) => vec![Branch { text: Some(q.clone()), from: None, until: None }],
    };
    if out.len() > MAX_BRANCHES {
        return Err(AqsError::TooManyBranches);
    }
    Ok(out)
}

/// Parses a query and splits it into the branches a full-text index answers (see [`Plan`]).
pub fn plan(q: &str) -> Result<Plan, AqsError> {
    let branches = branches(&parse(q)?)?;
    if branches.iter().any(|b| b.text.as_ref().is_some_and(|t| !positive(t))) {
        return Err(AqsError::NotAlone);
    }
    Ok(Plan { branches })
}

/// The text part as an SQLite FTS5 MATCH expression over the columns `subject`, `body`,
/// `sender`, `recipients`. Every word is quoted (words hold only letters and digits), so the
/// expression is always well formed.
pub fn to_fts5(q: &Query) -> String {
    match q {
        Query::Words { field, words, prefix } => {
            let phrase = format!("\"{}\"{}", words.join(" "), if *prefix { "*" } else { "" });
            match field {
                Field::Any => phrase,
                Field::Subject => format!("subject : {phrase}"),
                Field::Body => format!("body : {phrase}"),
                Field::From => format!("sender : {phrase}"),
                Field::To => format!("recipients : {phrase}"),
                Field::Participants => format!("{{sender recipients}} : {phrase}"),
            }
        }
        Query::Received { .. } => String::new(),
        // FTS5's NOT is binary: the parts that are not negated, then each negated one.
        Query::And(v) => {
            let (neg, pos): (Vec<&Query>, Vec<&Query>) = v.iter().partition(|q| matches!(q, Query::Not(_)));
            let mut out = format!("({})", pos.iter().map(|q| to_fts5(q)).collect::<Vec<_>>().join(" AND "));
            for n in neg {
                if let Query::Not(inner) = n {
                    out = format!("({out} NOT {})", to_fts5(inner));
                }
            }
            out
        }
        Query::Or(v) => format!("({})", v.iter().map(to_fts5).collect::<Vec<_>>().join(" OR ")),
        // Only inside an AND (the plan refuses a NOT alone); standing alone it matches nothing
        // here rather than everything.
        Query::Not(inner) => format!("({} NOT {})", to_fts5(inner), to_fts5(inner)),
    }
}

/// The text part as a PostgreSQL tsquery (for `to_tsquery('simple', …)`) over a document whose
/// subject has weight A, body B, sender C and recipients D. Words hold only letters and digits,
/// so nothing needs quoting.
pub fn to_tsquery(q: &Query) -> String {
    match q {
        Query::Words { field, words, prefix } => {
            let weight = match field {
                Field::Any => "",
                Field::Subject => "A",
                Field::Body => "B",
                Field::From => "C",
                Field::To => "D",
                Field::Participants => "CD",
            };
            let last = words.len().saturating_sub(1);
            let phrase: Vec<String> = words
                .iter()
                .enumerate()
                .map(|(i, w)| match (i == last && *prefix, weight.is_empty()) {
                    (true, _) => format!("{w}:*{weight}"),
                    (false, true) => w.clone(),
                    (false, false) => format!("{w}:{weight}"),
                })
                .collect();
            format!("({})", phrase.join(" <-> "))
        }
        Query::Received { .. } => String::new(),
        Query::And(v) => format!("({})", v.iter().map(to_tsquery).collect::<Vec<_>>().join(" & ")),
        Query::Or(v) => format!("({})", v.iter().map(to_tsquery).collect::<Vec<_>>().join(" | ")),
        Query::Not(inner) => format!("!{}", to_tsquery(inner)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(field: Field, s: &str) -> Query {
        Query::Words { field, words: s.split(' ').map(str::to_owned).collect(), prefix: false }
    }

    #[test]
    fn parses_words_phrases_properties_and_operators() {
        assert_eq!(parse("hello").unwrap(), w(Field::Any, "hello"));
        assert_eq!(
            parse("subject:Budget \"Big World\" OR from:bob").unwrap(),
            Query::Or(vec![
                Query::And(vec![w(Field::Subject, "budget"), w(Field::Any, "big world")]),
                w(Field::From, "bob")
            ])
        );
        assert_eq!(
            parse("(a OR b) AND to:\"carol example\"").unwrap(),
            Query::And(vec![Query::Or(vec![w(Field::Any, "a"), w(Field::Any, "b")]), w(Field::To, "carol example")])
        );
        assert_eq!(parse("bob@example.com").unwrap(), w(Field::Any, "bob example com"));
    }

    fn one(text: Option<Query>, from: Option<i64>, until: Option<i64>) -> Branch {
        Branch { text, from, until }
    }

    #[test]
    fn plans_dates_beside_text() {
        let p = plan("kiwi received:2026-12-01..2026-12-02 received:>=2026-12-02").unwrap();
        assert_eq!(p.branches, [one(Some(w(Field::Any, "kiwi")), Some(1_796_169_600), Some(1_796_169_600 + DAY))]);
        assert_eq!(plan("received:<2026-12-01").unwrap().branches, [one(None, None, Some(1_796_083_200))]);
        // Ranges that do not meet leave nothing to find.
        assert_eq!(plan("kiwi received:2026-12-01 received:2026-12-03").unwrap().branches, []);
    }

    #[test]
    fn plans_dates_inside_or_as_branches() {
        let d = 1_796_083_200; // 2026-12-01
        assert_eq!(
            plan("a OR b OR received:2026-12-01").unwrap().branches,
            [
                one(Some(Query::Or(vec![w(Field::Any, "a"), w(Field::Any, "b")])), None, None),
                one(None, Some(d), Some(d + DAY))
            ]
        );
        assert_eq!(
            plan("kiwi (received:2026-12-01 OR subject:lime)").unwrap().branches,
            [
                one(Some(Query::And(vec![w(Field::Any, "kiwi"), w(Field::Subject, "lime")])), None, None),
                one(Some(w(Field::Any, "kiwi")), Some(d), Some(d + DAY))
            ]
        );
        assert_eq!(
            plan("(a received:2026-12-01) OR (b received:>=2026-12-02)").unwrap().branches,
            [one(Some(w(Field::Any, "a")), Some(d), Some(d + DAY)), one(Some(w(Field::Any, "b")), Some(d + DAY), None)]
        );
        let mut p = plan("a OR received:2026-12-01").unwrap();
        p.narrow(Some(d + DAY), None);
        assert_eq!(p.branches, [one(Some(w(Field::Any, "a")), Some(d + DAY), None)]);
        let many = "(a OR received:2026-12-01) (b OR received:2026-12-01) (c OR received:2026-12-01) (d OR received:2026-12-01)";
        assert_eq!(plan(many), Err(AqsError::TooManyBranches));
    }

    #[test]
    fn prefixes_and_not() {
        let p = |f, s: &str| Query::Words { field: f, words: s.split(' ').map(str::to_owned).collect(), prefix: true };
        assert_eq!(parse("budg*").unwrap(), p(Field::Any, "budg"));
        assert_eq!(parse("subject:\"big wor*\"").unwrap(), p(Field::Subject, "big wor"));
        assert_eq!(to_fts5(&parse("subject:\"big wor*\"").unwrap()), "subject : \"big wor\"*");
        assert_eq!(to_tsquery(&parse("subject:\"big wor*\"").unwrap()), "(big:A <-> wor:*A)");
        assert_eq!(to_tsquery(&parse("budg*").unwrap()), "(budg:*)");
        assert_eq!(parse("bu*"), Err(AqsError::ShortPrefix));
        let q = parse("budget NOT draft").unwrap();
        assert_eq!(q, Query::And(vec![w(Field::Any, "budget"), Query::Not(Box::new(w(Field::Any, "draft")))]));
        assert_eq!(to_fts5(&q), "((\"budget\") NOT \"draft\")");
        assert_eq!(to_tsquery(&q), "((budget) & !(draft))");
        assert_eq!(to_fts5(&parse("NOT a b NOT (c OR d)").unwrap()), "(((\"b\") NOT \"a\") NOT (\"c\" OR \"d\"))");
        assert_eq!(plan("NOT draft"), Err(AqsError::NotAlone));
        assert_eq!(plan("a OR NOT b"), Err(AqsError::NotAlone));
        assert_eq!(plan("NOT b received:2026-12-01"), Err(AqsError::NotAlone));
        assert_eq!(plan("a NOT received:2026-12-01"), Err(AqsError::DateInsideNot));
        assert_eq!(parse("a NOT"), Err(AqsError::DanglingOperator("NOT")));
        assert!(plan("(a NOT b) OR c received:2026-12-01").is_ok());
    }

    #[test]
    fn compiles_for_both_indexes() {
        let q = parse("subject:\"big world\" OR participants:bob").unwrap();
        assert_eq!(to_fts5(&q), "(subject : \"big world\" OR {sender recipients} : \"bob\")");
        assert_eq!(to_tsquery(&q), "((big:A <-> world:A) | (bob:CD))");
    }

    #[test]
    fn refuses_bad_queries_with_a_reason() {
        assert_eq!(parse(""), Err(AqsError::Empty));
        assert_eq!(parse("   "), Err(AqsError::Empty));
        assert_eq!(parse("\"open"), Err(AqsError::UnclosedQuote));
        assert_eq!(parse("(a"), Err(AqsError::Unbalanced));
        assert_eq!(parse("a)"), Err(AqsError::Unbalanced));
        assert_eq!(parse("a OR"), Err(AqsError::DanglingOperator("OR")));
        assert_eq!(parse("AND a"), Err(AqsError::DanglingOperator("AND")));
        assert_eq!(parse("colour:red"), Err(AqsError::UnknownProperty("colour".into())));
        assert_eq!(parse("received:yesterday"), Err(AqsError::BadDate("yesterday".into())));
        assert_eq!(parse("!!!"), Err(AqsError::NoWords("!!!".into())));
        assert_eq!(parse(&"x".repeat(MAX_QUERY_CHARS + 1)), Err(AqsError::TooLong));
        assert_eq!(parse(&"a ".repeat(MAX_TERMS + 1)), Err(AqsError::TooManyTerms));
        assert_eq!(parse(&format!("{}a{}", "(".repeat(9), ")".repeat(9))), Err(AqsError::TooDeep));
    }
}
