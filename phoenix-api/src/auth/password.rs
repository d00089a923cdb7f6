//! Password hashes: Argon2id in the PHC string format, with a random salt per password.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::{Error, Result};

/// The shortest password accepted for a new user.
pub const MIN_PASSWORD_LEN: usize = 8;
/// The longest password accepted (bounds the hashing work a request can cause).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The Argon2id hash of `password`, as a PHC string.
pub fn hash(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password failed: {e}")))
}

/// Whether `password` matches `hash`. A hash that does not parse matches nothing.
pub fn verify(password: &str, hash: &str) -> bool {
    password.len() <= MAX_PASSWORD_LEN
        && Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
}

/// Checks a new password's length; the error names the `password` field.
pub fn check_new(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(Error::invalid_field(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters, got {chars}"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::invalid_field(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
}

/// A random password of 24 URL-safe characters, for the first admin.
pub fn random() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0_u8; 24];
    crate::config::fill_random(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b);
        assert!(verify("correct horse", &a));
        assert!(!verify("wrong horse", &a));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn new_passwords_are_checked() {
        assert!(check_new("long enough").is_ok());
        let err = check_new("short").unwrap_err();
        assert_eq!(err.field_errors()[0].path, "password");
        assert!(check_new(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
        let random = random();
        assert_eq!(random.len(), 24);
        assert!(check_new(&random).is_ok());
    }
}
