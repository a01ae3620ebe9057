//! The docker command line's flags (clap), and how `run`/`create` pick their form: runc's
//! (`-b/--bundle`), the legacy `--image` one, or docker's `run [OPTIONS] IMAGE [COMMAND]
//! [ARG...]`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser};

use crate::args::{CreateArgs, RunImageArgs};

/// The global flags, also taken after `run`/`create` (clap's `global` does not reach into
/// the raw arguments those two keep until their form is known).
#[derive(Args, Debug, Default, Clone)]
pub struct Globals {
    #[arg(long, hide = true)]
    pub root: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub store: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub log: Option<PathBuf>,
    #[arg(long = "log-format", hide = true)]
    pub log_format: Option<String>,
    #[arg(long, hide = true)]
    pub debug: bool,
}

/// runc's `run -b BUNDLE [OPTIONS] ID` (engines).
#[derive(Parser, Debug)]
#[command(
    name = "corral run",
    about = "Run a container from an OCI bundle (runc's form)"
)]
pub struct RuncRun {
    /// The container id
    pub id: String,
    #[command(flatten)]
    pub c: CreateArgs,
    /// Do not wait: leave the container running and exit
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (until `delete`)
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub g: Globals,
}

/// runc's `create -b BUNDLE [OPTIONS] ID` (engines).
#[derive(Parser, Debug)]
#[command(
    name = "corral create",
    about = "Create a container from an OCI bundle (runc's form)"
)]
pub struct RuncCreate {
    /// The container id
    pub id: String,
    #[command(flatten)]
    pub c: CreateArgs,
    #[command(flatten)]
    pub g: Globals,
}

/// The legacy `run --image IMAGE [OPTIONS] [COMMAND...]`: every positional is the command.
#[derive(Parser, Debug)]
#[command(name = "corral run")]
pub struct LegacyRun {
    #[command(flatten)]
    pub c: CreateArgs,
    #[command(flatten)]
    pub img: RunImageArgs,
    /// Do not wait: leave the container running and exit
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (until `delete`)
    #[arg(long)]
    pub keep: bool,
    /// The command and its arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub g: Globals,
}

/// docker's `run [OPTIONS] IMAGE [COMMAND] [ARG...]` (and `create`).
#[derive(Parser, Debug)]
#[command(
    name = "corral run",
    about = "Run a command in a new container from an image (docker's form)",
    after_help = "With -b/--bundle: runc's form, `corral run -b BUNDLE [OPTIONS] ID` \
                  (see `corral run -b . --help`).\nExit status: the container's; 125 if \
                  corral failed, 126 if the command cannot be invoked, 127 if it is not found."
)]
pub struct DockerRun {
    #[command(flatten)]
    pub c: CreateArgs,
    #[command(flatten)]
    pub img: RunImageArgs,
    #[command(flatten)]
    pub d: DockerOpts,
    /// Run in the background and print the container's id
    #[arg(short, long)]
    pub detach: bool,
    /// The image (NAME[:TAG] or ID)
    #[arg(id = "IMAGE", value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments (default: the image's)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
    #[command(flatten)]
    pub g: Globals,
}

/// docker's flags of `run`/`create` that only the docker form has.
#[derive(Args, Debug, Default, Clone)]
pub struct DockerOpts {
    /// Restart policy: no, on-failure[:N], always, unless-stopped
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Signal to stop the container (default the image's StopSignal, else SIGTERM)
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Seconds to wait for it to stop before killing it (default 10)
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Log driver options: max-size=SIZE, max-file=N
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Set a label (KEY=VALUE)
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Override the image's ENTRYPOINT
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Pull the image from its registry: missing (when not in the store), always, never
    #[arg(long, default_value = "missing", value_parser = ["missing", "always", "never"])]
    pub pull: String,
}

/// Which form a `run`/`create` is.
#[derive(Debug)]
pub enum MakeForm {
    RuncRun(RuncRun),
    RuncCreate(RuncCreate),
    LegacyRun(Box<LegacyRun>),
    Docker(Box<DockerRun>),
}

impl MakeForm {
    pub fn globals(&self) -> &Globals {
        match self {
            MakeForm::RuncRun(r) => &r.g,
            MakeForm::RuncCreate(r) => &r.g,
            MakeForm::LegacyRun(r) => &r.g,
            MakeForm::Docker(r) => &r.g,
        }
    }

