//! make-bundle DIR [ARGS...]: writes a busybox OCI bundle into DIR (the
//! same bundles the tests use), running ARGS (default `sh`).

fn main() -> std::process::ExitCode {
    berth_tests::exit_with("make-bundle", make())
}

fn make() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        anyhow::bail!("usage: make-bundle DIR [ARGS...]")
    };
    let dir = std::path::PathBuf::from(dir);
    let rest: Vec<String> = args.collect();
    let rest: Vec<&str> = if rest.is_empty() {
        vec!["sh"]
    } else {
        rest.iter().map(String::as_str).collect()
    };
    berth_tests::busybox_rootfs(&dir.join("rootfs"))?;
    let config = berth_tests::default_config(&rest);
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    Ok(())
}
