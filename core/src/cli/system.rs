//! `berth version`, `berth info` and `berth system df`.

use serde_json::Value;

use super::api::Api;
use super::template::Template;
use super::CliError;
use crate::daemon::api::API_VERSION;

/// `json` prints the raw answer, another value is a template on it.
fn formatted(v: &Value, format: Option<&str>) -> Result<bool, CliError> {
    match format {
        None => Ok(false),
        Some("json") => {
            println!("{v}");
            Ok(true)
        }
        Some(f) => {
            let out = Template::parse(f)
                .and_then(|t| t.render(v))
                .map_err(|e| CliError::Failed(e.to_string()))?;
            println!("{out}");
            Ok(true)
        }
    }
}

/// `berth version`.
pub fn version(api: &Api, format: Option<&str>) -> Result<(), CliError> {
    let v = api.get("/version")?;
    if formatted(&v, format)? {
        return Ok(());
    }
    println!(
        "Client:\n Version:      {}\n API version:  {API_VERSION}",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "\nServer:\n Engine:\n  Version:      {}\n  API version:  {} (minimum version {})\n  OS/Arch:      {}/{}\n  Kernel:       {}",
        v["Version"].as_str().unwrap_or(""),
        v["ApiVersion"].as_str().unwrap_or(""),
        v["MinAPIVersion"].as_str().unwrap_or(""),
        v["Os"].as_str().unwrap_or(""),
        v["Arch"].as_str().unwrap_or(""),
        v["KernelVersion"].as_str().unwrap_or("")
    );
    Ok(())
}

/// `berth info`.
pub fn info(api: &Api, format: Option<&str>) -> Result<(), CliError> {
    let v = api.get("/info")?;
    if formatted(&v, format)? {
        return Ok(());
    }
    println!("Server Version: {}", v["ServerVersion"].as_str().unwrap_or(""));
    println!("Storage Driver: {}", v["Driver"].as_str().unwrap_or(""));
    println!("Cgroup Version: {}", v["CgroupVersion"].as_str().unwrap_or(""));
    println!("Kernel Version: {}", v["KernelVersion"].as_str().unwrap_or(""));
    println!("CPUs: {}", v["NCPU"]);
    println!("Docker Root Dir: {}", v["DockerRootDir"].as_str().unwrap_or(""));
    Ok(())
}

/// `berth system df`.
pub fn df(api: &Api) -> Result<(), CliError> {
    let v = api.get("/system/df")?;
    let mb = |b: u64| format!("{:.1}MB", b as f64 / 1e6);
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let volumes = v["Volumes"].as_array().cloned().unwrap_or_default();
    let volume_size: u64 = volumes.iter().map(|x| x["UsageData"]["Size"].as_u64().unwrap_or(0)).sum();
    let containers = v["Containers"].as_array().cloned().unwrap_or_default();
    let running = containers.iter().filter(|c| c["State"] == "running").count();
    println!("{:<15} {:<8} {:<8} {:<10}", "TYPE", "TOTAL", "ACTIVE", "SIZE");
    println!(
        "{:<15} {:<8} {:<8} {:<10}",
        "Images",
        images.len(),
        0,
        mb(v["LayersSize"].as_u64().unwrap_or(0))
    );
    println!("{:<15} {:<8} {:<8} {:<10}", "Containers", containers.len(), running, mb(0));
    println!("{:<15} {:<8} {:<8} {:<10}", "Local Volumes", volumes.len(), 0, mb(volume_size));
    println!("{:<15} {:<8} {:<8} {:<10}", "Build Cache", 0, 0, mb(0));
    Ok(())
}
