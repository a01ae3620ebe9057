//! The Dockerfile subset: instructions (comments dropped, continuations joined), variable
//! substitution, and the word forms of their arguments.

use std::collections::HashMap;

/// One instruction and the line it starts on.
#[derive(Debug, Clone)]
pub struct Instruction {
    pub line: usize,
    pub keyword: String,
    pub args: String,
    /// The text as written (continuations joined), for messages and history.
    pub text: String,
}

/// Split a Dockerfile into instructions: comments and blank lines dropped, `\` line
/// continuations joined.
pub fn parse(text: &str) -> Result<Vec<Instruction>, String> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let t = raw.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_none()) {
            continue;
        }
        let (start, mut acc) = cur.take().unwrap_or((n, String::new()));
        let (body, cont) = match t.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (t, false),
        };
        if !acc.is_empty() && !body.is_empty() {
            acc.push(' ');
        }
        acc.push_str(body.trim());
        if cont {
            cur = Some((start, acc));
            continue;
        }
        if acc.trim().is_empty() {
            continue;
        }
        let (kw, args) = match acc.split_once(char::is_whitespace) {
            Some((k, a)) => (k.to_string(), a.trim().to_string()),
            None => (acc.clone(), String::new()),
        };
        out.push(Instruction {
            line: start,
            keyword: kw.to_ascii_uppercase(),
            args,
            text: acc,
        });
    }
    if let Some((start, _)) = cur {
        return Err(format!(
            "line {start}: the file ends inside a continued line"
        ));
    }
    Ok(out)
}

/// `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`; `\$` is a literal `$`.
pub fn substitute(s: &str, vars: &HashMap<String, String>) -> Result<String, String> {
    let b: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\\' && i + 1 < b.len() && b[i + 1] == '$' {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' || i + 1 >= b.len() {
            out.push(c);
            i += 1;
            continue;
        }
        if b[i + 1] == '{' {
            let end = b[i + 2..]
                .iter()
                .position(|&x| x == '}')
                .ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
            let inner: String = b[i + 2..i + 2 + end].iter().collect();
            let (name, op) = match inner.find(':') {
                Some(p) => (&inner[..p], Some(&inner[p..])),
                None => (&inner[..], None),
            };
            let val = vars.get(name).filter(|v| !v.is_empty());
            match op {
                None => out.push_str(vars.get(name).map(String::as_str).unwrap_or("")),
                Some(o) if o.starts_with(":-") => {
                    out.push_str(val.map(String::as_str).unwrap_or(&o[2..]))
                }
                Some(o) if o.starts_with(":+") => {
                    if val.is_some() {
                        out.push_str(&o[2..])
                    }
                }
                Some(o) => return Err(format!("unsupported substitution ${{{name}{o}}}")),
            }
            i += 3 + end;
        } else {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_') {
                j += 1;
            }
            if j == start {
                out.push('$');
                i += 1;
                continue;
            }
            let name: String = b[start..j].iter().collect();
            out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
            i = j;
        }
    }
    Ok(out)
}

/// A JSON array of strings (exec form), or None for the shell form.
pub(crate) fn json_form(args: &str) -> Option<Vec<String>> {
    if !args.trim_start().starts_with('[') {
        return None;
    }
    serde_json::from_str(args).ok()
}

/// `k=v k2="v 2"` pairs (ENV, LABEL), or the legacy `ENV k v`.
pub(crate) fn pairs(args: &str, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let words = shell_words(args)?;
    if legacy && !words.is_empty() && !words[0].contains('=') {
        let (k, v) = args
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{args:?}: want KEY VALUE or KEY=VALUE"))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("{w:?}: want KEY=VALUE"))
        })
        .collect()
}

/// Split on whitespace, honouring double and single quotes and backslashes.
pub(crate) fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut q: Option<char> = None;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match (q, c) {
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, '"') | (None, '\'') => {
                q = Some(c);
                any = true;
            }
            (Some(x), c) if c == x => q = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = it.next() {
                    cur.push(n);
                }
                any = true;
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if q.is_some() {
        return Err(format!("unterminated quote in {s:?}"));
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let d = "# c\nFROM busybox\n\nRUN echo a \\\n  && echo b\nENV A=1 B=\"x y\"\n";
        let p = parse(d).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].line, 4);
        assert_eq!(p[1].args, "echo a && echo b");
        assert_eq!(
            pairs(&p[2].args, true).unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "x y".into())]
        );
        assert!(parse("RUN a \\").is_err());
    }

    #[test]
    fn substitution() {
        let mut v = HashMap::new();
        v.insert("A".to_string(), "x".to_string());
        assert_eq!(
            substitute("$A-${A}-${B:-d}-${A:+y}-\\$A", &v).unwrap(),
            "x-x-d-y-$A"
        );
    }
}
