//! Resource usage statistics.

/// A snapshot of a cgroup's usage. Fields are `None` when the host does
/// not provide them (controller absent, file missing, or "max").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in use (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub memory_usage: Option<u64>,
    /// The limit in bytes; `None` when unlimited on v2.
    pub memory_limit: Option<u64>,
    /// Peak usage (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    pub memory_max_usage: Option<u64>,
    /// Memory+swap in use (v1 `memory.memsw.usage_in_bytes`) or swap in use
    /// (v2 `memory.swap.current`).
    pub swap_usage: Option<u64>,
    /// OOM kills (v1 `memory.oom_control` `oom_kill`, v2 `memory.events`).
    pub oom_kill_count: Option<u64>,
    /// `pids.current`.
    pub pids_current: Option<u64>,
    /// `pids.max`; `None` when unlimited.
    pub pids_limit: Option<u64>,
    /// Total CPU time in nanoseconds (v1 `cpuacct.usage`, v2 `cpu.stat`
    /// `usage_usec` × 1000).
    pub cpu_usage_ns: Option<u64>,
}
