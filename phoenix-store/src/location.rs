//! Store URLs: which backend a URL names, and how to show it without its password.

use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};

/// What a store URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// `memory://`
    Memory,
    /// `sqlite://PATH` or `sqlite:PATH`
    SqliteFile(PathBuf),
    /// `sqlite::memory:`
    SqliteMemory,
    /// `postgres://…` or `postgresql://…`
    Postgres(PostgresUrl),
}

/// A PostgreSQL URL with the parameters this crate handles itself taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PostgresUrl {
    /// The URL for the driver.
    pub url: String,
    /// `connect_timeout=SECONDS`: how long to wait for a connection.
    pub connect_timeout: Option<Duration>,
    /// `schema=NAME`: the schema that holds the tables, created if missing.
    pub schema: Option<String>,
}

impl Location {
    /// Parses a store URL.
    pub fn parse(url: &str) -> Result<Self> {
        let (scheme, rest) = url.split_once(':').ok_or_else(|| unsupported(url))?;
        match scheme.to_ascii_lowercase().as_str() {
            "memory" => {
                if rest.is_empty() || rest == "//" {
                    Ok(Self::Memory)
                } else {
                    Err(invalid(
                        url,
                        "a memory store takes no path: write `memory://`",
                    ))
                }
            }
            "sqlite" => parse_sqlite(url, rest),
            "postgres" | "postgresql" => parse_postgres(url).map(Self::Postgres),
            _ => Err(unsupported(url)),
        }
    }
}

fn parse_sqlite(url: &str, rest: &str) -> Result<Location> {
    if rest == ":memory:" || rest == "//:memory:" {
        return Ok(Location::SqliteMemory);
    }
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.contains('?') {
        return Err(invalid(url, "SQLite URLs take no parameters"));
    }
    if path.is_empty() {
        return Err(invalid(
            url,
            "no file path: write sqlite://relative/path.db, sqlite:///absolute/path.db or sqlite::memory:",
        ));
    }
    Ok(Location::SqliteFile(PathBuf::from(path)))
}

