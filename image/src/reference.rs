//! Image references: `NAME[:TAG]`.

use crate::error::{invalid, Result};

/// `NAME[:TAG]` (tag `latest` when absent).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// Repository name, e.g. `debian` or `example.org/team/app`.
    pub name: String,
    /// Tag, e.g. `latest`.
    pub tag: String,
}

impl Reference {
    /// Parse and check `NAME[:TAG]`: a name of lower-case letters, digits and `._-/:` (a
    /// registry port), a tag of letters, digits and `._-` (at most 128).
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| invalid(format!("image reference {s:?}: {why}"));
        let (name, tag) = match s.rfind(':') {
            Some(i) if !s[i..].contains('/') => (&s[..i], &s[i + 1..]),
            _ => (s, "latest"),
        };
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        if !name.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'_' | b'-' | b'/' | b':')
        }) || name.starts_with(['.', '-', '/'])
            || name.contains("..")
            || name.contains("//")
        {
            return Err(bad(
                "the name may hold lower-case letters, digits and . _ - / only",
            ));
        }
        if tag.is_empty()
            || tag.len() > 128
            || !tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            || tag.starts_with(['.', '-'])
        {
            return Err(bad(
                "the tag may hold letters, digits and . _ - only (at most 128)",
            ));
        }
        Ok(Reference {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("debian").unwrap();
        assert_eq!((r.name.as_str(), r.tag.as_str()), ("debian", "latest"));
        let r = Reference::parse("example.org:5000/team/app:1.2").unwrap();
        assert_eq!(r.name, "example.org:5000/team/app");
        assert_eq!(r.tag, "1.2");
        assert_eq!(r.to_string(), "example.org:5000/team/app:1.2");
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(
            (r.name.as_str(), r.tag.as_str()),
            ("localhost:5000/app", "latest")
        );
        for bad in [
            "", "Upper", "a:", "a:b c", "../x", "/abs", "a//b", "a:-x", ":tag",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }
}
