//! make-busybox-image FILE [TAG]: writes a docker-archive of a one-layer
//! busybox image (Debian's busybox-static, as the tests use), tagged TAG
//! (default `busybox:latest`), for `berth load -i FILE`.

fn main() -> std::process::ExitCode {
    berth_tests::exit_with("make-busybox-image", make())
}

fn make() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next() else {
        anyhow::bail!("usage: make-busybox-image FILE [TAG]")
    };
    let tag = args.next().unwrap_or_else(|| "busybox:latest".into());
    let id = berth_tests::busybox_docker_archive(std::path::Path::new(&file), &[&tag])?;
    println!("{id}");
    Ok(())
}