    pub fn preserve_fds(&self) -> u32 {
        match self {
            MakeForm::RuncRun(r) => r.c.preserve_fds,
            MakeForm::RuncCreate(r) => r.c.preserve_fds,
            MakeForm::LegacyRun(r) => r.c.preserve_fds,
            MakeForm::Docker(r) => r.c.preserve_fds,
        }
    }

    pub fn is_docker(&self) -> bool {
        matches!(self, MakeForm::Docker(_))
    }
}

/// The flags of `cmds`: which take a value (long names and aliases, shorts), and every name.
struct FlagTable {
    long_val: std::collections::HashSet<String>,
    short_val: std::collections::HashSet<char>,
    names: std::collections::HashSet<String>,
}

impl FlagTable {
    fn of(cmds: &[clap::Command]) -> FlagTable {
        let mut t = FlagTable {
            long_val: Default::default(),
            short_val: Default::default(),
            names: Default::default(),
        };
        for a in cmds.iter().flat_map(|c| c.get_arguments()) {
            if a.is_positional() {
                continue;
            }
            let val = a.get_action().takes_values();
            let longs = a
                .get_long()
                .into_iter()
                .chain(a.get_all_aliases().unwrap_or_default());
            for l in longs {
                t.names.insert(format!("--{l}"));
                if val {
                    t.long_val.insert(l.to_string());
                }
            }
            if let Some(c) = a.get_short() {
                t.names.insert(format!("-{c}"));
                if val {
                    t.short_val.insert(c);
                }
            }
        }
        t
    }

    /// Which flags come before the first positional of `args`, read with this table.
    fn before_positional(&self, args: &[String]) -> Vec<String> {
        let mut seen = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let t = &args[i];
            if t == "--" || t == "-" || !t.starts_with('-') {
                break;
            }
            if let Some(l) = t.strip_prefix("--") {
                let (name, has_eq) = match l.split_once('=') {
                    Some((n, _)) => (n, true),
                    None => (l, false),
                };
                seen.push(format!("--{name}"));
                if !has_eq && self.long_val.contains(name) {
                    i += 1;
                }
            } else {
                for (k, ch) in t[1..].char_indices() {
                    seen.push(format!("-{ch}"));
                    if self.short_val.contains(&ch) {
                        // The rest of the cluster, or the next argument, is its value.
                        if k + ch.len_utf8() == t.len() - 1 {
                            i += 1;
                        }
                        break;
                    }
                }
            }
            i += 1;
        }
        seen
    }
}

/// Which flags come before the first positional of `args`: the runc form iff `-b/--bundle`
/// is among them, the legacy form iff `--image` is. The table of flags (which take a
/// value) is the union of every form's, from clap itself. runc's form, the one engines use
/// at every spawn, is first read with its own small table alone: when `-b/--bundle` comes
/// before the first positional with only runc's flags, the union reads the same (a test
/// checks that no other form gives one of runc's flags another arity), and building the
/// docker form's hundred flags is skipped.
fn flags_before_positional(args: &[String]) -> Vec<String> {
    if let Some(seen) = runc_flags(args) {
        return seen;
    }
    FlagTable::of(&[
        RuncRun::command(),
        LegacyRun::command(),
        DockerRun::command(),
    ])
    .before_positional(args)
}

/// The flags before the first positional of `args` read with runc's table alone, when
/// `-b/--bundle` is among them and runc knows every one: then `args` are runc's form.
fn runc_flags(args: &[String]) -> Option<Vec<String>> {
    let runc = FlagTable::of(&[RuncRun::command()]);
    let seen = runc.before_positional(args);
    (seen.iter().any(|f| f == "-b" || f == "--bundle")
        && seen.iter().all(|f| runc.names.contains(f)))
    .then_some(seen)
}

/// runc's form of `run`/`create` when [`runc_flags`] recognises it, read as [`make_form`]
/// reads it; `None` otherwise. This is all the `corral` front links of the forms.
fn runc_form(run: bool, args: &[String]) -> Option<MakeForm> {
    runc_flags(args)?;
    Some(parse_runc(run, args))
}

