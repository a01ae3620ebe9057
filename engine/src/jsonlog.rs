//! docker's json-file log: one JSON object a line, `{"log":"text\n","stream":"stdout",
//! "time":"RFC3339Nano"}`, rotated by size (`<path>.1` the newest of the old ones).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{io_err, Result};
use crate::model::{LogConfig, LogOptions, Time};

/// Which of the container's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A line longer than this is written in pieces (docker's 16 KiB).
const MAX_LINE: usize = 16 << 10;

#[derive(Serialize, Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// Appends a container's output to its log.
pub struct LogWriter {
    path: PathBuf,
    cfg: LogConfig,
    file: File,
    size: u64,
    /// The unfinished line of each stream.
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appends to) the log at `path`.
    pub fn open(path: &Path, cfg: LogConfig) -> Result<LogWriter> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_path_buf(),
            cfg,
            file,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Output of `stream`: each complete line is an entry; the rest waits for its end (or
    /// for [`LogWriter::flush`]).
    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let i = stream as usize;
        let mut buf = std::mem::take(&mut self.partial[i]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(n) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + n + 1;
            self.entry(stream, &buf[start..end]);
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.entry(stream, &buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.partial[i] = buf;
    }

    /// Writes what is left of unfinished lines (at the end of the output).
    pub fn flush(&mut self) {
        for s in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.partial[s as usize]);
            if !rest.is_empty() {
                self.entry(s, &rest);
            }
        }
    }

    fn entry(&mut self, stream: Stream, line: &[u8]) {
        let e = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: stream.name().into(),
            time: Time::now().rfc3339(),
        };
        let Ok(mut text) = serde_json::to_vec(&e) else {
            return;
        };
        text.push(b'\n');
        if self.size > 0 && self.size + text.len() as u64 > self.cfg.max_size {
            self.rotate();
        }
        if self.file.write_all(&text).is_ok() {
            self.size += text.len() as u64;
        }
    }

    /// `path` -> `path.1` -> `path.2`...; the oldest beyond `max_file` goes. With one file,
    /// it is emptied.
    fn rotate(&mut self) {
        let n = self.cfg.max_file.max(1);
        if n == 1 {
            let _ = self.file.set_len(0);
            let _ = self.file.seek(SeekFrom::Start(0));
            self.size = 0;
            return;
        }
        let _ = fs::remove_file(rotated(&self.path, n - 1));
        for i in (1..n - 1).rev() {
            let _ = fs::rename(rotated(&self.path, i), rotated(&self.path, i + 1));
        }
        let _ = fs::rename(&self.path, rotated(&self.path, 1));
        if let Ok(f) = open_append(&self.path) {
            self.file = f;
            self.size = 0;
        }
    }
}

fn open_append(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(io_err("open", path))
}

/// The `i`th rotated file of the log at `path`.
pub fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// Every file of the log at `path`, oldest first.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut old: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                let f = e.file_name();
                let Some(f) = f.to_str() else { continue };
                if let Some(n) = f
                    .strip_prefix(name)
                    .and_then(|r| r.strip_prefix('.'))
                    .and_then(|r| r.parse::<u32>().ok())
                {
                    old.push((n, e.path()));
                }
            }
        }
    }
    old.sort_by_key(|b| std::cmp::Reverse(b.0));
    let mut out: Vec<PathBuf> = old.into_iter().map(|(_, p)| p).collect();
    out.push(path.to_path_buf());
    out
}

/// One line of a log, parsed.
struct Line {
    stream: Stream,
    time: Option<SystemTime>,
    time_text: String,
    log: String,
}