fn parse_postgres(url: &str) -> Result<PostgresUrl> {
    if !url.contains("://") {
        return Err(invalid(
            url,
            "expected postgres://[user[:password]@]host[:port]/database",
        ));
    }
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    let mut connect_timeout = None;
    let mut schema = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "connect_timeout" => {
                let seconds: u64 = value.parse().map_err(|_| {
                    invalid(
                        url,
                        &format!("connect_timeout must be whole seconds, got {value:?}"),
                    )
                })?;
                if seconds == 0 {
                    return Err(invalid(url, "connect_timeout must be at least 1 second"));
                }
                connect_timeout = Some(Duration::from_secs(seconds));
            }
            "schema" => {
                check_schema_name(value).map_err(|message| invalid(url, &message))?;
                schema = Some(value.to_owned());
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(PostgresUrl {
        url,
        connect_timeout,
        schema,
    })
}

/// Checks a PostgreSQL schema name: an unquoted identifier, so that it can be written into
/// SQL as is.
pub(crate) fn check_schema_name(name: &str) -> std::result::Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(format!(
            "schema {name:?} must be 1-63 lowercase letters, digits and underscores, not starting with a digit"
        ))
    }
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` and `.`.
fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn unsupported(url: &str) -> Error {
    Error::UnsupportedUrl { url: redact(url) }
}

fn invalid(url: &str, message: &str) -> Error {
    Error::InvalidUrl {
        url: redact(url),
        message: message.to_owned(),
    }
}

/// The URL with any password replaced by `***`, for messages: in the user-info part and in a
/// `password` query parameter.
///
/// Text that is not a `scheme://…` URL may hide a password anywhere (`host=db
/// password=secret`, `postgres:user:secret@host/db`), so only its scheme is kept:
/// `postgres:…`, or `…` when it has none. In a URL, everything up to the last `@` is taken for
/// the user info, so that a password with an unencoded `/`, `?`, `#` or `@` is masked whole;
/// the price is that an `@` in the path or query masks more than the password.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return match url.split_once(':') {
            Some((scheme, "")) if is_scheme(scheme) => format!("{scheme}:"),
            Some((scheme, _)) if is_scheme(scheme) => format!("{scheme}:…"),
            _ => "…".to_owned(),
        };
    };
    if !is_scheme(&url[..scheme_end]) {
        return "…".to_owned();
    }
    let authority_start = scheme_end + 3;
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..authority_start]);
    let rest = &url[authority_start..];
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, after)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            after
        }
        None => rest,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    out.push_str(&rest[..authority_end]);
    let tail = &rest[authority_end..];
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(Location::parse("memory://").unwrap(), Location::Memory);
        assert_eq!(
            Location::parse("sqlite::memory:").unwrap(),
            Location::SqliteMemory
        );
        assert_eq!(
            Location::parse("sqlite:///var/lib/phoenix.db").unwrap(),
            Location::SqliteFile("/var/lib/phoenix.db".into())
        );
        assert_eq!(
            Location::parse("sqlite://data/phoenix.db").unwrap(),
            Location::SqliteFile("data/phoenix.db".into())
        );
        assert_eq!(
            Location::parse("SQLITE:phoenix.db").unwrap(),
            Location::SqliteFile("phoenix.db".into())
        );
        let Location::Postgres(pg) = Location::parse(
            "postgresql://u:p@db:5432/phx?sslmode=disable&connect_timeout=3&schema=team_a",
        )
        .unwrap() else {
            panic!("not postgres")
        };
        assert_eq!(pg.url, "postgresql://u:p@db:5432/phx?sslmode=disable");
        assert_eq!(pg.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(pg.schema.as_deref(), Some("team_a"));
    }

    #[test]
    fn bad_urls_are_refused_without_their_password() {
        for (url, kind) in [
            ("mysql://root:hunter2@localhost/db", "unsupported"),
            ("phoenix.db", "unsupported"),
            ("sqlite://", "invalid"),
            ("sqlite://a.db?mode=ro", "invalid"),
            ("memory://x", "invalid"),
            ("postgres:db", "invalid"),
            ("postgres://u:hunter2@h/db?connect_timeout=soon", "invalid"),
            ("postgres://u:hunter2@h/db?schema=Bad-Name", "invalid"),
            ("host=db password=hunter2", "unsupported"),
            ("postgres:u:hunter2@h/db", "invalid"),
            ("postgres:/u:hunter2@h/db", "invalid"),
            ("mysql:u:hunter2@h/db", "unsupported"),
        ] {
            let err = Location::parse(url).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with(kind), "{url}: {text}");
            assert!(!text.contains("hunter2"), "{url}: {text}");
        }
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact("postgres://alice:s3cret@db.example:5432/phx"),
            "postgres://alice:***@db.example:5432/phx"
        );
        assert_eq!(
            redact("postgres://alice:p@ss@db/phx?password=x&sslmode=require"),
            "postgres://alice:***@db/phx?password=***&sslmode=require"
        );
        assert_eq!(redact("postgres://db/phx"), "postgres://db/phx");
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
        assert_eq!(redact("postgres://alice@db/phx"), "postgres://alice@db/phx");
    }

    #[test]
    fn passwords_with_url_delimiters_are_masked_whole() {
        for (url, expected) in [
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:pa?ss@h:5432/db", "postgres://u:***@h:5432/db"),
            (
                "postgres://u:pa#ss@h/db?sslmode=x",
                "postgres://u:***@h/db?sslmode=x",
            ),
            ("postgres://u:p@s/s@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:pa/ss@h/db?password=hunter2",
                "postgres://u:***@h/db?password=***",
            ),
        ] {
            assert_eq!(redact(url), expected, "{url}");
        }
    }

    #[test]
    fn text_that_is_not_a_url_shows_only_its_scheme() {
        for (text, expected) in [
            ("host=db password=hunter2", "…"),
            ("postgres:u:hunter2@h/db", "postgres:…"),
            ("sqlite:", "sqlite:"),
            ("user:hunter2@h", "user:…"),
            ("9x://u:hunter2@h", "…"),
            ("", "…"),
        ] {
            assert_eq!(redact(text), expected, "{text:?}");
        }
    }
}
