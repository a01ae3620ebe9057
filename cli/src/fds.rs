//! The fds a container inherits with `--preserve-fds`: kept free of corral's own.

/// Placeholders in the preserved fd range (see `reserve_preserved`), set once at start.
static PRESERVE_HOLES: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();

/// The placeholder fds `reserve_preserved` put in the preserved range: the container's
/// process closes them.
/// Keeps the placeholders [`reserve_preserved`] made (once, at start).
pub fn set_holes(holes: Vec<i32>) {
    let _ = PRESERVE_HOLES.set(holes);
}

pub fn preserve_holes() -> Vec<i32> {
    PRESERVE_HOLES.get().cloned().unwrap_or_default()
}

/// Fills every closed fd of 0 .. 3+N (N = --preserve-fds) with /dev/null, so that nothing
/// corral opens later lands among the fds the container inherits; returns the placeholders
/// past stdio (a closed stdio fd stays /dev/null, as is usual).
pub fn reserve_preserved(n: u32) -> Result<Vec<i32>, String> {
    let mut lim: libc::rlimit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    let limit = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    let end = 3u64 + u64::from(n);
    if n > runtime::MAX_PRESERVE_FDS || end + 16 > limit {
        return Err(format!(
            "--preserve-fds {n}: too many (the open-file limit is {limit}, and corral needs some fds of its own)"
        ));
    }
    let mut holes = Vec::new();
    for fd in 0..end as i32 {
        // SAFETY: probing and filling fd numbers of this process; nothing else runs yet.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) >= 0 {
                continue;
            }
            let flags = if fd < 3 {
                libc::O_RDWR
            } else {
                libc::O_RDWR | libc::O_CLOEXEC
            };
            let got = libc::open(c"/dev/null".as_ptr(), flags);
            if got < 0 {
                return Err(format!(
                    "--preserve-fds: opening /dev/null: {}",
                    std::io::Error::last_os_error()
                ));
            }
            if got != fd {
                libc::dup3(got, fd, flags & libc::O_CLOEXEC);
                libc::close(got);
            }
        }
        if fd >= 3 {
            holes.push(fd);
        }
    }
    Ok(holes)
}
