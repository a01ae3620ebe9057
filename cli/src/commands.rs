//! The subcommands: each maps its arguments to `runtime` and `corral_image` calls and prints
//! the way runc does, because engines parse it. One module per concern; this one only routes.

use runtime::Container;

use crate::args::{Cli, Cmd};
use crate::docker::args::MakeForm;
use crate::error::{msg, R};
use crate::output::print_json;
use crate::{
    docker, docker_image, events, features, image, info, lifecycle, list, network, update,
};

/// Whether the command is one of docker's form (its failures exit 125, 126, 127): docker's
/// `run`/`create`, docker's own verbs and `ps` without an id.
pub fn docker_form(cli: &Cli) -> bool {
    match &cli.cmd {
        Cmd::Run { form, .. } | Cmd::Create { form, .. } => {
            form.as_ref().is_some_and(MakeForm::is_docker)
        }
        Cmd::Docker(_) => true,
        Cmd::Ps { id, .. } => id.is_none(),
        _ => false,
    }
}

pub fn dispatch(cli: &Cli) -> R {
    let root_buf = cli
        .root
        .clone()
        .unwrap_or_else(runtime::state::default_root);
    let root = root_buf.as_path();
    match &cli.cmd {
        Cmd::Create { form, .. } | Cmd::Run { form, .. } => match form {
            Some(MakeForm::RuncCreate(r)) => lifecycle::create(root, &r.id, &r.c).map(|_| 0),
            Some(MakeForm::RuncRun(r)) => lifecycle::run(root, &r.id, &r.c, r.detach, r.keep),
            Some(MakeForm::LegacyRun(l)) if matches!(cli.cmd, Cmd::Create { .. }) => {
                image::create(cli, root, None, &l.c, &l.img)
            }
            Some(MakeForm::LegacyRun(l)) => image::run(cli, root, None, &l.c, &l.img, l.detach),
            Some(MakeForm::Docker(d)) => {
                docker::run::make(cli, root, d, matches!(cli.cmd, Cmd::Run { .. }))
            }
            None => Err(msg("run/create: arguments not read")),
        },
        Cmd::Start { ids, attach } => docker::start(cli, root, ids, *attach),
        Cmd::State { id } => lifecycle::state(root, &docker::runtime_id(cli, root, id)),
        Cmd::Kill { args, signal, all } => docker::kill(cli, root, args, signal.as_deref(), *all),
        Cmd::Delete { id, force } => {
            // With --force, whatever is left, however little was made; no state dir at all
            // is fine (as runc), but only after looking. A container made from an image
            // leaves its store's record too.
            match docker::resolve(cli, root, id) {
                // An engine container's delete is its `rm` (`--force`: `rm -f`).
                Ok(docker::Target::Engine(eid)) => {
                    docker::engine(cli, root).remove(&eid, *force, false)?;
                }
                _ => corral_image::remove(&image::store_dir(cli), root, id, *force)?,
            }
            Ok(0)
        }
        Cmd::List { format, quiet } => list::list(root, format, *quiet),
        Cmd::Ps {
            id: Some(id),
            format,
            f,
            ps_args,
            ..
        } => {
            let format = format.as_deref().or(f.last().map(String::as_str));
            let id = docker::runtime_id(cli, root, id);
            list::ps(root, &id, format.unwrap_or("table"), ps_args)
        }
        Cmd::Ps {
            id: None,
            format,
            f,
            filter,
            all,
            quiet,
            no_trunc,
            last,
            latest,
            ..
        } => {
            let mut filters = filter.clone();
            filters.extend(f.iter().cloned());
            let last = if *latest { Some(1) } else { *last };
            docker::ps::ps(
                cli,
                root,
                &docker::ps::PsOpts {
                    all: *all,
                    quiet: *quiet,
                    no_trunc: *no_trunc,
                    last,
                    filters,
                    format: format.clone(),
                },
            )
        }
        Cmd::Exec(a) => docker::exec(cli, root, a),
        Cmd::Pause { ids } => docker::each(cli, root, ids, |id| {
            Container::load(root, id)?.pause()?;
            Ok(())
        }),
        Cmd::Resume { ids } => docker::each(cli, root, ids, |id| {
            Container::load(root, id)?.resume()?;
            Ok(())
        }),
        Cmd::Update(a) => update::update(root, &docker::runtime_id(cli, root, &a.id), a),
        Cmd::Events {
            id,
            stats,
            interval,
        } => events::events(root, &docker::runtime_id(cli, root, id), *stats, interval),
        Cmd::Features => {
            print_json(&features::features_json()?)?;
            Ok(0)
        }
        Cmd::Spec { bundle, rootless } => features::spec(bundle, *rootless),
        Cmd::Image { cmd } => image::image(cli, cmd),
        Cmd::Commit(a) => docker_image::commit(cli, a),
        Cmd::Network { cmd } => network::network(cli, root, cmd),
        Cmd::Volume { cmd } => crate::volume::volume(cli, cmd),
        Cmd::Info(a) => info::info(cli, root, a),
        Cmd::Version(a) => info::version(a),
        Cmd::Build(a) => docker_image::build(cli, a),
        Cmd::Images(a) => docker_image::images(cli, a),
        Cmd::Rmi(a) => docker_image::rmi(cli, a),
        Cmd::Tag(a) => docker_image::tag(cli, a),
        Cmd::History(a) => docker_image::history(cli, a),
        Cmd::Save(a) => docker_image::save(cli, a),
        Cmd::Load(a) => docker_image::load(cli, a),
        Cmd::System { cmd } => docker_image::system(cli, root, cmd),
        Cmd::Port { id, port } => docker::port(cli, root, id, port.as_deref()),
        Cmd::Docker(d) => docker::dispatch(cli, root, d),
        Cmd::Pull(a) => crate::pull::pull(cli, a),
        Cmd::Push(a) => crate::pull::push(cli, a),
        Cmd::Login(a) => crate::pull::login(cli, a),
        Cmd::Logout(a) => crate::pull::logout(cli, a),
        Cmd::Checkpoint { .. } => Err(msg("checkpoint is not supported by corral")),
        Cmd::Restore { .. } => Err(msg("restore is not supported by corral")),
        Cmd::Monitor { id } => Ok(crate::monitor::monitor(cli, root, id)),
    }
}
