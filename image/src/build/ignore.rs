//! `.dockerignore` matching.

use std::path::Path;

/// .dockerignore patterns: `*`, `?`, `**`, leading `!` to re-include.
pub(crate) struct Ignore(pub(crate) Vec<(bool, Vec<String>)>);

impl Ignore {
    pub(crate) fn parse(text: &str) -> Ignore {
        let mut v = Vec::new();
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (neg, p) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let comps: Vec<String> = p
                .trim_start_matches("./")
                .trim_matches('/')
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(String::from)
                .collect();
            if !comps.is_empty() {
                v.push((neg, comps));
            }
        }
        Ignore(v)
    }

    pub(crate) fn ignored(&self, rel: &Path) -> bool {
        let comps: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let mut out = false;
        for (neg, pat) in &self.0 {
            // A pattern matches the path or any of its parent dirs.
            if match_prefixes(pat, &comps) {
                out = !neg;
            }
        }
        out
    }
}

/// Does `pat` (components, `**` for any number of them) match `path[..n]` for some
/// n >= 1? Dynamic programming over (pattern, path) positions: time O(|pat| * |path|)
/// glob calls, no recursion, whatever the pattern.
fn match_prefixes(pat: &[String], path: &[String]) -> bool {
    let (p, n) = (pat.len(), path.len());
    // m[i][j]: pat[..i] matches path[..j].
    let mut m = vec![vec![false; n + 1]; p + 1];
    m[0][0] = true;
    for i in 1..=p {
        let star2 = pat[i - 1] == "**";
        for j in 0..=n {
            m[i][j] = if star2 {
                m[i - 1][j] || (j > 0 && m[i][j - 1])
            } else {
                j > 0 && m[i - 1][j - 1] && glob(pat[i - 1].as_bytes(), path[j - 1].as_bytes())
            };
        }
    }
    (1..=n).any(|j| m[p][j])
}

/// `*` (any run) and `?` (one byte) against one path component: the greedy matcher with a
/// single backtrack point (the last `*`), O(|p| * |s|) at worst and no recursion.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) && p[pi] != b'*' {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn dockerignore() {
        let ig = Ignore(vec![
            (false, vec!["*.log".into()]),
            (false, vec!["**".into(), "tmp".into()]),
            (true, vec!["keep.log".into()]),
        ]);
        assert!(ig.ignored(Path::new("a.log")));
        assert!(!ig.ignored(Path::new("keep.log")));
        assert!(ig.ignored(Path::new("x/y/tmp/z")));
        assert!(!ig.ignored(Path::new("src/main.rs")));
    }

    /// Patterns that used to overflow the stack (300,000 `*`) or take exponential time
    /// (`*a*a...*b` against 60 `a`s, and `**` runs): bounded now, the results unchanged.
    #[test]
    fn dockerignore_patterns_are_bounded() {
        let ig = Ignore::parse(&"*".repeat(300_000));
        assert!(ig.ignored(Path::new("anything")));
        let name = "a".repeat(60);
        let ig = Ignore::parse(&format!("{}b", "*a".repeat(30)));
        assert!(!ig.ignored(Path::new(&name)));
        assert!(ig.ignored(Path::new(&format!("{name}b"))));
        let deep: Vec<String> = (0..60).map(|_| "a".to_string()).collect();
        let ig = Ignore::parse(&format!("{}b", "**/".repeat(40)));
        assert!(!ig.ignored(&deep.iter().collect::<PathBuf>()));
        let mut hit = deep.clone();
        hit.push("b".into());
        assert!(ig.ignored(&hit.iter().collect::<PathBuf>()));
        for (p, s, want) in [
            ("a?c", "abc", true),
            ("a*", "a", true),
            ("*.log", "x.log", true),
            ("*.log", "x.lo", false),
            ("**", "x", true),
        ] {
            assert_eq!(Ignore::parse(p).ignored(Path::new(s)), want, "{p} {s}");
        }
    }
}
