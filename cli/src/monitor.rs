//! The hidden `_monitor` verb: the monitor of an engine container, spawned by its `start`
//! (see `corral_engine`). Not for users: it expects the readiness fd `start` gives it.

use std::path::Path;

use crate::args::Cli;

/// Supervises engine container `id` until it is removed or will not be restarted; the exit
/// code is the monitor's own (0, or 125 when it could not supervise).
pub fn monitor(cli: &Cli, root: &Path, id: &str) -> i32 {
    corral_engine::monitor_main(&crate::image::store_dir(cli), root, id)
}
