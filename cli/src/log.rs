//! Log lines as runc writes them, because engines read them: podman matches the text of the
//! runtime's log file (`permission denied`, `no such file or directory`, ...), containerd's
//! go-runc decodes `{"level":"error","msg":...}` lines from it. So `--log-format text` writes
//! logrus's text lines (`time="..." level=error msg="..."`) and `--log-format json` logrus's
//! JSON objects (`{"level":"error","msg":"...","time":"..."}`); a message's fields (e.g.
//! `container`) follow it.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// logrus's text or JSON lines.
pub struct Logrus {
    pub json: bool,
}

/// logrus's name of a level.
pub fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// The time as logrus prints it (RFC 3339, UTC).
pub fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// One line in logrus's format.
pub fn line(json: bool, level: &str, msg: &str, fields: &[(String, String)]) -> String {
    if json {
        let mut m = serde_json::Map::new();
        m.insert("level".into(), level.into());
        m.insert("msg".into(), msg.into());
        m.insert("time".into(), now().into());
        for (k, v) in fields {
            m.insert(k.clone(), v.clone().into());
        }
        serde_json::Value::Object(m).to_string()
    } else {
        let mut s = format!("time={:?} level={level} msg={}", now(), quote(msg));
        for (k, v) in fields {
            let _ = write!(s, " {k}={}", quote(v));
        }
        s
    }
}

/// logrus quotes a value that is empty or holds anything but plain characters.
fn quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if plain {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

#[derive(Default)]
struct Fields {
    msg: String,
    rest: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.rest
                .push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.rest
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }
}

impl<S, N> FormatEvent<S, N> for Logrus
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        let l = line(
            self.json,
            level_name(event.metadata().level()),
            &f.msg,
            &f.rest,
        );
        writeln!(writer, "{l}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_logrus() {
        let t = line(false, "error", "container \"x\": boom", &[]);
        assert!(t.starts_with("time=\""), "{t}");
        assert!(
            t.ends_with(" level=error msg=\"container \\\"x\\\": boom\""),
            "{t}"
        );
        let j: serde_json::Value =
            serde_json::from_str(&line(true, "error", "no such file or directory", &[])).unwrap();
        assert_eq!(j["level"], "error");
        assert_eq!(j["msg"], "no such file or directory");
        assert!(j["time"].as_str().unwrap().ends_with('Z'));
        let t = line(false, "warning", "w", &[("container".into(), "abc".into())]);
        assert!(t.ends_with("level=warning msg=w container=abc"), "{t}");
    }

    #[test]
    fn time_is_rfc3339() {
        let t = now();
        assert_eq!(t.len(), "2026-11-30T09:20:00.000000000Z".len(), "{t}");
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[10..11], "T");
    }
}
