//! Name and command-line templates: `worker-{index}`, `{path} --id {hex12}`.

use std::fmt::Write as _;

/// The variables a template may hold, for error messages and docs.
pub const TEMPLATE_VARIABLES: &str = "{index}, {name}, {path}, {hex}, {hex12}, {port}, {ip}, {rand}, {pick:a|b|...}, {random:a|b|...}";

/// Which template variables a field may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemplateField {
    /// The executable name: no `{name}` or `{path}`.
    Name,
    /// The executable path: `{name}` but no `{path}`.
    Path,
    /// The command line: anything.
    CommandLine,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Index,
    Name,
    Path,
    Hex(usize),
    Port,
    Ip,
    Rand,
    Pick(Vec<String>),
    Random(Vec<String>),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Compiles `text`, refusing template variables that `field` may not use.
    pub(crate) fn compile(text: &str, field: TemplateField) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed template variable in {text:?}"))?;
            let body = &after[..close];
            let segment = match body {
                "index" => Segment::Index,
                "name" if field != TemplateField::Name => Segment::Name,
                "path" if field == TemplateField::CommandLine => Segment::Path,
                "hex" => Segment::Hex(64),
                "hex12" => Segment::Hex(12),
                "port" => Segment::Port,
                "ip" => Segment::Ip,
                "rand" => Segment::Rand,
                _ => {
                    let choice = |list: &str| -> Result<Vec<String>, String> {
                        let items: Vec<String> = list.split('|').map(str::to_owned).collect();
                        if items.iter().any(String::is_empty) {
                            return Err(format!("empty choice in {{{body}}}"));
                        }
                        Ok(items)
                    };
                    if let Some(list) = body.strip_prefix("pick:") {
                        Segment::Pick(choice(list)?)
                    } else if let Some(list) = body.strip_prefix("random:") {
                        Segment::Random(choice(list)?)
                    } else if body == "name" || body == "path" {
                        return Err(format!("{{{body}}} cannot be used in this field"));
                    } else {
                        return Err(format!(
                            "unknown template variable {{{body}}} (known: {TEMPLATE_VARIABLES})"
                        ));
                    }
                }
            };
            segments.push(segment);
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_owned()));
        }
        Ok(Self { segments })
    }

    /// Renders the template into `out`.
    pub(crate) fn render(
        &self,
        out: &mut String,
        index: u64,
        name: &str,
        path: &str,
        rng: &mut fastrand::Rng,
    ) {
        for segment in &self.segments {
            match segment {
                Segment::Literal(s) => out.push_str(s),
                Segment::Index => {
                    let _ = write!(out, "{index}");
                }
                Segment::Name => out.push_str(name),
                Segment::Path => out.push_str(path),
                Segment::Hex(n) => {
                    const DIGITS: &[u8; 16] = b"0123456789abcdef";
                    for _ in 0..*n {
                        out.push(char::from(DIGITS[rng.usize(0..16)]));
                    }
                }
                Segment::Port => {
                    let _ = write!(out, "{}", rng.u16(32768..=60999));
                }
                Segment::Ip => {
                    let _ = write!(
                        out,
                        "10.{}.{}.{}",
                        rng.u8(0..=3),
                        rng.u8(0..=255),
                        rng.u8(1..=254)
                    );
                }
                Segment::Rand => {
                    let _ = write!(out, "{}", rng.u32(1..=99_999));
                }
                Segment::Pick(items) => {
                    let i = usize::try_from(index % items.len() as u64).unwrap_or(0);
                    out.push_str(&items[i]);
                }
                Segment::Random(items) => out.push_str(&items[rng.usize(0..items.len())]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, field: TemplateField, index: u64) -> String {
        let t = Template::compile(text, field).unwrap();
        let mut out = String::new();
        t.render(
            &mut out,
            index,
            "svc",
            "/usr/bin/svc",
            &mut fastrand::Rng::with_seed(1),
        );
        out
    }

    #[test]
    fn template_variables_render() {
        assert_eq!(render("worker-{index}", TemplateField::Name, 7), "worker-7");
        assert_eq!(
            render("{path} --role {pick:a|b}", TemplateField::CommandLine, 3),
            "/usr/bin/svc --role b"
        );
        assert_eq!(render("/opt/{name}", TemplateField::Path, 0), "/opt/svc");
        let hex = render("{hex}", TemplateField::Name, 0);
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(render("{ip}:{port}", TemplateField::Name, 0).starts_with("10."));
    }

    #[test]
    fn bad_template_variables_are_refused() {
        let err = Template::compile("x-{nope}", TemplateField::Name).unwrap_err();
        assert!(err.contains("unknown template variable {nope}"), "{err}");
        assert!(Template::compile("{name}", TemplateField::Name).is_err());
        assert!(Template::compile("{path}", TemplateField::Path).is_err());
        assert!(Template::compile("x{index", TemplateField::Name).is_err());
        assert!(Template::compile("{pick:a||b}", TemplateField::Name).is_err());
    }
}
