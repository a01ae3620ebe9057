//! The registry commands' arguments: `pull`, `push`, `login`, `logout` (docker's).

use clap::Args;

/// `corral pull`.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// NAME[:TAG|@DIGEST], as docker reads it (`debian` is docker.io/library/debian:latest)
    pub reference: String,
    /// The platform of a multi-platform image: OS/ARCH[/VARIANT] (default: this host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// false: reach this image's registry without TLS certificate checks, or over plain HTTP
    #[arg(long = "tls-verify", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Print no progress, only the image's name at the end
    #[arg(short, long)]
    pub quiet: bool,
}

/// `corral push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// The image in the store: NAME[:TAG] or ID
    pub image: String,
    /// Where to push it: REGISTRY/REPOSITORY[:TAG] (default: the image's NAME[:TAG])
    pub destination: Option<String>,
    /// false: reach the registry without TLS certificate checks, or over plain HTTP
    #[arg(long = "tls-verify", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Print no progress
    #[arg(short, long)]
    pub quiet: bool,
}

/// `corral login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The registry: HOST[:PORT] (default docker.io)
    pub registry: Option<String>,
    /// User name
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (visible to other users in the process list: prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// false: reach the registry without TLS certificate checks, or over plain HTTP
    #[arg(long = "tls-verify", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
}

/// `corral logout`.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// The registry: HOST[:PORT] (default docker.io)
    pub registry: Option<String>,
}
