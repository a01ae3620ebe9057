//! The command line: every command, its arguments and flags (clap). Nothing else of the
//! CLI is imported here; each command's module maps these to the libraries.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use crate::args_image::BuildArgs;
use crate::args_image::{
    CommitArgs, HistoryArgs, ImagePruneArgs, ImagesArgs, InfoArgs, LoadArgs, RmiArgs, SaveArgs,
    SystemCmd, TagArgs, VersionArgs,
};

#[derive(Parser, Debug)]
#[command(
    name = "corral",
    version,
    about = "corral: a daemonless OCI container runtime",
    after_help = "Exit status: the container's own for run and exec (128+N if signal N \
                  killed it); if corral failed, 1 for runc's verbs (as runc) and docker's \
                  codes for docker's (125; 126 the command cannot be invoked, 127 it is not \
                  found)."
)]
pub struct Cli {
    /// Directory for container state (default /run/corral; for a non-root user
    /// $XDG_RUNTIME_DIR/corral)
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Image store directory (default $CORRAL_STORE, else /var/lib/corral)
    #[arg(long, global = true)]
    pub store: Option<PathBuf>,
    /// Write logs to this file instead of stderr
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Log debug messages
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups (not supported: a clear error)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Fetch an image from a registry into the store (docker pull)
    Pull(crate::args_pull::PullArgs),
    /// Send an image of the store to a registry (docker push)
    Push(crate::args_pull::PushArgs),
    /// Store credentials for a registry in the docker config (docker login)
    Login(crate::args_pull::LoginArgs),
    /// Forget the credentials for a registry (docker logout)
    Logout(crate::args_pull::LogoutArgs),
    /// Create a container: `create [OPTIONS] IMAGE [COMMAND] [ARG...]` (docker's), or from
    /// an OCI bundle with `-b BUNDLE ID` (runc's); its process waits for `start`
    #[command(disable_help_flag = true)]
    Create {
        /// The arguments, read by the form they are in (see `corral create --help`)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
        #[arg(skip)]
        form: Option<crate::docker::args::MakeForm>,
    },
    /// Start containers: a created one's process execs (runc's `start ID`); a docker
    /// container that exited runs again
    Start {
        /// Containers (id, id prefix or name)
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        /// Attach its output and wait for it (docker's `start -a`)
        #[arg(short, long)]
        attach: bool,
    },
    /// Run a container: `run [OPTIONS] IMAGE [COMMAND] [ARG...]` (docker's), or from an
    /// OCI bundle with `-b BUNDLE ID` (runc's); in the foreground, exit with its status
    #[command(disable_help_flag = true)]
    Run {
        /// The arguments, read by the form they are in (see `corral run --help`)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
        #[arg(skip)]
        form: Option<crate::docker::args::MakeForm>,
    },
    /// Print the state of a container (OCI state JSON)
    State {
        /// The container id
        id: String,
    },
    /// Send a signal to containers' init processes: `kill ID [SIGNAL]` (runc's, default
    /// SIGTERM) or `kill [-s SIGNAL] ID...` (docker's, default SIGKILL)
    Kill {
        /// The container, and runc's signal (name or number) or more containers
        #[arg(required = true, value_name = "ID")]
        args: Vec<String>,
        /// The signal (docker's)
        #[arg(short, long = "signal")]
        signal: Option<String>,
        /// Send it to every process of the container
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container and everything it made
    Delete {
        /// The container id
        id: String,
        /// Kill it first if it is running
        #[arg(short, long)]
        force: bool,
    },
    /// List containers
    #[command(alias = "ls")]
    List {
        /// Output format: table or json
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Only print ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// List containers (docker's `ps [-a] [-q]`), or with an ID the processes of that
    /// container (runc's `ps ID [ps options]`)
    Ps {
        /// The container (runc's form)
        id: Option<String>,
        /// Options for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
        /// Format: runc's `table` or `json` (with an ID); docker's Go template, `table
        /// TEMPLATE` or `json`
        #[arg(long)]
        format: Option<String>,
        /// runc's --format with an ID, docker's --filter without
        #[arg(short = 'f', hide = true)]
        f: Vec<String>,
        /// Filter: status=, name=, id=, label=, ancestor=
        #[arg(long)]
        filter: Vec<String>,
        /// Show every container (default: running ones)
        #[arg(short, long)]
        all: bool,
        /// Only print container ids
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate ids and commands
        #[arg(long = "no-trunc")]
        no_trunc: bool,
        /// Show the N last created containers (every status)
        #[arg(short = 'n', long = "last")]
        last: Option<usize>,
        /// Show the last created container (every status)
        #[arg(short = 'l', long)]
        latest: bool,
    },
    /// Run another process in a running container; exit with its status
    Exec(ExecArgs),
    /// Freeze every process of containers
    Pause {
        /// Containers
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Thaw paused containers (docker's `unpause`)
    #[command(alias = "unpause")]
    Resume {
        /// Containers
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Change a container's limits
    Update(UpdateArgs),
    /// Print resource usage of a container
    Events {
        /// The container id
        id: String,
        /// Print stats once and exit
        #[arg(long)]
        stats: bool,
        /// Interval between stats
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Print the OCI features document of this build and host
    Features,
    /// Manage images: import, export, ls, inspect, rm, prune, tag, history, build
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Make an image of a container made from an image: its writable layer on top
    Commit(CommitArgs),
    /// List a container's published ports (docker's `port`): CTRPORT/PROTO -> HOSTIP:HOSTPORT
    Port {
        /// The container
        id: String,
        /// Only this port: PORT[/PROTO]
        port: Option<String>,
    },
    #[command(flatten)]
    Docker(crate::docker::args::DockerCmd),
    /// Manage networks: create, ls, inspect, rm, connect, disconnect
    Network {
        #[command(subcommand)]
        cmd: NetworkCmd,
    },
    /// Manage volumes (create, ls, inspect, rm, prune)
    Volume {
        #[command(subcommand)]
        cmd: crate::volume::VolumeCmd,
    },
    /// Show what `docker info` shows: containers, images, storage driver, cgroups,
    /// security options, the host (changes nothing on disk)
    Info(InfoArgs),
    /// Show corral's version, its build and the OCI runtime spec it implements
    Version(VersionArgs),
    /// Build an image from a Dockerfile (as `docker build`)
    Build(BuildArgs),
    /// List images (as `docker images`)
    Images(ImagesArgs),
    /// Remove images (as `docker rmi`)
    Rmi(RmiArgs),
    /// Give an image another name (as `docker tag`)
    Tag(TagArgs),
    /// Show an image's history (as `docker history`)
    History(HistoryArgs),
    /// Write images to a tar archive that `docker load` and `corral load` read
    Save(SaveArgs),
    /// Load images from a tar archive (`docker save`, `corral save`, an OCI layout)
    Load(LoadArgs),
    /// Disk usage and clean-up: df, prune, info
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Write a default config.json (as `runc spec` does)
    Spec {
        /// Directory to write config.json into
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A spec for a container run by a non-root user
        #[arg(long)]
        rootless: bool,
    },
    /// Not supported: corral does not checkpoint containers
    Checkpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Not supported: corral does not restore containers
    Restore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The monitor of an engine container (spawned by `start`; not for users)
    #[command(hide = true, name = "_monitor")]
    Monitor {
        /// The engine container's id
        id: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Path to the bundle (holding config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Root the container on an overlay of these read-only layer dirs (bottom first)
    /// instead of root.path; its writes go to a layer in the state dir
    #[arg(long = "layer", value_name = "DIR")]
    pub layers: Vec<PathBuf>,
    /// Do not use pivot_root (for roots on initramfs)
    #[arg(long)]
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of giving the container its own
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3 .. 3+N-1) to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Write the container's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's pty master to (process.terminal)
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Print how long each phase of the spawn took, on stderr
    #[arg(long)]
    pub timings: bool,
}

/// `corral exec` flags (runc's).
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// The container id
    pub id: String,
    /// The command and its arguments (unless --process is given)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// An OCI process.json to run instead of a command
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a terminal (process.terminal)
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket to send the terminal's pty master to
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Do not wait for the process
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Add an environment variable (KEY=VALUE)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory in the container
    #[arg(long, short = 'w', visible_alias = "workdir")]
    pub cwd: Option<String>,
    /// Keep stdin open (docker's; corral's exec always passes its stdin on)
    #[arg(short, long)]
    pub interactive: bool,
    /// User as uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_NAME) to the process's sets
    #[arg(short, long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass N extra fds (3 .. 3+N-1) to the process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// SELinux label of the process (needs SELinux on the host)
    #[arg(long)]
    pub process_label: Option<String>,
    /// AppArmor profile of the process (needs AppArmor on the host)
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Exec into a paused container too (the process waits, frozen, until it resumes)
    #[arg(long)]
    pub ignore_paused: bool,
    /// Run the process in an existing sub-cgroup of the container's:
    /// [CONTROLLER[,CONTROLLER...]:]PATH (repeatable; without controllers, every hierarchy)
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
}

/// `corral update` flags (runc's).
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// The container id
    pub id: String,
    /// Resources as OCI linux.resources JSON ("-" for stdin)
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit: bytes, or with docker's units (512m, 1g)
    #[arg(long, short = 'm', allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit: bytes or with units (-1 for unlimited)
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory reservation: bytes or with units
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// CPU shares
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPUs the container may use (cpuset)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (cpuset)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
}

impl CreateArgs {
    pub fn options(&self, root: &std::path::Path) -> runtime::Options {
        runtime::Options {
            root: root.to_path_buf(),
            layers: self.layers.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            preserve_holes: crate::fds::preserve_holes(),
            console_socket: self.console_socket.clone(),
            no_new_keyring: self.no_new_keyring,
            ..runtime::Options::default()
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum ImageCmd {
    /// Import a root filesystem (tarball or dir), a `docker save` tarball or an OCI image
    /// layout (dir or tar) as an image
    Import {
        /// The tarball or directory
        src: PathBuf,
        /// NAME[:TAG] (default: the names the archive carries)
        reference: Option<String>,
    },
    /// Write an image as an OCI image layout: a directory, or a tar when DEST ends in .tar
    Export {
        /// NAME[:TAG] or image ID
        image: String,
        /// Destination dir or .tar
        dest: PathBuf,
    },
    /// List images
    #[command(alias = "list")]
    Ls {
        /// Only print image IDs
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print an image's manifest and config as JSON
    Inspect {
        /// NAME[:TAG] or image ID
        image: String,
    },
    /// Remove an image (a tag; the image and its unused layers with its last tag)
    #[command(alias = "remove")]
    Rm {
        /// NAME[:TAG] or image ID
        images: Vec<String>,
    },
    /// Remove the untagged images no container uses (-a: every such image), then every
    /// layer, blob, cache entry and container record nothing uses
    Prune(ImagePruneArgs),
    /// Write images to a tar archive that `docker load` and `corral load` read
    Save(SaveArgs),
    /// Load images from a tar archive
    Load(LoadArgs),
    /// Give an image another name
    Tag {
        /// NAME[:TAG] or image ID
        source: String,
        /// The new NAME[:TAG]
        target: String,
    },
    /// Show an image's layers and the steps that made them
    History {
        /// NAME[:TAG] or image ID
        image: String,
    },
    /// Build an image from a Dockerfile
    Build(BuildArgs),
}

/// `corral network ...` (docker's).
#[derive(clap::Subcommand, Debug)]
pub enum NetworkCmd {
    /// Make a network: a bridge of its own with a subnet (the next free 10.90.N.0/24 unless
    /// --subnet), NAT to the outside, published ports and rate limits
    Create {
        /// Its IPv4 subnet, CIDR (e.g. 10.91.0.0/24)
        #[arg(long)]
        subnet: Option<String>,
        /// Its gateway (default: the subnet's first address)
        #[arg(long)]
        gateway: Option<std::net::IpAddr>,
        /// The network's name
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only print names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print networks as JSON: their config, subnets and the containers attached
    Inspect {
        /// Network names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks (refused while a container is attached)
    #[command(alias = "remove")]
    Rm {
        /// Network names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Attach a running container to a network (its next interface: eth1...)
    Connect {
        /// The network
        network: String,
        /// The container id
        id: String,
    },
    /// Detach a container from a network
    Disconnect {
        /// The network
        network: String,
        /// The container id
        id: String,
    },
}

/// `corral run --image` flags (docker's).
#[derive(clap::Args, Debug, Clone)]
pub struct RunImageArgs {
    /// Run a container from this image (NAME[:TAG] or ID) instead of a bundle
    #[arg(long)]
    pub image: Option<String>,
    /// The container's name (default: a generated one; with --image, its id, default a
    /// random one)
    #[arg(long)]
    pub name: Option<String>,
    /// Remove the container when it exits (else it is kept, stopped, until `delete`)
    #[arg(long)]
    pub rm: bool,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory in the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User (name or uid, optionally :group)
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Limits, mounts and volumes
    #[command(flatten)]
    pub res: crate::args_limits::ResourceArgs,
    /// Hostname
    #[arg(long)]
    pub hostname: Option<String>,
    /// Allocate a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep stdin open (corral passes its stdin to the container in the foreground)
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// The network: `bridge` (the default network), a network's NAME (repeat to attach
    /// several: eth0, eth1...), `none` (loopback only), `host` (the host's network) or
    /// `container:ID` (that running container's network namespace)
    #[arg(long = "network", alias = "net", value_name = "NETWORK")]
    pub network: Vec<String>,
    /// Use the host's network (as --network host)
    #[arg(long = "net-host")]
    pub net_host: bool,
    /// Publish a container port on the host: [IP:]HOSTPORT:CTRPORT[/tcp|udp], or
    /// [IP::]CTRPORT for a free host port (repeatable)
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a free host port
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Limit the rate of what reaches the container (e.g. 10mbit, 500kbit, 2mbps)
    #[arg(long = "ingress-rate", value_name = "RATE")]
    pub ingress_rate: Option<String>,
    /// Limit the rate of what the container sends (e.g. 10mbit, 500kbit, 2mbps)
    #[arg(long = "egress-rate", value_name = "RATE")]
    pub egress_rate: Option<String>,
    /// Give the container every capability, every host device and no seccomp filter, masked
    /// or read-only paths (as docker's --privileged)
    #[arg(long)]
    pub privileged: bool,
    /// Add a capability to docker's default set (NAME, CAP_NAME or ALL)
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop a capability from docker's default set (NAME, CAP_NAME or ALL)
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// seccomp=unconfined, seccomp=PROFILE.json (a linux.seccomp object in OCI form) or
    /// no-new-privileges (default: docker's seccomp profile, noNewPrivileges false)
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Give the container a host device: HOST[:CONTAINER][:PERMS] (PERMS of r, w, m)
    #[arg(long = "device")]
    pub device: Vec<String>,
    /// The command and its arguments (the positionals of the form in use)
    #[arg(skip)]
    pub command: Vec<String>,
}
