//! An experiment of `scripts/bench/experiments.sh`: `corral run -b BUNDLE ID` as the runtime
//! library alone does it (create, start, wait, delete through `runtime::Container`, state in
//! `/run/corral`), in a binary that links nothing else: no command line parser, no docker,
//! image or registry code, no logging, no signal forwarding. Timed beside `corral run`, it
//! shows what the `corral` binary's own start-up and size cost.
//!
//! Usage: corral-min [--root DIR] run -b BUNDLE ID

use std::path::Path;

fn run(root: &str, bundle: &str, id: &str) -> Result<i32, runtime::Error> {
    let opts = runtime::Options {
        root: root.into(),
        ..runtime::Options::default()
    };
    let mut c = runtime::Container::create(id, Path::new(bundle), &opts)?;
    c.start()?;
    let status = c.wait()?;
    c.delete()?;
    Ok(status.code())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (root, rest) = match args.as_slice() {
        [flag, root, rest @ ..] if flag == "--root" => (root.as_str(), rest),
        rest => ("/run/corral", rest),
    };
    let code = match rest {
        [run_, b, bundle, id] if run_ == "run" && b == "-b" => match run(root, bundle, id) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("corral-min: {e}");
                1
            }
        },
        _ => {
            eprintln!("usage: corral-min [--root DIR] run -b BUNDLE ID");
            2
        }
    };
    std::process::exit(code);
}
