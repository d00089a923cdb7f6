//! Go RE2 patterns compiled with Rust's `regex` crate.
//!
//! The two engines share RE2's syntax and semantics (leftmost-first, no backreferences or
//! lookaround). Where they differ, the pattern is rewritten before compiling:
//!
//! - Go's Perl classes `\d \D \w \W \s \S` and word boundaries `\b \B` are ASCII-only, while
//!   Rust's are Unicode-aware by default: they become explicit ASCII classes.
//! - Go's `\Q…\E` literal quoting becomes escaped text.
//!
//! Anything else the Rust engine refuses is reported with the pattern.

use regex::Regex;

/// Compiles a Go RE2 pattern as the collector would match it.
///
/// # Errors
///
/// The engine's message when the pattern does not compile.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&translate(pattern)).map_err(|e| {
        // The first line of the engine's message repeats the pattern; keep the explanation.
        let text = e.to_string();
        text.lines()
            .rev()
            .find(|l| l.starts_with("error:"))
            .map_or(text.clone(), |l| {
                l.trim_start_matches("error:").trim().to_owned()
            })
    })
}

fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let e = chars[i + 1];
            if e == 'Q' {
                let rest = &chars[i + 2..];
                let end = rest.windows(2).position(|w| w == ['\\', 'E']);
                let len = end.unwrap_or(rest.len());
                let quoted: String = rest[..len].iter().collect();
                out.push_str(&regex::escape(&quoted));
                i += 2 + len + if end.is_some() { 2 } else { 0 };
                continue;
            }
            let replacement = match (e, in_class) {
                ('d', false) => Some("[0-9]"),
                ('D', false) => Some("[^0-9]"),
                ('w', false) => Some("[0-9A-Za-z_]"),
                ('W', false) => Some("[^0-9A-Za-z_]"),
                ('s', false) => Some("[\\t\\n\\f\\r ]"),
                ('S', false) => Some("[^\\t\\n\\f\\r ]"),
                ('b', false) => Some("(?-u:\\b)"),
                ('B', false) => Some("(?-u:\\B)"),
                ('d', true) => Some("0-9"),
                ('w', true) => Some("0-9A-Za-z_"),
                ('s', true) => Some("\\t\\n\\f\\r "),
                _ => None,
            };
            match replacement {
                Some(r) => out.push_str(r),
                None => {
                    out.push(c);
                    out.push(e);
                }
            }
            i += 2;
            continue;
        }
        if in_class {
            if c == ']' {
                in_class = false;
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == '[' {
            in_class = true;
            out.push(c);
            i += 1;
            // A `]` (after an optional `^`) right at the start is a literal member.
            if chars.get(i) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            if chars.get(i) == Some(&']') {
                out.push_str("\\]");
                i += 1;
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_classes_are_ascii_as_in_go() {
        let re = compile(r"^\d+$").unwrap();
        assert!(re.is_match("123"));
        assert!(!re.is_match("١٢٣"), "Arabic-Indic digits are not \\d in Go");
        let re = compile(r"^[\w.]+$").unwrap();
        assert!(re.is_match("java.exe"));
        assert!(!re.is_match("café"));
        assert!(compile(r"\bpostgres\b").unwrap().is_match("a postgres b"));
    }

    #[test]
    fn quoting_and_classes() {
        let re = compile(r"^\Qa.b(c)\E$").unwrap();
        assert!(re.is_match("a.b(c)"));
        assert!(!re.is_match("axb(c)"));
        let re = compile(r"^[]a]+$").unwrap();
        assert!(re.is_match("]a]"));
        assert!(compile(r"\\d").unwrap().is_match(r"\d"));
    }

    #[test]
    fn invalid_patterns_are_reported() {
        let e = compile("(unclosed").unwrap_err();
        assert!(e.contains("unclosed"), "{e}");
        assert!(compile("a(?=b)").is_err(), "lookahead is not RE2");
    }
}
