//! ALB's wildcard patterns: `*` matches any run of characters (including `/`), `?` exactly one,
//! and the pattern must match the whole value. Linear-time greedy matching with one backtrack point.

/// Whether `value` matches `pattern`; `fold_case` makes ASCII letters compare case-insensitively.
pub fn matches(pattern: &[u8], value: &[u8], fold_case: bool) -> bool {
    greedy(pattern, value, fold_case, |b| match *b {
        b'?' => Token::One,
        b'*' => Token::Star,
        c => Token::Lit(c),
    })
}

/// The greedy match with one backtrack point, over a pattern whose elements `token` reads.
fn greedy<T>(pattern: &[T], value: &[u8], fold_case: bool, token: impl Fn(&T) -> Token) -> bool {
    let eq = |p: u8, v: u8| {
        if fold_case {
            p.eq_ignore_ascii_case(&v)
        } else {
            p == v
        }
    };
    let (mut p, mut v) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        match pattern.get(p).map(&token) {
            Some(Token::One) => {
                p += 1;
                v += 1;
            }
            Some(Token::Lit(c)) if eq(c, value[v]) => {
                p += 1;
                v += 1;
            }
            Some(Token::Star) => {
                star = Some((p, v));
                p += 1;
            }
            // Let the last `*` swallow one more character and retry.
            _ => match star {
                Some((sp, sv)) => {
                    p = sp + 1;
                    v = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|t| token(t) == Token::Star)
}

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Lit(u8),
    One,
    Star,
}

/// A pattern in which `\` escapes the next character (so `\*` is a literal `*`), as ALB's
/// `query-string` values; compiled once, matched with the same greedy algorithm as [`matches()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<Token>);

impl Pattern {
    /// Compiles `pattern`; a trailing lone `\` is a literal backslash.
    pub fn escaped(pattern: &str) -> Pattern {
        let mut out = Vec::with_capacity(pattern.len());
        let mut bytes = pattern.bytes();
        while let Some(b) = bytes.next() {
            out.push(match b {
                b'\\' => Token::Lit(bytes.next().unwrap_or(b'\\')),
                b'*' => Token::Star,
                b'?' => Token::One,
                b => Token::Lit(b),
            });
        }
        Pattern(out)
    }

    /// Whether `value` matches the whole pattern.
    pub fn matches(&self, value: &[u8], fold_case: bool) -> bool {
        greedy(&self.0, value, fold_case, |t| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::{Pattern, matches};
    use proptest::prelude::*;

    fn m(p: &str, v: &str) -> bool {
        matches(p.as_bytes(), v.as_bytes(), false)
    }

    #[test]
    fn alb_examples() {
        assert!(m("/img/*", "/img/a/b.png"));
        assert!(m("/img/*/pics", "/img/x/y/pics"));
        assert!(!m("/img/*", "/img"));
        assert!(m("/tasks", "/tasks"));
        assert!(!m("/tasks", "/tasks/1"));
        assert!(m("/a?c", "/abc") && !m("/a?c", "/ac"));
        assert!(!m("/Tasks", "/tasks"), "paths are case-sensitive");
        assert!(
            matches(b"*.example.com", b"Test.EXAMPLE.com", true),
            "hosts are not"
        );
        assert!(!matches(b"*.example.com", b"example.com", true));
        assert!(m("*", "") && m("", "") && !m("", "x"));
    }

    /// Reference: straightforward recursion.
    fn reference(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => reference(&p[1..], v) || (!v.is_empty() && reference(p, &v[1..])),
            (Some(b'?'), Some(_)) => reference(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => reference(&p[1..], &v[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn agrees_with_reference(p in "[ab*?/]{0,10}", v in "[ab/]{0,12}") {
            prop_assert_eq!(matches(p.as_bytes(), v.as_bytes(), false), reference(p.as_bytes(), v.as_bytes()));
        }

        #[test]
        fn literal_patterns_match_themselves(v in "[a-zA-Z0-9/._-]{0,40}") {
            prop_assert!(matches(v.as_bytes(), v.as_bytes(), false));
            prop_assert!(matches(v.to_uppercase().as_bytes(), v.as_bytes(), true));
        }
    }

    proptest! {
        /// Without backslashes a compiled pattern agrees with `matches`.
        #[test]
        fn compiled_patterns_agree(p in "[ab*?]{0,8}", v in "[ab]{0,10}", fold in any::<bool>()) {
            prop_assert_eq!(
                Pattern::escaped(&p).matches(v.as_bytes(), fold),
                matches(p.as_bytes(), v.as_bytes(), fold)
            );
        }

        /// An escaped value matches exactly itself.
        #[test]
        fn escaped_literals_match_themselves(v in "[a*?\\\\]{0,10}") {
            let esc: String = v.chars().flat_map(|c| if "*?\\".contains(c) { vec!['\\', c] } else { vec![c] }).collect();
            let pat = Pattern::escaped(&esc);
            prop_assert!(pat.matches(v.as_bytes(), false));
            let longer = format!("{v}a");
            prop_assert!(!pat.matches(longer.as_bytes(), false));
        }
    }

    #[test]
    fn escapes() {
        assert!(Pattern::escaped(r"\*beta\*").matches(b"*BETA*", true));
        assert!(!Pattern::escaped(r"\*beta\*").matches(b"xbetax", true));
        assert!(Pattern::escaped(r"a\?").matches(b"a?", false));
        assert!(!Pattern::escaped(r"a\?").matches(b"ab", false));
        assert!(Pattern::escaped("v1.*").matches(b"V1.2", true));
    }
}
