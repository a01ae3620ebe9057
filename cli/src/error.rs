//! A command's failure and its exit status.

/// Exit code for failures of corral itself (runc's).
pub const EXIT_RUNTIME_ERROR: u8 = 1;

/// A failure of a command: a runtime error, or a message of the CLI's own.
pub enum CliError {
    Runtime(runtime::Error),
    Msg(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Runtime(e) => write!(f, "{e}"),
            CliError::Msg(m) => f.write_str(m),
        }
    }
}

impl CliError {
    /// corral's own failure exits 1, as runc, crun and youki do (engines read the reason from
    /// the message, not the status).
    pub fn exit_code(&self) -> i32 {
        i32::from(EXIT_RUNTIME_ERROR)
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
