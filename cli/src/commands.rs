//! The subcommands: each maps its arguments to `runtime` and `corral_image` calls and prints
//! the way runc does, because engines parse it. One module per concern; this one only routes.

use runtime::Container;

use crate::args::{Cli, Cmd};
use crate::error::{msg, R};
use crate::output::print_json;
use crate::{events, exec, features, image, lifecycle, list, network, signals, update};

pub fn dispatch(cli: &Cli) -> R {
    let root_buf = cli
        .root
        .clone()
        .unwrap_or_else(runtime::state::default_root);
    let root = root_buf.as_path();
    match &cli.cmd {
        Cmd::Create { id, c, img } => match (&img.image, id) {
            (Some(_), _) => image::create(cli, root, id.as_deref(), c, img),
            (None, Some(id)) => lifecycle::create(root, id, c).map(|_| 0),
            (None, None) => Err(msg(
                "create needs a container id: corral create [OPTIONS] <ID> (or --image IMAGE)",
            )),
        },
        Cmd::Start { id } => {
            Container::load(root, id)?.start()?;
            Ok(0)
        }
        Cmd::Run {
            id,
            c,
            img,
            detach,
            keep,
        } => match (&img.image, id) {
            (Some(_), _) => image::run(cli, root, id.as_deref(), c, img, *detach),
            (None, Some(id)) => lifecycle::run(root, id, c, *detach, *keep),
            (None, None) => Err(msg(
                "run needs a container id: corral run [OPTIONS] <ID> (or --image IMAGE)",
            )),
        },
        Cmd::State { id } => {
            let c = Container::load(root, id)?;
            print_json(&c.oci_state().to_json())?;
            Ok(0)
        }
        Cmd::Kill { id, signal, all } => {
            let sig = signals::parse_signal(signal.as_deref().unwrap_or("TERM"))?;
            let c = Container::load(root, id)?;
            if *all {
                c.signal_all(sig)?;
            } else {
                c.signal(sig)?;
            }
            Ok(0)
        }
        Cmd::Delete { id, force } => {
            // With --force, whatever is left, however little was made; no state dir at all
            // is fine (as runc), but only after looking. A container made from an image
            // leaves its store's record too.
            corral_image::remove(&image::store_dir(cli), root, id, *force)?;
            Ok(0)
        }
        Cmd::List { format, quiet } => list::list(root, format, *quiet),
        Cmd::Ps {
            id,
            format,
            ps_args,
        } => list::ps(root, id, format, ps_args),
        Cmd::Exec(a) => exec::exec(root, a),
        Cmd::Pause { id } => {
            Container::load(root, id)?.pause()?;
            Ok(0)
        }
        Cmd::Resume { id } => {
            Container::load(root, id)?.resume()?;
            Ok(0)
        }
        Cmd::Update(a) => update::update(root, a),
        Cmd::Events {
            id,
            stats,
            interval,
        } => events::events(root, id, *stats, interval),
        Cmd::Features => {
            print_json(&features::features_json()?)?;
            Ok(0)
        }
        Cmd::Spec { bundle, rootless } => features::spec(bundle, *rootless),
        Cmd::Image { cmd } => image::image(cli, cmd),
        Cmd::Commit {
            id,
            reference,
            message,
        } => image::commit(cli, id, reference, message.as_deref()),
        Cmd::Network { cmd } => network::network(cli, root, cmd),
        Cmd::Port { id } => network::port(cli, root, id),
        Cmd::Info => image::info(cli, root),
        Cmd::Pull(a) => crate::pull::pull(cli, a),
        Cmd::Push(a) => crate::pull::push(cli, a),
        Cmd::Login(a) => crate::pull::login(cli, a),
        Cmd::Logout(a) => crate::pull::logout(cli, a),
        Cmd::Checkpoint { .. } => Err(msg("checkpoint is not supported by corral")),
        Cmd::Restore { .. } => Err(msg("restore is not supported by corral")),
    }
}
