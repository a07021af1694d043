//! berth: the command line client of berthd, with docker's command names,
//! flags, output and exit codes. The commands live in
//! [`berth_core::cli`].

fn main() -> std::process::ExitCode {
    berth_core::cli::main()
}
