//! What the parent and the child share: the messages of the sync socket (the table in
//! [`crate::spawn`]), the start gate's report, and the arguments the parent computes for the
//! child before the clone. Both sides import this module; neither imports the other's.

use libc::c_int;

/// The tags of [`Msg`].
pub(crate) mod msg {
    pub const GO: u32 = 1;
    pub const MAPS: u32 = 2;
    pub const MAPS_OK: u32 = 3;
    pub const PID: u32 = 4;
    pub const READY: u32 = 5;
    pub const START: u32 = 6;
    pub const ERR: u32 = 7;
    pub const TTY: u32 = 8;
    pub const HOOKS: u32 = 9;
    pub const HOOKS_DONE: u32 = 10;
    pub const SECCOMP: u32 = 11;
    pub const STATE: u32 = 12;
    pub const RELEASE: u32 = 13;
    pub const RELEASED: u32 = 14;
}

/// What the process reports on its FIFO start gate once the gate opened (see
/// [`gate_result`]): `GATE_OK` alone, or `GATE_HOOK` and a [`HookFailure`].
pub(crate) const GATE_OK: u8 = b'0';
pub(crate) const GATE_HOOK: u8 = b'H';
/// The most output of a failed startContainer hook that is kept.
pub(crate) const HOOK_OUTPUT: usize = 2048;
/// Room for the gate's report: tag, index, kind, pad, value (i32), length (u16), output.
pub const GATE_REPORT_MAX: usize = 10 + HOOK_OUTPUT;

/// One fixed-size message on the sync socket.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct Msg {
    pub tag: u32,
    pub a: i32,
    pub b: i32,
    pub c: u32,
}

/// What the child needs besides the plan, computed by the parent before the clone.
pub(crate) struct ChildArgs {
    /// The first fd past stdio and the preserved ones (`3 + preserve_fds`).
    pub first: c_int,
    /// Fds at or past `first` that the child keeps until it no longer needs them (its sync
    /// socket, the start gate's directory, namespaces to join, detached mounts, stdio
    /// sources), sorted. Every other one is closed before the child does anything else.
    pub keep: Vec<c_int>,
    /// The parent has no privilege over a non-dumpable child: the child stays dumpable until
    /// its id maps are written (only while no process of the container can see it).
    pub dumpable_for_maps: bool,
    /// The exec shim's sealed memfd (`crate::shim`), or -1: the program is then executed
    /// directly.
    pub shim: c_int,
    /// The shim's environment for the process's program: its candidates, `""`, its
    /// environment, NULL (empty for a late program, whose memfd is laid out that way).
    pub shim_envp: Vec<*const libc::c_char>,
    /// The same for each startContainer hook (its path as the one candidate).
    pub hook_envps: Vec<Vec<*const libc::c_char>>,
    /// The seccomp filter to install (the plan's, behind the shim's prologue).
    pub filter: Vec<libc::sock_filter>,
    /// The root's items that go into a tmpfs the child has just mounted.
    pub fresh: crate::plan::Fresh,
}
