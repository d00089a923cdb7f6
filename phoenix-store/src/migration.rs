//! Schema migrations: embedded per backend, applied on open, and refused when the database
//! is newer than this build.

use sqlx::migrate::{MigrateError, Migrator};

use crate::error::Backend;
use crate::{Error, Result};

/// The SQLite schema migrations, embedded from `migrations/sqlite/`.
pub(crate) static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL schema migrations, embedded from `migrations/postgres/`.
pub(crate) static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The table in which sqlx records the applied migrations.
pub(crate) const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// The newest migration `migrator` knows.
pub(crate) fn newest_known(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Refuses a database with an applied migration that `migrator` does not know: it was
/// written by a newer build, and this one must not touch it.
pub(crate) fn check_applied(
    migrator: &Migrator,
    applied: &[i64],
    backend: Backend,
    location: &str,
) -> Result<()> {
    let unknown = applied
        .iter()
        .copied()
        .filter(|version| migrator.iter().all(|m| m.version != *version))
        .max();
    match unknown {
        Some(found) => Err(Error::SchemaTooNew {
            backend,
            location: location.to_owned(),
            found,
            known: newest_known(migrator),
        }),
        None => Ok(()),
    }
}

/// The error for a failed migration run; a migration that appeared between the check and the
/// run is still reported as a newer schema.
pub(crate) fn migrate_error(
    migrator: &Migrator,
    source: MigrateError,
    backend: Backend,
    location: &str,
) -> Error {
    match source {
        MigrateError::VersionMissing(found) => Error::SchemaTooNew {
            backend,
            location: location.to_owned(),
            found,
            known: newest_known(migrator),
        },
        source => Error::Migrate {
            backend,
            location: location.to_owned(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migrations() {
        let versions = |m: &Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(&SQLITE), versions(&POSTGRES));
        assert_eq!(newest_known(&SQLITE), 1);
    }

    #[test]
    fn unknown_applied_versions_are_refused() {
        assert!(check_applied(&SQLITE, &[], Backend::Sqlite, "x").is_ok());
        assert!(check_applied(&SQLITE, &[1], Backend::Sqlite, "x").is_ok());
        let err = check_applied(&SQLITE, &[1, 7, 5], Backend::Sqlite, "x").unwrap_err();
        assert!(
            matches!(
                err,
                Error::SchemaTooNew {
                    found: 7,
                    known: 1,
                    ..
                }
            ),
            "{err}"
        );
    }
}
