//! Restrictions, sort orders and QueryString evaluated on property values. Values come from a
//! getter so folders and items share the logic.

use std::cmp::Ordering;

use tandem_ews_proto::types::{Comparison, Containment, ExtendedField, Operand, PropertyPath, Restriction};
use tandem_ews_proto::{parse_bool, parse_datetime};

use super::computed_value;
use crate::data::{Item, element_text};

pub(crate) type Getter<'a> = dyn Fn(&PropertyPath) -> Option<Vec<String>> + 'a;

/// True when the values satisfy the restriction.
pub(crate) fn matches(r: &Restriction, get: &Getter<'_>) -> bool {
    match r {
        Restriction::And(parts) => parts.iter().all(|p| matches(p, get)),
        Restriction::Or(parts) => parts.iter().any(|p| matches(p, get)),
        Restriction::Not(inner) => !matches(inner, get),
        Restriction::Exists(path) => get(path).is_some(),
        Restriction::Compare { path, op, value } => {
            let Some(left) = get(path) else { return false };
            let right = match value {
                Operand::Constant(c) => vec![c.clone()],
                Operand::Path(p) => match get(p) {
                    Some(v) => v,
                    None => return false,
                },
            };
            left.iter().any(|l| {
                right.iter().any(|r| {
                    let ord = compare(l, r);
                    match op {
                        Comparison::Equal => ord == Ordering::Equal,
                        Comparison::NotEqual => ord != Ordering::Equal,
                        Comparison::Greater => ord == Ordering::Greater,
                        Comparison::GreaterOrEqual => ord != Ordering::Less,
                        Comparison::Less => ord == Ordering::Less,
                        Comparison::LessOrEqual => ord != Ordering::Greater,
                    }
                })
            })
        }
        Restriction::Contains { path, value, mode, ignore_case } => {
            let Some(values) = get(path) else { return false };
            values.iter().any(|v| contains(v, value, *mode, *ignore_case))
        }
        Restriction::Excludes { path, mask } => get(path).is_some_and(|vs| {
            vs.iter().all(|v| v.trim().parse::<i64>().map(|n| (n as u64) & mask == 0).unwrap_or(false))
        }),
    }
}

fn contains(haystack: &str, needle: &str, mode: Containment, ignore_case: bool) -> bool {
    let (h, n) = if ignore_case {
        (haystack.to_lowercase(), needle.to_lowercase())
    } else {
        (haystack.to_owned(), needle.to_owned())
    };
    match mode {
        Containment::FullString => h == n,
        Containment::Prefixed => h.starts_with(&n),
        Containment::Substring | Containment::ExactPhrase => h.contains(&n),
        Containment::PrefixOnWords => h.split(|c: char| !c.is_alphanumeric()).any(|w| w.starts_with(&n)),
    }
}

/// Compares two property values as date-times, numbers, booleans or text (case-insensitive).
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
    if let (Some(x), Some(y)) = (parse_datetime(a), parse_datetime(b)) {
        return x.cmp(&y);
    }
    if let (Ok(x), Ok(y)) = (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    if let (Some(x), Some(y)) = (parse_bool(a), parse_bool(b)) {
        return x.cmp(&y);
    }
    a.to_lowercase().cmp(&b.to_lowercase())
}

/// An item's value for a path: computed first, then the stored property.
pub(crate) fn item_value(
    i: &Item,
    stored: &[(String, String)],
    ext: &[(ExtendedField, Vec<String>)],
    path: &PropertyPath,
) -> Option<Vec<String>> {
    if let PropertyPath::Extended(e) = path
        && let Some((_, v)) = ext.iter().find(|(f, _)| f.key() == e.key())
    {
        return Some(v.clone());
    }
    if let Some(v) = computed_value(i, path) {
        return Some(vec![v]);
    }
    let name = path.element_name()?;
    stored.iter().find(|(n, _)| n == name).map(|(_, xml)| vec![element_text(xml)])
}

/// AQS-like QueryString: every term must match; `prop:value` looks in one property (subject,
/// body, from, to, cc), a bare term in the subject and every stored property.
pub(crate) fn query_matches(query: &str, i: &Item, stored: &[(String, String)]) -> bool {
    terms(query).iter().all(|(prop, term)| {
        let term = term.to_lowercase();
        let look = |name: &str| stored.iter().any(|(n, x)| n == name && element_text(x).to_lowercase().contains(&term));
        match prop.as_deref() {
            Some("subject") => i.subject.to_lowercase().contains(&term),
            Some("body") => look("Body"),
            Some("from") => look("From") || look("Sender"),
            Some("to") => look("ToRecipients"),
            Some("cc") => look("CcRecipients"),
            _ => {
                i.subject.to_lowercase().contains(&term)
                    || stored.iter().any(|(_, x)| element_text(x).to_lowercase().contains(&term))
            }
        }
    })
}

fn terms(q: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let mut rest = q.trim();
    while !rest.is_empty() {
        let (token, tail) = if let Some(r) = rest.strip_prefix('"') {
            match r.split_once('"') {
                Some((t, tail)) => (t.to_owned(), tail),
                None => (r.to_owned(), ""),
            }
        } else {
            match rest.split_once(char::is_whitespace) {
                Some((t, tail)) => (t.to_owned(), tail),
                None => (rest.to_owned(), ""),
            }
        };
        rest = tail.trim_start();
        if token.eq_ignore_ascii_case("AND") || token.is_empty() {
            continue;
        }
        match token.split_once(':') {
            Some((p, v)) if !v.is_empty() => out.push((Some(p.to_lowercase()), v.trim_matches('"').to_owned())),
            _ => out.push((None, token)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_by_kind() {
        assert_eq!(compare("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"), Ordering::Greater);
        assert_eq!(compare("10", "9"), Ordering::Greater);
        assert_eq!(compare("abc", "ABC"), Ordering::Equal);
        assert_eq!(
            terms("subject:hello \"big world\" x"),
            vec![(Some("subject".into()), "hello".into()), (None, "big world".into()), (None, "x".into())]
        );
    }
}
