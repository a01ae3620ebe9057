//! `corral-full`: every command of `corral`. `corral` hands it every command line that is not
//! one of the engines' spawn verbs; it can also be run by itself.

fn main() -> std::process::ExitCode {
    corral_cli::main_full()
}
