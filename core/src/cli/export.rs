//! `berth export`: a container's root filesystem as a tarball
//! (`GET /containers/{id}/export`), to a file with `-o` (written beside
//! it and renamed into place, as docker does) or to stdout, never to a
//! terminal.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::api::{encode, Api};
use super::{terminal, CliError};

/// `berth export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Streams `body` into a new file at `path`: a temporary file in the same
/// directory (mode 0600), renamed over `path` once complete.
fn write_file(path: &Path, body: &mut impl std::io::Read) -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Failed(format!("failed to export container: {}: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".berth_temp_").tempfile_in(dir).map_err(failed)?;
    std::io::copy(body, &mut tmp).map_err(failed)?;
    tmp.as_file_mut().flush().map_err(failed)?;
    tmp.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

/// `berth export`.
pub fn export(api: &Api, a: ExportArgs) -> Result<(), CliError> {
    if a.output.is_none() && terminal::stdout_is_terminal() {
        return Err(CliError::Failed(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let mut body = api.open("GET", &format!("/containers/{}/export", encode(&a.container)))?;
    match &a.output {
        Some(path) => write_file(path, &mut body),
        None => match std::io::copy(&mut body, &mut std::io::stdout().lock()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Failed(format!("failed to export container: {e}"))),
            _ => Ok(()),
        },
    }
}
