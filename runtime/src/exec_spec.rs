//! A process to run in a running container, described by a face: [`ExecSpec`], turned into
//! the container's `process` with its own fields on top ([`crate::Container::exec_with`]).

use crate::{Error, Result};

/// A process to run in a running container ([`crate::Container::exec_with`]): the
/// container's own process settings (user, capabilities, `noNewPrivileges`, rlimits, env) with
/// these arguments, and what is set here on top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The program and its arguments (not empty).
    pub args: Vec<String>,
    /// Variables set on top of the container's environment.
    pub env: Vec<(String, String)>,
    /// The working directory (default: the container's).
    pub cwd: Option<String>,
    /// User and group (default: the container's).
    pub user: Option<(u32, u32)>,
    /// A terminal of its own (the pty master is [`crate::ExecProcess::take_console`]).
    pub terminal: bool,
}

impl ExecSpec {
    /// The process: `base` (the container's `process`) with this spec's fields.
    pub fn process(&self, base: &oci_spec::runtime::Process) -> Result<oci_spec::runtime::Process> {
        if self.args.is_empty() {
            return Err(Error::Config {
                field: "process.args".into(),
                reason: "empty: give the program to run".into(),
            });
        }
        let mut p = base.clone();
        p.set_args(Some(self.args.clone()));
        p.set_terminal(Some(self.terminal));
        let mut env = p.env().clone().unwrap_or_default();
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(Error::Config {
                    field: "process.env".into(),
                    reason: format!("{k:?} is not a variable name"),
                });
            }
            env.retain(|e| e.split('=').next() != Some(k.as_str()));
            env.push(format!("{k}={v}"));
        }
        p.set_env(Some(env));
        if let Some(d) = &self.cwd {
            p.set_cwd(d.into());
        }
        if let Some((uid, gid)) = self.user {
            let mut u = p.user().clone();
            u.set_uid(uid);
            u.set_gid(gid);
            p.set_user(u);
        }
        Ok(p)
    }
}
