//! What corral prints: JSON documents, text from images made safe for a terminal, and a
//! quiet exit when the reader of stdout goes away.

use std::io::Write as _;

use crate::error::{msg, R};

pub fn print_json(v: &serde_json::Value) -> R<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| msg(format!("encoding json: {e}")))?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{s}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => stdout_closed_unwind(),
        r => r.map_err(|e| msg(format!("writing output: {e}"))),
    }
}

/// Text that came from an image (history, dates, names), made safe to print on a terminal:
/// control characters (escape sequences, carriage returns, bells...) and the Unicode
/// direction overrides that reorder what a terminal shows become `\xNN` / `\u{NNNN}`; other
/// text (a backslash too) is shown as it is.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if (c as u32) < 0x100 && unsafe_char(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The exit status when stdout was closed by its reader: 128 + SIGPIPE, what a shell shows
/// for `ls` in `ls | head -1`.
pub const EXIT_STDOUT_CLOSED: u8 = 141;

/// The unwinding payload of a write to a closed stdout (see [`stdout_closed_unwind`]).
pub struct StdoutClosed;

/// Leaves the command by unwinding (so that what it holds is dropped and undone) to `main`,
/// which exits [`EXIT_STDOUT_CLOSED`] quietly. For writes to stdout that fail with `EPIPE`.
pub fn stdout_closed_unwind() -> ! {
    std::panic::resume_unwind(Box::new(StdoutClosed))
}

/// Whether a panic is a write to a stdout whose reader is gone: ours, or `println!`'s
/// ("failed printing to stdout: Broken pipe (os error 32)").
pub fn stdout_closed(p: &(dyn std::any::Any + Send)) -> bool {
    p.is::<StdoutClosed>() || payload_text(p).is_some_and(is_epipe_message)
}

/// A panic's message, when it is text (`PanicHookInfo::payload_as_str` needs Rust 1.91).
fn payload_text(p: &(dyn std::any::Any + Send)) -> Option<&str> {
    p.downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| p.downcast_ref::<&str>().copied())
}

fn is_epipe_message(s: &str) -> bool {
    s.starts_with("failed printing to stdout") && s.contains("(os error 32)")
}

/// A panic hook that says nothing (no message, no backtrace) for `println!` to a closed
/// stdout, and leaves every other panic to the default hook.
pub fn quiet_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !payload_text(info.payload()).is_some_and(is_epipe_message) {
            default(info)
        }
    }));
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_escapes_what_a_terminal_would_act_on() {
        assert_eq!(super::printable("plain text é"), "plain text é");
        assert_eq!(
            super::printable("a\x1b]0;t\x07b\rc\\x1b\u{202e}d\u{9b}"),
            "a\\x1b]0;t\\x07b\\x0dc\\x1b\\u{202e}d\\x9b"
        );
    }
}
