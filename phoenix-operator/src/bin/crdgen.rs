//! `crdgen`: writes the Phoenix CRDs into `deploy/crds/`, checks them (`--check`), or writes
//! the objects the operator builds for the sample resources (`--objects DIR`).

#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use phoenix_operator::manifest::{crd_files, objects_from_samples, stale_crd_files, write_files};
use phoenix_operator::objects::Defaults;

/// Generate the Phoenix CRDs from the Rust types.
#[derive(Debug, Parser)]
#[command(name = "crdgen", version)]
struct Args {
    /// Where the CRDs go [default: deploy/crds of the workspace].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Write nothing; exit 1 if the CRDs in the directory differ from the generated ones.
    #[arg(long, conflicts_with = "objects")]
    check: bool,
    /// Instead of CRDs, write the objects built from the sample resources into this directory.
    #[arg(long, value_name = "DIR")]
    objects: Option<PathBuf>,
    /// The sample resources [default: deploy/samples of the workspace].
    #[arg(long, value_name = "DIR")]
    samples: Option<PathBuf>,
}

fn deploy_dir() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .map_or_else(|| crate_dir.join(".."), PathBuf::from)
        .join("deploy")
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if let Some(out) = &args.objects {
        let samples = args.samples.unwrap_or_else(|| deploy_dir().join("samples"));
        let files = objects_from_samples(&samples, &Defaults::default())?;
        let written = write_files(out, &files)?;
        eprintln!("wrote {} objects into {}", written.len(), out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let dir = args.dir.unwrap_or_else(|| deploy_dir().join("crds"));
    if args.check {
        let stale = stale_crd_files(&dir)?;
        if stale.is_empty() {
            eprintln!("{} is up to date", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        for path in &stale {
            eprintln!("differs from the generated CRDs: {}", path.display());
        }
        eprintln!("run `cargo run -p phoenix-operator --bin crdgen` to regenerate");
        return Ok(ExitCode::FAILURE);
    }
    let written = write_files(&dir, &crd_files()?)?;
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
