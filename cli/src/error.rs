//! A command's failure and its exit status.

/// Exit code for failures of corral itself (runc's).
pub const EXIT_RUNTIME_ERROR: u8 = 1;

/// Exit code for failures of corral itself in docker's verbs (docker's).
pub const EXIT_DOCKER_ERROR: u8 = 125;
/// docker's: the command cannot be invoked (a permission, not an executable, a directory).
pub const EXIT_CANNOT_INVOKE: u8 = 126;
/// docker's: the command is not found.
pub const EXIT_NOT_FOUND: u8 = 127;

/// A failure of a command: a runtime error, or a message of the CLI's own; `Docker` marks
/// one of a docker verb's (whatever the command).
#[derive(Debug)]
pub enum CliError {
    Runtime(runtime::Error),
    Msg(String),
    Docker(Box<CliError>),
    Engine(corral_engine::Error),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Runtime(e) => write!(f, "{e}"),
            CliError::Msg(m) => f.write_str(m),
            CliError::Docker(e) => e.fmt(f),
            CliError::Engine(e) => write!(f, "{e}"),
        }
    }
}

impl CliError {
    /// corral's own failure exits 1, as runc, crun and youki do (engines read the reason from
    /// the message, not the status).
    pub fn exit_code(&self) -> i32 {
        i32::from(EXIT_RUNTIME_ERROR)
    }

    /// Whether it is a docker verb's failure.
    pub fn docker(&self) -> bool {
        matches!(self, CliError::Docker(_) | CliError::Engine(_))
    }

    /// docker's status for it: 127 when the program was not found, 126 when it could not be
    /// invoked (a permission, not an executable, a directory), else 125.
    pub fn docker_exit_code(&self) -> i32 {
        match self {
            CliError::Docker(e) => e.docker_exit_code(),
            CliError::Engine(e) => e.exit_code(),
            CliError::Runtime(e) if e.step() == "exec" => match e.errno() {
                libc::ENOENT | libc::ENOTDIR => i32::from(EXIT_NOT_FOUND),
                libc::EACCES | libc::ENOEXEC | libc::EISDIR | libc::EPERM => {
                    i32::from(EXIT_CANNOT_INVOKE)
                }
                _ => i32::from(EXIT_DOCKER_ERROR),
            },
            _ => i32::from(EXIT_DOCKER_ERROR),
        }
    }
}

impl From<corral_image::Error> for CliError {
    fn from(e: corral_image::Error) -> Self {
        match e {
            corral_image::Error::Runtime(e) => CliError::Runtime(e),
            corral_image::Error::Image(e) => CliError::Msg(e.to_string()),
            corral_image::Error::Net(e) => CliError::Msg(e.to_string()),
        }
    }
}

impl From<corral_engine::Error> for CliError {
    fn from(e: corral_engine::Error) -> Self {
        CliError::Engine(e)
    }
}

impl From<corral_image::ImageError> for CliError {
    fn from(e: corral_image::ImageError) -> Self {
        CliError::Msg(e.to_string())
    }
}

impl From<runtime::Error> for CliError {
    fn from(e: runtime::Error) -> Self {
        CliError::Runtime(e)
    }
}

impl From<runtime::net::Error> for CliError {
    fn from(e: runtime::net::Error) -> Self {
        CliError::Msg(e.to_string())
    }
}

pub fn msg(s: impl Into<String>) -> CliError {
    CliError::Msg(s.into())
}

pub type R<T = i32> = Result<T, CliError>;
