//! `corral`: the front (see the library's `front` module). The engines' spawn verbs are done
//! here; every other command line is handed to `corral-full`, installed beside it.

fn main() -> std::process::ExitCode {
    corral_cli::main_front()
}
