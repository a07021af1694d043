//! berth-monitor: the per-container monitor berthd starts for each
//! running container (see `berth_core::monitor`).
//!
//! Usage: berth-monitor CONFIG.json

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: berth-monitor CONFIG.json");
        return ExitCode::from(2);
    };
    let cfg = match berth_core::monitor::load_config(std::path::Path::new(&path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-monitor: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = berth_core::monitor::detach() {
        eprintln!("berth-monitor: detach: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::from(berth_core::monitor::run(&cfg) as u8)
}
