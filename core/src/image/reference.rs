//! Image references as Docker reads them: `busybox` is
//! `busybox:latest`; `docker.io/library/busybox` is the same; a registry
//! with a port (`localhost:5000/x`) is not mistaken for a tag.

/// The canonical `name:tag` of a reference, or None when it is not one.
pub fn normalize(reference: &str) -> Option<String> {
    if reference.is_empty() || reference.contains(char::is_whitespace) || reference.contains('@') {
        return None;
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    let (name, tag) = match last.rsplit_once(':') {
        Some((_, tag)) => (&reference[..reference.len() - tag.len() - 1], tag),
        None => (reference, "latest"),
    };
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    let name = name.strip_prefix("library/").unwrap_or(name);
    // Only the first of several components (a registry host) may carry a
    // port; no component is `.` or `..`; a 64-hex name would shadow IDs.
    let components: Vec<&str> = name.split('/').collect();
    let valid_name = !name.is_empty()
        && (name.len() != 64 || !name.chars().all(|c| c.is_ascii_hexdigit()))
        && components.iter().enumerate().all(|(i, c)| {
            let colon_ok = i == 0 && components.len() > 1;
            !c.is_empty()
                && *c != "."
                && *c != ".."
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch) || (ch == ':' && colon_ok))
        });
    let valid_tag = !tag.is_empty() && tag.len() <= 128 && tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    (valid_name && valid_tag).then(|| format!("{name}:{tag}"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn references_normalize_as_dockers() {
        assert_eq!(normalize("busybox").as_deref(), Some("busybox:latest"));
        assert_eq!(normalize("busybox:1.36").as_deref(), Some("busybox:1.36"));
        assert_eq!(normalize("docker.io/library/busybox").as_deref(), Some("busybox:latest"));
        assert_eq!(
            normalize("localhost:5000/team/app").as_deref(),
            Some("localhost:5000/team/app:latest")
        );
        assert_eq!(normalize("localhost:5000/app:v2").as_deref(), Some("localhost:5000/app:v2"));
        let hex64 = "a".repeat(64);
        for bad in ["", "Busybox", "a b", "x:", "x@sha256:00", "x:t:u", "a/../b", hex64.as_str()] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}