fn parse(line: &str) -> Option<Line> {
    let e: Entry = serde_json::from_str(line).ok()?;
    Some(Line {
        stream: if e.stream == "stderr" {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        time: crate::time::parse_rfc3339(&e.time),
        time_text: e.time,
        log: e.log,
    })
}

fn keep(l: &Line, o: &LogOptions) -> bool {
    match (l.time, o.since, o.until) {
        (Some(t), Some(s), _) if t < s => false,
        (Some(t), _, Some(u)) if t >= u => false,
        _ => true,
    }
}

fn emit(l: &Line, o: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<()> {
    let w: &mut dyn Write = match l.stream {
        Stream::Stdout => out,
        Stream::Stderr => err,
    };
    if o.timestamps {
        write!(w, "{} ", l.time_text)?;
    }
    w.write_all(l.log.as_bytes())?;
    w.flush()
}

/// Reads the log at `path` as `docker logs` shows it; with `o.follow`, then follows it
/// (across rotations) until `running()` says the container's output has ended and all of
/// it is read.
pub fn read(
    path: &Path,
    o: &LogOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
    running: &mut dyn FnMut() -> bool,
) -> Result<()> {
    let wr = |e: std::io::Error| io_err("write", "the output")(e);
    // What is there now.
    let files = files(path);
    let mut lines: Vec<Line> = Vec::new();
    let mut cur: Option<(BufReader<File>, u64)> = None;
    for (i, f) in files.iter().enumerate() {
        let Ok(file) = File::open(f) else { continue };
        let ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
        let mut r = BufReader::new(file);
        let mut s = String::new();
        loop {
            s.clear();
            match r.read_line(&mut s) {
                Ok(0) | Err(_) => break,
                Ok(_) if !s.ends_with('\n') => {
                    // A line being written: read again later (follow) or drop it.
                    let back = s.len() as i64;
                    let _ = r.seek(SeekFrom::Current(-back));
                    break;
                }
                Ok(_) => {
                    if let Some(l) = parse(&s) {
                        if keep(&l, o) {
                            lines.push(l);
                            if let Some(t) = o.tail {
                                if lines.len() > t.saturating_mul(2).max(1024) {
                                    lines.drain(..lines.len() - t);
                                }
                            }
                        }
                    }
                }
            }
        }
        if i + 1 == files.len() {
            cur = Some((r, ino));
        }
    }
    if let Some(t) = o.tail {
        let n = lines.len().saturating_sub(t);
        lines.drain(..n);
    }
    for l in &lines {
        emit(l, o, out, err).map_err(wr)?;
    }
    if !o.follow {
        return Ok(());
    }
    let (mut r, mut ino) = match cur {
        Some(c) => c,
        None => {
            // No log yet: wait for one.
            loop {
                if let Ok(f) = File::open(path) {
                    let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                    break (BufReader::new(f), ino);
                }
                if !running() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let mut s = String::new();
    loop {
        let mut got = false;
        loop {
            s.clear();
            match r.read_line(&mut s) {
                Ok(0) | Err(_) => break,
                Ok(_) if !s.ends_with('\n') => {
                    let back = s.len() as i64;
                    let _ = r.seek(SeekFrom::Current(-back));
                    break;
                }
                Ok(_) => {
                    got = true;
                    if let Some(l) = parse(&s) {
                        if keep(&l, o) {
                            emit(&l, o, out, err).map_err(wr)?;
                        }
                    }
                }
            }
        }
        // Rotated: the file we read is now `.1`; go on with the new one.
        match fs::metadata(path) {
            Ok(m) if m.ino() != ino => {
                if let Ok(f) = File::open(path) {
                    ino = m.ino();
                    r = BufReader::new(f);
                    continue;
                }
            }
            _ => {}
        }
        if !got {
            if !running() {
                // One last look: what was written before it ended.
                let mut rest = String::new();
                let _ = r.read_to_string(&mut rest);
                for line in rest.lines() {
                    if let Some(l) = parse(line) {
                        if keep(&l, o) {
                            emit(&l, o, out, err).map_err(wr)?;
                        }
                    }
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(path: &Path, o: &LogOptions) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        read(path, o, &mut out, &mut err, &mut || false).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn lines_are_entries_by_stream() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c-json.log");
        let mut w = LogWriter::open(&p, LogConfig::default()).unwrap();
        w.write(Stream::Stdout, b"one\ntw");
        w.write(Stream::Stderr, b"oops\n");
        w.write(Stream::Stdout, b"o\nthree");
        w.flush();
        let text = fs::read_to_string(&p).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["log"], "one\n");
        assert_eq!(first["stream"], "stdout");
        assert!(first["time"].as_str().unwrap().ends_with('Z'));
        let (out, err) = logs(&p, &LogOptions::default());
        assert_eq!(out, "one\ntwo\nthree");
        assert_eq!(err, "oops\n");
        let tail = LogOptions {
            tail: Some(1),
            ..LogOptions::default()
        };
        assert_eq!(logs(&p, &tail).0, "three");
    }

    #[test]
    fn the_log_is_rotated_by_size() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c-json.log");
        let cfg = LogConfig {
            max_size: 1000,
            max_file: 3,
        };
        let mut w = LogWriter::open(&p, cfg).unwrap();
        for i in 0..200 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        assert!(rotated(&p, 1).exists() && rotated(&p, 2).exists());
        assert!(!rotated(&p, 3).exists());
        for f in files(&p) {
            assert!(fs::metadata(&f).unwrap().len() <= 1000);
        }
        let (out, _) = logs(&p, &LogOptions::default());
        // The newest lines, in order, ending with the last.
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(*got.last().unwrap(), "line 199");
        for w in got.windows(2) {
            let n = |s: &str| s[5..].parse::<u32>().unwrap();
            assert_eq!(n(w[0]) + 1, n(w[1]));
        }
    }
}
