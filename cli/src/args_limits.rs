//! The resource limit and volume flags of `run`/`create` of an image (docker's names and
//! wording), flattened into [`crate::args::RunImageArgs`]. Values that may be negative or
//! look like flags (`--memory -5m`) are taken as values and refused by
//! [`crate::limits::apply`] with docker's wording, never read as another flag.

/// Limits, mounts and volumes of a container of an image.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ResourceArgs {
    /// Number of CPUs (e.g. 1.5)
    #[arg(long, allow_hyphen_values = true, value_name = "DECIMAL")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(
        short = 'c',
        long = "cpu-shares",
        allow_hyphen_values = true,
        value_name = "INT"
    )]
    pub cpu_shares: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", allow_hyphen_values = true, value_name = "INT")]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true, value_name = "INT")]
    pub cpu_quota: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(
        long = "cpuset-cpus",
        allow_hyphen_values = true,
        value_name = "STRING"
    )]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(
        long = "cpuset-mems",
        allow_hyphen_values = true,
        value_name = "STRING"
    )]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, allow_hyphen_values = true, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true, value_name = "BYTES")]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(
        long = "memory-reservation",
        allow_hyphen_values = true,
        value_name = "BYTES"
    )]
    pub memory_reservation: Option<String>,
    /// Tune container memory swappiness (0 to 100) (default -1)
    #[arg(
        long = "memory-swappiness",
        allow_hyphen_values = true,
        value_name = "INT"
    )]
    pub memory_swappiness: Option<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true, value_name = "INT")]
    pub oom_score_adj: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true, value_name = "INT")]
    pub pids_limit: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(
        long = "blkio-weight",
        allow_hyphen_values = true,
        value_name = "UINT16"
    )]
    pub blkio_weight: Option<String>,
    /// Block IO weight (relative device weight), DEVICE:WEIGHT
    #[arg(long = "blkio-weight-device", value_name = "LIST")]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device, DEVICE:RATE[kb|mb|gb]
    #[arg(long = "device-read-bps", value_name = "LIST")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps", value_name = "LIST")]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device, DEVICE:RATE
    #[arg(long = "device-read-iops", value_name = "LIST")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops", value_name = "LIST")]
    pub device_write_iops: Vec<String>,
    /// Ulimit options, NAME=SOFT[:HARD] (default nofile=1048576:1048576, capped at what
    /// corral itself may set)
    #[arg(long = "ulimit", value_name = "ULIMIT")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm (default 64m)
    #[arg(long = "shm-size", allow_hyphen_values = true, value_name = "BYTES")]
    pub shm_size: Option<String>,
    /// Mount a tmpfs directory, PATH[:OPTIONS]
    #[arg(long = "tmpfs", value_name = "PATH")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Attach a filesystem mount to the container:
    /// type=bind|volume|tmpfs,source=SRC,target=DST[,readonly]
    #[arg(long = "mount", value_name = "MOUNT")]
    pub mount: Vec<String>,
    /// Bind mount a volume: HOST-PATH:DST[:ro], NAME:DST[:ro] (a named volume) or DST (an
    /// anonymous volume)
    #[arg(short = 'v', long = "volume", value_name = "LIST")]
    pub volume: Vec<String>,
}
