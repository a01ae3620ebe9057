//! The command lines an engine sends for every container (runc's `run`/`create`, `start`,
//! `state`, `kill ID [SIGNAL]`, `delete [-f]`, with the global flags before the verb), read
//! without building clap's tree of every command, which costs more than a third of a
//! millisecond at each start of `corral` (every command's arguments made, the global ones
//! copied into each). Anything else, or anything unusual in these (a flag this reader does
//! not know, a value that looks like a flag, a repeated flag, `--help`), is left to clap,
//! which reads it with its help and its errors. A unit test checks that for every shape read
//! here both readers give the same [`Cli`].

use std::path::PathBuf;

use crate::args::{Cli, Cmd};

/// `argv` (without the program's name) as clap would read it, when it has one of the shapes
/// above; `None` otherwise.
pub fn parse(argv: &[String]) -> Option<Cli> {
    let mut cli = Cli {
        root: None,
        store: None,
        log: None,
        log_format: "text".into(),
        debug: false,
        systemd_cgroup: false,
        cmd: Cmd::Features,
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 0;
    let verb = loop {
        let a = argv.get(i)?;
        let Some(flag) = a.strip_prefix("--") else {
            break a.as_str();
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (flag, None),
        };
        if seen.contains(&name) {
            return None;
        }
        seen.push(name);
        match name {
            "debug" | "systemd-cgroup" => {
                if inline.is_some() {
                    return None;
                }
                if name == "debug" {
                    cli.debug = true;
                } else {
                    cli.systemd_cgroup = true;
                }
            }
            "root" | "store" | "log" | "log-format" => {
                let v = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        argv.get(i)?.as_str()
                    }
                };
                if v.is_empty() || v.starts_with('-') {
                    return None;
                }
                match name {
                    "root" => cli.root = Some(PathBuf::from(v)),
                    "store" => cli.store = Some(PathBuf::from(v)),
                    "log" => cli.log = Some(PathBuf::from(v)),
                    _ => cli.log_format = v.to_string(),
                }
            }
            _ => return None,
        }
        i += 1;
    };
    let rest = argv.get(i + 1..)?;
    // Plain operands only: no flag, nothing empty.
    let plain = |v: &[String]| v.iter().all(|a| !a.is_empty() && !a.starts_with('-'));
    cli.cmd = match verb {
        // Both keep their arguments raw until their form is known (`docker::args::settle`).
        "run" | "create" if rest.first().is_some_and(|a| a != "--") => {
            let args = rest.to_vec();
            if verb == "run" {
                Cmd::Run { args, form: None }
            } else {
                Cmd::Create { args, form: None }
            }
        }
        "state" if rest.len() == 1 && plain(rest) => Cmd::State {
            id: rest.first()?.clone(),
        },
        "start" if !rest.is_empty() && plain(rest) => Cmd::Start {
            ids: rest.to_vec(),
            attach: false,
        },
        "kill" if (1..=2).contains(&rest.len()) && plain(rest) => Cmd::Kill {
            args: rest.to_vec(),
            signal: None,
            all: false,
        },
        "delete" => {
            let mut force = false;
            let mut id = None;
            for a in rest {
                match a.as_str() {
                    "-f" | "--force" if !force => force = true,
                    s if id.is_none() && !s.is_empty() && !s.starts_with('-') => {
                        id = Some(a.clone())
                    }
                    _ => return None,
                }
            }
            Cmd::Delete { id: id?, force }
        }
        _ => return None,
    };
    Some(cli)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    /// Every shape this reader takes gives what clap gives; the rest is left to clap.
    #[test]
    fn reads_what_clap_reads_or_leaves_it_to_clap() {
        let taken = [
            "run -b /b id",
            "run --bundle=/b --pid-file /p --console-socket /s id",
            "create --bundle /b --pid-file /p --no-pivot --preserve-fds 2 id",
            "--root /r --log /l --log-format json create --bundle /b id",
            "--root=/r --systemd-cgroup --debug run -b /b -d id",
            "--store /s run busybox echo -n hi --root /x",
            "run --image bb:1 -- true",
            "create -it --name web nginx",
            "run -b . --help",
            "state id",
            "--root /r state id",
            "start id",
            "start a b c",
            "kill id",
            "kill id KILL",
            "kill id 9",
            "delete id",
            "delete -f id",
            "delete id --force",
            "--log-format=json --log /l delete --force id",
        ];
        for s in taken {
            let a = argv(s);
            let fast = parse(&a).unwrap_or_else(|| panic!("{s:?}: not taken"));
            let clap = Cli::try_parse_from(std::iter::once("corral".to_string()).chain(a))
                .unwrap_or_else(|e| panic!("{s:?}: clap: {e}"));
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{s:?}");
        }
        let left = [
            "",
            "--version",
            "--help",
            "run",
            "run -- x",
            "--root",
            "--root -x state id",
            "--root /a --root /b state id",
            "--debug=1 state id",
            "--bogus state id",
            "state",
            "state a b",
            "state --help",
            "state -h",
            "start",
            "start -a id",
            "kill -s KILL id",
            "kill id -9",
            "kill a b c",
            "delete",
            "delete -f -f id",
            "delete a b",
            "delete -x id",
            "ps",
            "exec id true",
            "list",
        ];
        for s in left {
            assert!(parse(&argv(s)).is_none(), "{s:?} should be left to clap");
        }
    }
}