/// `args` read as runc's form (clap's errors exit 2, as runc's).
fn parse_runc(run: bool, args: &[String]) -> MakeForm {
    let name = if run { "corral run" } else { "corral create" };
    let argv = std::iter::once(OsString::from(name)).chain(args.iter().map(OsString::from));
    if run {
        MakeForm::RuncRun(RuncRun::parse_from(argv))
    } else {
        MakeForm::RuncCreate(RuncCreate::parse_from(argv))
    }
}

/// The form of `run` (`run == true`) or `create` given its raw arguments. A parse error of
/// the docker form exits 125 (docker's status for a bad flag), of runc's 2 (clap's, as
/// before).
pub fn make_form(run: bool, args: &[String]) -> MakeForm {
    let flags = flags_before_positional(args);
    let has = |f: &str| flags.iter().any(|x| x == f);
    let name = if run { "corral run" } else { "corral create" };
    let argv = std::iter::once(OsString::from(name)).chain(args.iter().map(OsString::from));
    if has("-b") || has("--bundle") {
        parse_runc(run, args)
    } else if has("--image") {
        let mut l = LegacyRun::parse_from(argv);
        if !run && (l.detach || l.keep) {
            clap::Error::raw(
                clap::error::ErrorKind::UnknownArgument,
                "create --image: -d and --keep are for run\n",
            )
            .exit();
        }
        l.img.command = std::mem::take(&mut l.command);
        MakeForm::LegacyRun(Box::new(l))
    } else {
        let cmd = DockerRun::command().name(name).bin_name(name);
        let parsed = cmd
            .try_get_matches_from(argv)
            .and_then(|m| <DockerRun as clap::FromArgMatches>::from_arg_matches(&m));
        match parsed {
            Ok(mut d) => {
                if !run && d.detach {
                    eprintln!("corral: error: create: -d is for run");
                    std::process::exit(125);
                }
                d.img.command = d.command.clone();
                MakeForm::Docker(Box::new(d))
            }
            Err(e)
                if e.kind() == clap::error::ErrorKind::MissingRequiredArgument
                    && !args.iter().any(|a| !a.starts_with('-')) =>
            {
                // Nothing positional at all: say both forms.
                let verb = if run { "run" } else { "create" };
                eprintln!(
                    "corral: error: {verb} needs an image: corral {verb} [OPTIONS] IMAGE \
                     [COMMAND] [ARG...] (docker's), or a bundle: corral {verb} -b BUNDLE \
                     [OPTIONS] <ID> (runc's)"
                );
                std::process::exit(125);
            }
            Err(e) => {
                use clap::error::ErrorKind;
                let code = match e.kind() {
                    ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                    _ => 125,
                };
                let _ = e.print();
                std::process::exit(code);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// runc's flags have the same arity in every form, so that reading runc's form with
    /// runc's table alone (`flags_before_positional`) reads what the union would.
    #[test]
    fn runcs_flags_take_a_value_in_every_form_alike() {
        let runc = super::FlagTable::of(&[super::RuncRun::command()]);
        let all = super::FlagTable::of(&[
            super::RuncRun::command(),
            super::LegacyRun::command(),
            super::DockerRun::command(),
        ]);
        for n in &runc.names {
            let val = |t: &super::FlagTable| match n.strip_prefix("--") {
                Some(l) => t.long_val.contains(l),
                None => n.chars().nth(1).is_some_and(|c| t.short_val.contains(&c)),
            };
            assert_eq!(val(&runc), val(&all), "{n}");
        }
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        for s in [
            "-b /b id",
            "--pid-file /p --bundle=/b id",
            "--console-socket /s -d -b /b id",
            "--no-pivot --preserve-fds 2 --bundle /b id",
        ] {
            assert!(
                super::flags_before_positional(&args(s)).contains(&"-b".to_string())
                    || super::flags_before_positional(&args(s)).contains(&"--bundle".to_string()),
                "{s}"
            );
        }
    }

    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_command_is_well_formed() {
        crate::args::Cli::command().debug_assert();
        RuncRun::command().debug_assert();
        RuncCreate::command().debug_assert();
        LegacyRun::command().debug_assert();
        DockerRun::command().debug_assert();
    }

    #[test]
    fn ps_kill_and_exec_take_both_forms() {
        use crate::args::{Cli, Cmd};
        let parse = |a: &[&str]| {
            Cli::try_parse_from(std::iter::once("corral").chain(a.iter().copied()))
                .unwrap()
                .cmd
        };
        match parse(&["ps", "ctr", "-ef"]) {
            Cmd::Ps { id, ps_args, .. } => {
                assert_eq!(id.as_deref(), Some("ctr"));
                assert_eq!(ps_args, ["-ef"]);
            }
            c => panic!("{c:?}"),
        }
        match parse(&["ps", "-f", "json", "ctr"]) {
            Cmd::Ps { id, f, .. } => {
                assert_eq!(id.as_deref(), Some("ctr"));
                assert_eq!(f, ["json"]);
            }
            c => panic!("{c:?}"),
        }
        match parse(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            "status=exited",
            "-f",
            "name=x",
        ]) {
            Cmd::Ps {
                id,
                all,
                quiet,
                f,
                filter,
                ..
            } => {
                assert!(id.is_none() && all && quiet);
                assert_eq!(filter, ["status=exited"]);
                assert_eq!(f, ["name=x"]);
            }
            c => panic!("{c:?}"),
        }
        match parse(&["kill", "-s", "HUP", "a", "b"]) {
            Cmd::Kill { args, signal, .. } => {
                assert_eq!(args, ["a", "b"]);
                assert_eq!(signal.as_deref(), Some("HUP"));
            }
            c => panic!("{c:?}"),
        }
        match parse(&["exec", "-it", "-w", "/tmp", "ctr", "sh", "-c", "ls -l"]) {
            Cmd::Exec(e) => {
                assert!(e.interactive && e.tty);
                assert_eq!(e.cwd.as_deref(), Some("/tmp"));
                assert_eq!(e.command, ["sh", "-c", "ls -l"]);
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn forms() {
        assert!(matches!(
            make_form(true, &v(&["-b", "/x", "id"])),
            MakeForm::RuncRun(r) if r.id == "id"
        ));
        assert!(matches!(
            make_form(true, &v(&["--pid-file", "p", "--bundle=/x", "id", "--keep"])),
            MakeForm::RuncRun(r) if r.id == "id" && r.keep
        ));
        assert!(matches!(
            make_form(false, &v(&["--bundle", "/x", "id"])),
            MakeForm::RuncCreate(r) if r.id == "id"
        ));
        match make_form(true, &v(&["--rm", "--image", "bb", "ls", "-l"])) {
            MakeForm::LegacyRun(l) => assert_eq!(l.img.command, ["ls", "-l"]),
            f => panic!("{f:?}"),
        }
        match make_form(
            true,
            &v(&["--image", "bb", "--name", "n", "--", "ls", "-b"]),
        ) {
            MakeForm::LegacyRun(l) => {
                assert_eq!(l.img.command, ["ls", "-b"]);
                assert_eq!(l.img.name.as_deref(), Some("n"));
            }
            f => panic!("{f:?}"),
        }
        // The command is never taken as a name or a flag of corral's.
        match make_form(
            true,
            &v(&["-d", "--name", "x", "-e", "A=b", "bb:1", "ls", "-b", "-l"]),
        ) {
            MakeForm::Docker(d) => {
                assert_eq!(d.image, "bb:1");
                assert_eq!(d.command, ["ls", "-b", "-l"]);
                assert!(d.detach);
                assert_eq!(d.img.name.as_deref(), Some("x"));
            }
            f => panic!("{f:?}"),
        }
        match make_form(true, &v(&["-it", "bb", "--", "sh"])) {
            MakeForm::Docker(d) => {
                assert!(d.img.tty && d.img.interactive);
                assert_eq!(d.command, ["sh"]);
            }
            f => panic!("{f:?}"),
        }
        match make_form(true, &v(&["-eFOO=1", "bb", "sh", "--image", "x"])) {
            MakeForm::Docker(d) => assert_eq!(d.command, ["sh", "--image", "x"]),
            f => panic!("{f:?}"),
        }
    }
}

/// docker's verbs that runc has not.
#[derive(clap::Subcommand, Debug)]
pub enum DockerCmd {
    /// Stop containers: the stop signal, then SIGKILL after the timeout
    Stop {
        /// Seconds to wait before killing it (default: its --stop-timeout, else 10)
        #[arg(short = 't', long = "time", alias = "timeout")]
        time: Option<i64>,
        #[arg(required = true, value_name = "CONTAINER")]
        ids: Vec<String>,
    },
    /// Stop and start containers again
    Restart {
        /// Seconds to wait before killing it (default 10)
        #[arg(short = 't', long = "time", alias = "timeout")]
        time: Option<i64>,
        #[arg(required = true, value_name = "CONTAINER")]
        ids: Vec<String>,
    },
    /// Remove containers (refused for a running one without -f)
    Rm {
        /// Kill a running container first
        #[arg(short, long)]
        force: bool,
        /// Remove its anonymous volumes too
        #[arg(short, long)]
        volumes: bool,
        #[arg(required = true, value_name = "CONTAINER")]
        ids: Vec<String>,
    },
    /// Print a container's logs
    Logs {
        /// Follow the output
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines (or `all`)
        #[arg(short = 'n', long)]
        tail: Option<String>,
        /// Only lines since a time (RFC 3339) or a duration ago (10m)
        #[arg(long)]
        since: Option<String>,
        /// Show timestamps
        #[arg(short, long)]
        timestamps: bool,
        id: String,
    },
    /// Print containers' or images' details as JSON
    Inspect {
        /// Format the output with a Go template
        #[arg(short, long)]
        format: Option<String>,
        /// Only containers or only images: container, image
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show the processes of a container (ps options after the id; default -ef)
    Top {
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Show containers' resource usage
    Stats {
        /// Print once and exit
        #[arg(long = "no-stream")]
        no_stream: bool,
        /// Every container (default: running ones)
        #[arg(short, long)]
        all: bool,
        /// Format the output with a Go template (or `json`, `table TEMPLATE`)
        #[arg(long)]
        format: Option<String>,
        /// Do not truncate ids
        #[arg(long = "no-trunc")]
        no_trunc: bool,
        ids: Vec<String>,
    },
    /// Copy files between a container and the host: `cp CONTAINER:SRC DST` or `cp SRC
    /// CONTAINER:DST` (`-` for a tar on stdin/stdout is not supported)
    Cp {
        /// Follow symlinks in SRC (on the host side)
        #[arg(short = 'L', long = "follow-link")]
        follow_link: bool,
        /// Archive mode (keep uid/gid)
        #[arg(short, long)]
        archive: bool,
        src: String,
        dst: String,
    },
    /// Block until containers stop, then print their exit codes
    Wait {
        #[arg(required = true, value_name = "CONTAINER")]
        ids: Vec<String>,
    },
    /// Rename a container
    Rename { container: String, new_name: String },
}

/// Reads the raw arguments of `run`/`create` in their form, and takes the global flags
/// given after the verb.
pub fn settle(cli: &mut crate::args::Cli) {
    if !settle_with(cli, runc_form) {
        settle_with(cli, |run, args| Some(make_form(run, args)));
    }
}

/// [`settle`] for runc's form only: `false` (and `cli` as it was) when `cli` is not a
/// `run`/`create` of runc's form. The `corral` front's.
pub fn settle_runc(cli: &mut crate::args::Cli) -> bool {
    settle_with(cli, runc_form)
}

/// Gives `run`/`create` the form `read` finds in their raw arguments, and the form's global
/// flags (given after the verb) to `cli`; `false` when `read` finds none or it is another
/// command.
fn settle_with(
    cli: &mut crate::args::Cli,
    read: impl FnOnce(bool, &[String]) -> Option<MakeForm>,
) -> bool {
    let form = match &mut cli.cmd {
        crate::args::Cmd::Run { args, form } => read(true, args).map(|f| form.insert(f)),
        crate::args::Cmd::Create { args, form } => read(false, args).map(|f| form.insert(f)),
        _ => None,
    };
    let Some(form) = form else {
        return false;
    };
    let g = form.globals().clone();
    if g.root.is_some() {
        cli.root = g.root;
    }
    if g.store.is_some() {
        cli.store = g.store;
    }
    if g.log.is_some() {
        cli.log = g.log;
    }
    if let Some(f) = g.log_format {
        cli.log_format = f;
    }
    cli.debug |= g.debug;
    true
}
