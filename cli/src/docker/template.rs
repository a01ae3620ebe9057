//! The part of Go's text/template that docker's `--format` is used with: `{{.Field}}`,
//! `{{.A.B}}`, `{{json .X}}` (and `upper`, `lower`, `{{index .M "key"}}`), the `table`
//! prefix (a header row, columns aligned as docker's tabwriter does), `\t` and `\n`.

use serde_json::Value;

use crate::error::{msg, R};

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// A function (`json`, `upper`, `lower`, `index`) or none, a path of fields, and
    /// string arguments after it.
    Expr {
        func: Option<String>,
        path: Vec<String>,
        args: Vec<String>,
    },
}

/// A parsed `--format`.
#[derive(Debug, Clone)]
pub struct Template {
    /// `table ...`: a header row, then columns aligned.
    pub table: bool,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `s` (`table` prefix, `\t` and `\n` as docker's CLI takes them).
    pub fn parse(s: &str) -> R<Template> {
        let (table, body) = match s.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, s),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(i) = rest.find("{{") {
            if i > 0 {
                parts.push(Part::Text(rest[..i].to_string()));
            }
            let after = &rest[i + 2..];
            let j = after
                .find("}}")
                .ok_or_else(|| msg(format!("--format {s:?}: unclosed action (no }}}})")))?;
            parts.push(parse_action(after[..j].trim().trim_matches('-').trim(), s)?);
            rest = &after[j + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { table, parts })
    }

    /// The template applied to `v`.
    pub fn render(&self, v: &Value) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Expr { func, path, args } => {
                    let mut x = lookup(v, path);
                    if func.as_deref() == Some("index") {
                        for a in args {
                            x = x.and_then(|x| x.get(a.as_str()));
                        }
                    }
                    let x = x.cloned().unwrap_or(Value::Null);
                    out.push_str(&match func.as_deref() {
                        Some("json") => serde_json::to_string(&x).unwrap_or_default(),
                        Some("upper") => text(&x).to_uppercase(),
                        Some("lower") => text(&x).to_lowercase(),
                        _ => text(&x),
                    });
                }
            }
        }
        out
    }

    /// The first field of the template that `v` lacks (a path's missing component), if
    /// any: for verbs whose objects have a fixed shape, where Go's templates fail.
    pub fn missing(&self, v: &Value) -> Option<String> {
        self.parts.iter().find_map(|p| match p {
            Part::Expr { path, .. } if lookup(v, path).is_none() => {
                let mut x = v;
                path.iter()
                    .find(|k| match x.get(k.as_str()) {
                        Some(n) => {
                            x = n;
                            false
                        }
                        None => true,
                    })
                    .cloned()
            }
            _ => None,
        })
    }

    /// The header row of a `table` template: each field's name as `header` gives it (the
    /// last component of its path), the text between kept.
    pub fn header(&self, header: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Expr { path, .. } => {
                    out.push_str(&header(path.last().map(String::as_str).unwrap_or("")))
                }
            }
        }
        out
    }
}

fn parse_action(a: &str, whole: &str) -> R<Part> {
    let bad = || msg(format!("--format {whole:?}: cannot read {{{{{a}}}}}"));
    let words: Vec<&str> = a.split_whitespace().collect();
    let (func, field, args) = match words.as_slice() {
        [f] if f.starts_with('.') => (None, *f, &[][..]),
        [func, f, rest @ ..] if f.starts_with('.') => (Some(func.to_string()), *f, rest),
        _ => return Err(bad()),
    };
    if let Some(f) = &func {
        if !["json", "upper", "lower", "index"].contains(&f.as_str()) {
            return Err(msg(format!(
                "--format {whole:?}: function {f:?} not defined (corral knows json, upper, lower, index)"
            )));
        }
    }
    let path = field
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let args = args
        .iter()
        .map(|s| {
            s.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .map(str::to_string)
                .ok_or_else(bad)
        })
        .collect::<R<Vec<_>>>()?;
    Ok(Part::Expr { func, path, args })
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut x = v;
    for k in path {
        x = x.get(k.as_str())?;
    }
    Some(x)
}

/// A value as Go's template prints it: strings bare, `<no value>` for a missing one,
/// `map[k:v]` for an object, `[a b]` for a list.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Lines whose cells are separated by tabs, aligned as docker's tabwriter (cells padded to
/// the widest of their column plus 3, at least 10 wide; the last cell of a line not padded).
pub fn align(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            let w = c.chars().count() + 3;
            if widths.len() <= i {
                widths.push(10);
            }
            widths[i] = widths[i].max(w);
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                let pad = widths[i] - c.chars().count();
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_paths_json_and_table() {
        let v = json!({"ID": "abc", "State": {"Status": "exited", "ExitCode": 3},
                       "Labels": {"a": "b"}, "List": [1, 2]});
        let t = Template::parse("{{.ID}}: {{.State.Status}} ({{.State.ExitCode}})").unwrap();
        assert!(!t.table);
        assert_eq!(t.render(&v), "abc: exited (3)");
        assert_eq!(
            Template::parse("{{json .State}}").unwrap().render(&v),
            r#"{"ExitCode":3,"Status":"exited"}"#
        );
        assert_eq!(
            Template::parse("{{ .Missing }}").unwrap().render(&v),
            "<no value>"
        );
        assert_eq!(
            Template::parse("{{.Labels}} {{.List}}").unwrap().render(&v),
            "map[a:b] [1 2]"
        );
        assert_eq!(
            Template::parse(r#"{{index .Labels "a"}}"#)
                .unwrap()
                .render(&v),
            "b"
        );
        assert_eq!(Template::parse("{{upper .ID}}").unwrap().render(&v), "ABC");
        let t = Template::parse(r"table {{.ID}}\t{{.State.Status}}").unwrap();
        assert!(t.table);
        assert_eq!(t.header(|f| f.to_uppercase()), "ID\tSTATUS");
        assert_eq!(t.render(&v), "abc\texited");
        assert!(Template::parse("{{.ID").is_err());
        assert!(Template::parse("{{printf .ID}}").is_err());
        assert!(Template::parse("{{ID}}").is_err());
    }

    #[test]
    fn aligned_as_docker() {
        let out = align(&["CONTAINER ID\tNAMES".into(), "abc\tweb".into()]);
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            web\n");
    }
}
