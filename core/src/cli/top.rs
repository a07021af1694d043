//! `berth top`: the processes of a running container, as berthd's `ps`
//! lists them (`GET /containers/{id}/top?ps_args=`), in docker's table.

use clap::Args;
use serde_json::Value;

use super::api::{encode, Api};
use super::{tabwriter, CliError};

/// docker's `top` table: `tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)`.
const TOP_MIN_WIDTH: usize = 20;

/// `berth top`.
#[derive(Args, Debug)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options for ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ps OPTIONS")]
    pub ps_args: Vec<String>,
}

/// The table of a `top` answer.
fn table(v: &Value) -> String {
    let cells = |row: &Value| -> String {
        row.as_array()
            .into_iter()
            .flatten()
            .map(|c| c.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\t")
    };
    let mut text = cells(&v["Titles"]);
    text.push('\n');
    for p in v["Processes"].as_array().into_iter().flatten() {
        text.push_str(&cells(p));
        text.push('\n');
    }
    tabwriter::align_min(&text, TOP_MIN_WIDTH)
}

/// `berth top`.
pub fn top(api: &Api, a: TopArgs) -> Result<(), CliError> {
    let q = if a.ps_args.is_empty() {
        String::new()
    } else {
        format!("?ps_args={}", encode(&a.ps_args.join(" ")))
    };
    let v = api.get(&format!("/containers/{}/top{q}", encode(&a.container)))?;
    print!("{}", table(&v));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn processes_print_as_dockers_table() {
        let v = json!({"Titles": ["PID", "COMMAND"], "Processes": [["17701", "sleep 1000"]]});
        assert_eq!(table(&v), "PID                 COMMAND\n17701               sleep 1000\n");
    }
}
