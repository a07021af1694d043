//! The Docker Engine API's framing: versioned paths, version negotiation
//! and errors as Docker writes them.

/// The newest Engine API version berthd speaks: what Debian's docker CLI
/// (20.10) asks for (docs.docker.com/engine/api/v1.41).
pub const API_VERSION: &str = "1.41";
/// The oldest version accepted on a versioned path.
pub const MIN_API_VERSION: &str = "1.24";

/// A parsed `major.minor` API version.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Splits `/v1.41/containers/json` into the version and the route
/// (`Some("1.41")`, `/containers/json`); an unversioned path has none.
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let v = &rest[..end];
        if parse_version(v).is_some() {
            let route = &rest[end..];
            return (Some(v), if route.is_empty() { "/" } else { route });
        }
    }
    (None, path)
}

/// Whether a client's version is one berthd answers; the error message
/// Docker gives otherwise.
pub fn check_version(v: &str) -> Result<(), String> {
    let (Some(asked), Some(max), Some(min)) = (parse_version(v), parse_version(API_VERSION), parse_version(MIN_API_VERSION)) else {
        return Err(format!("malformed API version {v:?}"));
    };
    if asked > max {
        return Err(format!(
            "client version {v} is too new. Maximum supported API version is {API_VERSION}"
        ));
    }
    if asked < min {
        return Err(format!("client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_paths_split() {
        assert_eq!(split_version("/v1.41/containers/json"), (Some("1.41"), "/containers/json"));
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert_eq!(split_version("/v1.41"), (Some("1.41"), "/"));
        assert_eq!(split_version("/volumes"), (None, "/volumes"));
    }

    #[test]
    fn versions_outside_the_range_are_refused() {
        assert!(check_version("1.41").is_ok());
        assert!(check_version("1.30").is_ok());
        assert!(check_version("1.43").unwrap_err().contains("too new"));
        assert!(check_version("1.12").unwrap_err().contains("too old"));
        assert!(check_version("x").is_err());
    }
}
