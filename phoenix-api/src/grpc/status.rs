//! The one place where [`Error`] becomes a [`tonic::Status`]. The table of codes is in
//! `docs/grpc.md`.
//!
//! The message is [`Error::client_message`], which never carries internals; for invalid
//! input it lists every field at fault as `path: message`, separated by `; `. A rate-limited
//! call carries `retry-after` metadata in seconds.

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::error::{Error, ErrorKind};

/// The gRPC code of an error: by its kind, except that a conflict is told apart as
/// `ALREADY_EXISTS` (the experiment or user exists), `ABORTED` (another writer changed the
/// experiment since it was read: read it again and retry) or `FAILED_PRECONDITION` (the
/// operation does not fit the current phase).
fn code_of(error: &Error) -> Code {
    match error.kind() {
        ErrorKind::InvalidInput | ErrorKind::UnsupportedMediaType => Code::InvalidArgument,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Conflict => match error {
            Error::Core(phoenix_core::Error::AlreadyExists { .. })
            | Error::Store(phoenix_store::Error::UserExists { .. }) => Code::AlreadyExists,
            Error::Core(phoenix_core::Error::Conflict { .. }) => Code::Aborted,
            _ => Code::FailedPrecondition,
        },
        ErrorKind::PayloadTooLarge | ErrorKind::RateLimited => Code::ResourceExhausted,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let code = code_of(&error);
        if matches!(code, Code::Internal | Code::Unavailable) {
            tracing::error!(error = %error, "gRPC call failed");
        }
        let fields = error.field_errors();
        let message = if fields.is_empty() {
            error.client_message()
        } else {
            let n = fields.len();
            let listed: Vec<String> = fields.iter().map(ToString::to_string).collect();
            format!(
                "{n} invalid field{}: {}",
                if n == 1 { "" } else { "s" },
                listed.join("; ")
            )
        };
        let mut status = Status::new(code, message);
        if let Some(wait) = error.retry_after() {
            let seconds = MetadataValue::from(wait.as_secs().max(1));
            status.metadata_mut().insert("retry-after", seconds);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn invalid_input_names_every_field() {
        let status = Status::from(Error::invalid_field("spec.name", "must be 3-63 characters"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "1 invalid field: spec.name: must be 3-63 characters"
        );
    }

    #[test]
    fn internal_details_do_not_leak() {
        let status = Status::from(Error::Io {
            what: "opening /var/lib/phoenix/secret.db".into(),
            source: std::io::Error::other("permission denied"),
        });
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("/var"), "{}", status.message());
        let status = Status::from(Error::Unavailable("connection to 10.1.2.3 refused".into()));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("10.1.2.3"));
    }

    #[test]
    fn rate_limits_say_when_to_retry() {
        let status = Status::from(Error::RateLimited {
            retry_after: Duration::from_secs(7),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status
            .metadata()
            .get("retry-after")
            .map(|v| v.to_str().ok());
        assert_eq!(retry, Some(Some("7")));
    }

    #[test]
    fn codes_follow_the_error_kind() {
        let cases = [
            (
                Error::Unauthenticated("no token".into()),
                Code::Unauthenticated,
            ),
            (
                Error::NotFound("no experiment exp-00000000".into()),
                Code::NotFound,
            ),
            (
                Error::Conflict("already running".into()),
                Code::FailedPrecondition,
            ),
            (Error::NotOwner("not yours".into()), Code::PermissionDenied),
            (
                Error::Core(phoenix_core::Error::Conflict {
                    id: "exp-a1b2c3d4".parse().unwrap(),
                    expected: 1,
                    found: 2,
                }),
                Code::Aborted,
            ),
            (
                Error::Core(phoenix_core::Error::AlreadyExists {
                    id: "exp-a1b2c3d4".parse().unwrap(),
                }),
                Code::AlreadyExists,
            ),
            (
                Error::PayloadTooLarge { limit: 10 },
                Code::ResourceExhausted,
            ),
            (Error::Internal("bug".into()), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(Status::from(error).code(), code);
        }
    }
}
