//! Process patterns: portability between Rust `regex` and Go RE2, and OTTL string literals.
//!
//! Templates put user-given regexes into OTTL `IsMatch` calls that the collector compiles with
//! Go's RE2, while the emulator compiles them with Rust's `regex`. Only the syntax both accept
//! with the same meaning is allowed; everything else is refused with the reason.

use regex::Regex;

/// Checks that `pattern` compiles with Rust `regex`, means the same under Go RE2, and survives
/// the collector's `${...}` config expansion. Returns the reason when it does not.
pub fn check_portable(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("the pattern is empty".to_owned());
    }
    check_config_text(pattern)?;
    Regex::new(pattern).map_err(|e| format!("invalid regex: {e}"))?;
    check_syntax_subset(pattern)
}

/// Checks that `text`, written into a rendered config, holds no control character and no
/// `${` or `$$` that the collector's config loader would expand. Returns the reason when it
/// does.
pub fn check_config_text(text: &str) -> Result<(), String> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "control character U+{:04X} is not allowed",
            u32::from(c)
        ));
    }
    if text.contains("${") || text.contains("$$") {
        return Err(
            "`${` and `$$` are expanded by the collector's config loader; rewrite the text"
                .to_owned(),
        );
    }
    Ok(())
}

/// Refuses the Rust-only constructs (and the flag letters RE2 lacks).
fn check_syntax_subset(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut class_depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let next = chars.get(i + 1).copied();
            match next {
                Some('<' | '>') => {
                    return Err(format!(
                        "`\\{}` word boundaries are not supported by Go RE2",
                        next.unwrap_or_default()
                    ));
                }
                Some('b' | 'B') if chars.get(i + 2) == Some(&'{') => {
                    return Err("`\\b{...}` boundaries are not supported by Go RE2".to_owned());
                }
                Some(e @ ('d' | 'D' | 'w' | 'W' | 's' | 'S' | 'b' | 'B')) => {
                    return Err(format!(
                        "`\\{e}` matches Unicode characters in Rust regex but only ASCII in Go RE2; \
                         write an ASCII class instead: `[0-9]` for `\\d`, `[A-Za-z0-9_]` for `\\w`, \
                         `[\\t\\n\\f\\r ]` for `\\s` (negated: `[^...]`), and anchor or \
                         delimit explicitly instead of `\\b`"
                    ));
                }
                _ => {}
            }
            i += 2;
            continue;
        }
        if class_depth > 0 {
            if c == '[' && chars.get(i + 1) == Some(&':') {
                // POSIX class such as [:alpha:], supported by both.
                if let Some(end) = find_from(&chars, i + 2, &[':', ']']) {
                    i = end + 2;
                    continue;
                }
            }
            if c == '[' {
                return Err("nested character classes are not supported by Go RE2".to_owned());
            }
            if (c == '&' || c == '~' || c == '-') && chars.get(i + 1) == Some(&c) {
                return Err(format!(
                    "class set operation `{c}{c}` is not supported by Go RE2"
                ));
            }
            if c == ']' {
                class_depth -= 1;
            }
            i += 1;
            continue;
        }
        if c == '[' {
            class_depth += 1;
            i += 1;
            // A leading `^` and a leading `]` are literal parts of the class.
            if chars.get(i) == Some(&'^') {
                i += 1;
            }
            if chars.get(i) == Some(&']') {
                i += 1;
            }
            continue;
        }
        if c == '(' && chars.get(i + 1) == Some(&'?') {
            let mut j = i + 2;
            while let Some(&f) = chars.get(j) {
                match f {
                    'i' | 'm' | 's' | 'U' | '-' => j += 1,
                    ':' | ')' => break,
                    'P' | '<' => break,
                    other => {
                        return Err(format!(
                            "regex flag `{other}` is not supported by Go RE2 (only i, m, s, U)"
                        ));
                    }
                }
            }
        }
        i += 1;
    }
    Ok(())
}

fn find_from(chars: &[char], start: usize, needle: &[char; 2]) -> Option<usize> {
    (start..chars.len().saturating_sub(1))
        .find(|&k| chars[k] == needle[0] && chars[k + 1] == needle[1])
}

/// An OTTL string literal for `text`: double-quoted, with `\` and `"` escaped.
pub fn ottl_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// A regex matching exactly `name` (anchored, metacharacters escaped), for turning literal
/// process names into patterns. A literal `$` is written `[$]`, so that the pattern never holds
/// the `$$` or `${` that the collector's config loader would expand.
pub fn exact(name: &str) -> String {
    format!("^{}$", regex::escape(name).replace("\\$", "[$]"))
}

/// One regex matching any of `patterns` (each kept unanchored, as written).
pub fn any_of(patterns: &[&str]) -> String {
    match patterns {
        [single] => (*single).to_owned(),
        _ => patterns
            .iter()
            .map(|p| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_common_subset() {
        for ok in [
            "^postgres$",
            "^(?:nginx|httpd)$",
            r"^java\.exe$",
            "(?i)^kube",
            "[[:alpha:]]+",
            "[^a-z]",
            "[]a]",
            "^pg-[0-9]+$",
            r"[\t\n\f\r ]",
            "a--b",
            "(?P<n>x)",
        ] {
            assert_eq!(check_portable(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_rust_only_and_invalid_patterns() {
        for bad in [
            "",
            "(",
            "[a-z&&[^aeiou]]",
            r"\<word\>",
            r"\b{start}x",
            "(?x) a b",
            "${env:X}",
            "a$$",
            "a\nb",
            "[a--b]",
            r"\d+",
            r"^pg-\D",
            r"\w+",
            r"a\Wb",
            r"\s",
            r"\S+",
            r"\bword\b",
            r"x\B",
            r"[\d]",
        ] {
            assert!(check_portable(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ottl_literals_escape_backslashes_and_quotes() {
        assert_eq!(ottl_string(r#"^a\.b"c$"#), r#""^a\\.b\"c$""#);
    }

    #[test]
    fn exact_and_any_of() {
        for name in ["$", "a$$b", "${x}", "a.b+c"] {
            let pattern = exact(name);
            assert_eq!(check_portable(&pattern), Ok(()), "{pattern}");
            let re = Regex::new(&pattern).unwrap();
            assert!(re.is_match(name), "{pattern}");
        }
        let re = Regex::new(&exact("a.b+c")).unwrap();
        assert!(re.is_match("a.b+c"));
        assert!(!re.is_match("axbbc"));
        assert_eq!(any_of(&["a"]), "a");
        assert_eq!(any_of(&["^a$", "b"]), "(?:^a$)|(?:b)");
    }
}
