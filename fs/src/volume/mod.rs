//! Volume drivers behind [`berth_plugin::VolumeDriver`]: `local`, Docker's
//! default (a directory under the data root, or a filesystem mounted from
//! `type`/`device`/`o` options).

pub mod local;

/// Whether `name` may name a volume (Docker's rule:
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn volume_names() {
        for ok in ["data", "a1", "my_vol.v2-x"] {
            assert!(super::valid_name(ok), "{ok}");
        }
        for bad in ["", "a", "-x", "../x", "a/b", ".hidden", "a b"] {
            assert!(!super::valid_name(bad), "{bad}");
        }
    }
}
