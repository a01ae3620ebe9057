/* standin.c - a "perfect runtime" stand-in: the physical floor for spawning one container.
 *
 * Usage: standin [--limits] ROOTFS [CMD ARGS...]      (default CMD: /bin/true)
 * Build: gcc -O2 -static -Wall -o standin standin.c
 *
 * Per invocation it does the kernel work an OCI runtime (runc/crun) does for a busybox bundle made
 * with `runc spec` (terminal=false, args=["/bin/true"]) on a cgroup v1 host, hard-coded, with no
 * config parsing, no state directory, no IPC between parent and child, and no symlink-safe path
 * resolution (openat2/RESOLVE_IN_ROOT): a real runtime pays for those, the floor does not.
 *
 * Parent:
 *  - reads /proc/self/cgroup once; for every mounted v1 hierarchy in it (here cpu, cpuacct, cpuset,
 *    memory, devices, freezer, blkio, pids, name=systemd; net_cls/net_prio/perf_event/hugetlb/...
 *    are picked up the same way when mounted) mkdirs <mnt>/<own cgroup>/standin-<pid>
 *    (runc's placement for an empty cgroupsPath: relative to the caller's cgroup);
 *  - cpuset: copies cpuset.cpus and cpuset.mems from the parent cgroup;
 *  - devices: "a" to devices.deny (runc spec's deny-all), then the runc/crun default allow list
 *    (c *:* m, b *:* m, 1:3 1:5 1:7 1:8 1:9 5:0 5:1 5:2 136:* 10:200 rwm), one write per rule
 *    on one open fd;
 *  - with --limits, the limits of the benchmark's `-cg` bundle: memory.limit_in_bytes 64 MiB,
 *    pids.max 64, cpu.cfs_period_us 100000 and cpu.cfs_quota_us 50000 (one write each);
 *  - clone3(CLONE_NEWNS|NEWPID|NEWNET|NEWIPC|NEWUTS) fork-style; waits; rmdirs the cgroups;
 *    exits with the container's status.
 * Child:
 *  - joins every cgroup by writing "0" to its tasks file (no global threadgroup rwsem: the
 *    cold-start RCU grace period of cgroup.procs is not paid);
 *  - (STANDIN_CGROUPNS=1 only) unshare(CLONE_NEWCGROUP) after joining; off by default because
 *    neither crun 1.8.1 nor runc creates a cgroup namespace for a runc-spec bundle on v1;
 *  - / rslave; bind the rootfs onto itself (rbind) and chdir into it;
 *  - proc; tmpfs /dev (nosuid,strictatime,mode=755,size=65536k); devpts /dev/pts
 *    (newinstance,ptmxmode=0666,mode=0620,gid=5); tmpfs /dev/shm (mode=1777,size=65536k);
 *    mqueue /dev/mqueue; sysfs /sys read-only;
 *  - /sys/fs/cgroup as runc/crun do on v1 without cgroupns: tmpfs, then per hierarchy mkdir +
 *    bind of the container's own cgroup dir + read-only remount; then the tmpfs read-only;
 *  - mknod null zero full random urandom tty (0666, umask 0 around it) as runc/crun do as real
 *    root; symlinks fd stdin stdout stderr ptmx (no /dev/core: /proc/kcore is absent here);
 *  - lo up in the new netns (socket + SIOCSIFFLAGS), as runc/crun/corral do;
 *  - pivot_root(".", "."), umount2(".", MNT_DETACH), chdir("/"); / remounted read-only
 *    (runc spec: root.readonly=true);
 *  - masked paths (runc's algorithm: bind /dev/null; ENOTDIR -> read-only tmpfs; ENOENT -> skip)
 *    and readonly paths (rbind onto itself + read-only remount) of runc spec;
 *  - sethostname "runc"; RLIMIT_NOFILE 1024; setsid;
 *  - capabilities: PR_CAPBSET_DROP of every cap but AUDIT_WRITE, KILL, NET_BIND_SERVICE;
 *    setgroups(0), setresgid(0), setresuid(0); capset (effective=permitted=those 3);
 *    PR_CAP_AMBIENT_CLEAR_ALL (raising them fails with EPERM in crun too: not inheritable);
 *  - no_new_privs; umask 022; execve with PATH, TERM, HOME.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#define MAXH 16
#define PATHMAX 512

static char cg_dir[MAXH][PATHMAX];   /* host path of the container's cgroup in each hierarchy */
static char cg_tasks[MAXH][PATHMAX + 8]; /* ... and its tasks file */
static char cg_name[MAXH][64];       /* mount dir name under /sys/fs/cgroup (cpu, name=systemd -> systemd) */
static int ncg;

static void die(const char *what)
{
	char buf[256];
	int n = snprintf(buf, sizeof buf, "standin: %s: %s\n", what, strerror(errno));
	if (write(2, buf, n) < 0) {}
	_exit(127);
}

static void put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, s, strlen(s)) < 0) die(path);
	close(fd);
}

static void mnt(const char *src, const char *dst, const char *type, unsigned long fl, const char *data)
{
	if (mount(src, dst, type, fl, data) < 0) die(dst);
}

/* runc's maskPath: a file gets /dev/null bound over it, a directory a read-only empty tmpfs. */
static void mask(const char *p)
{
	if (mount("/dev/null", p, NULL, MS_BIND, NULL) == 0 || errno == ENOENT) return;
	if (errno != ENOTDIR) die(p);
	mnt("tmpfs", p, "tmpfs", MS_RDONLY, "size=0k");
}

/* runc's readonlyPath: bind onto itself, then remount read-only. */
static void rdonly(const char *p)
{
	if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
		if (errno == ENOENT) return;
		die(p);
	}
	mnt(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
}

static int child(const char *rootfs, char **argv)
{
	char p[PATHMAX];
	int i;

	/* join the cgroups: "0" = this task, written to tasks (single-thread attach, no global lock) */
	for (i = 0; i < ncg; i++) {
		int fd = openat(AT_FDCWD, cg_tasks[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1) die(cg_tasks[i]);
		/* fd closes at execve */
	}
	if (getenv("STANDIN_CGROUPNS") && unshare(CLONE_NEWCGROUP) < 0) die("unshare(CLONE_NEWCGROUP)");

	umask(0);
	mnt(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL);
	mnt(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL);
	if (chdir(rootfs) < 0) die("chdir rootfs");   /* now on the bind mount: relative paths below */

	mnt("proc", "proc", "proc", 0, NULL);
	mnt("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
	if (mkdir("dev/pts", 0755) < 0) die("mkdir dev/pts");
	mnt("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
	if (mkdir("dev/shm", 01777) < 0) die("mkdir dev/shm");
	mnt("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=1777,size=65536k");
	if (mkdir("dev/mqueue", 0755) < 0) die("mkdir dev/mqueue");
	mnt("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
	mnt("sysfs", "sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, NULL);

	/* /sys/fs/cgroup (runc spec's "cgroup" mount, v1, no cgroupns): tmpfs + one ro bind per hierarchy */
	const unsigned long cgfl = MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME;
	mnt("cgroup", "sys/fs/cgroup", "tmpfs", cgfl, "mode=755");
	for (i = 0; i < ncg; i++) {
		snprintf(p, sizeof p, "sys/fs/cgroup/%s", cg_name[i]);
		if (mkdir(p, 0755) < 0) die(p);
		mnt(cg_dir[i], p, NULL, MS_BIND, NULL);
		mnt(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | cgfl, NULL);
	}
	mnt(NULL, "sys/fs/cgroup", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | cgfl, NULL);

	/* default devices, made as root outside a user namespace does it */
	static const struct { const char *n; unsigned ma, mi; } dev[] = {
		{"dev/null", 1, 3}, {"dev/zero", 1, 5}, {"dev/full", 1, 7},
		{"dev/random", 1, 8}, {"dev/urandom", 1, 9}, {"dev/tty", 5, 0},
	};
	for (i = 0; i < 6; i++)
		if (mknod(dev[i].n, S_IFCHR | 0666, makedev(dev[i].ma, dev[i].mi)) < 0) die(dev[i].n);
	static const char *const lnk[][2] = {
		{"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"}, {"/proc/self/fd/1", "dev/stdout"},
		{"/proc/self/fd/2", "dev/stderr"}, {"pts/ptmx", "dev/ptmx"},
	};
	for (i = 0; i < 5; i++)
		if (symlink(lnk[i][0], lnk[i][1]) < 0) die(lnk[i][1]);

	/* loopback up in the new network namespace */
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	ifr.ifr_flags = IFF_UP | IFF_RUNNING;
	if (s < 0 || ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("lo up");
	close(s);

	/* pivot_root into the rootfs, drop the old root */
	if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root");
	if (umount2(".", MNT_DETACH) < 0) die("umount old root");
	if (chdir("/") < 0) die("chdir /");
	mnt(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);   /* root.readonly */

	static const char *const masked[] = {
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
	};
	for (i = 0; i < 10; i++) mask(masked[i]);
	static const char *const ro[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" };
	for (i = 0; i < 5; i++) rdonly(ro[i]);

	if (sethostname("runc", 4) < 0) die("sethostname");
	struct rlimit rl = { 1024, 1024 };
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");
	if (setsid() < 0) die("setsid");

	/* capabilities: runc spec's AUDIT_WRITE, KILL, NET_BIND_SERVICE; nothing else in the bounding set */
	const uint32_t keep = (1u << CAP_AUDIT_WRITE) | (1u << CAP_KILL) | (1u << CAP_NET_BIND_SERVICE);
	for (int c = 0; ; c++) {
		if (c < 32 && (keep & (1u << c))) continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL) break;        /* past cap_last_cap */
			die("PR_CAPBSET_DROP");
		}
	}
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("setresuid");
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { keep, keep, 0 }, { 0, 0, 0 } };
	if (syscall(SYS_capset, &hdr, data) < 0) die("capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) die("ambient");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs");
	umask(022);

	static char *const env[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/", NULL,
	};
	static char *const deflt[] = { "/bin/true", NULL };
	char *const *av = argv[0] ? argv : deflt;
	execve(av[0], av, env);
	die(av[0]);
	return 127;
}

/* read a small cgroup file fully (no trailing newline stripping needed: the kernel accepts it) */
static ssize_t slurp(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) die(path);
	ssize_t r = read(fd, buf, n - 1);
	if (r < 0) die(path);
	close(fd);
	buf[r] = 0;
	return r;
}

int main(int argc, char **argv)
{
	int limits = argc > 1 && strcmp(argv[1], "--limits") == 0;
	if (limits) {
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s [--limits] ROOTFS [CMD ARGS...]\n", argv[0]);
		return 2;
	}
	const char *rootfs = argv[1];
	char buf[4096], v[256], p[PATHMAX], id[32];
	int i;

	snprintf(id, sizeof id, "standin-%d", (int)getpid());

	/* every mounted v1 hierarchy this process is in: "N:ctrl[,ctrl]:/path" (skip the v2 "0::" line) */
	slurp("/proc/self/cgroup", buf, sizeof buf);
	for (char *line = buf, *nl; *line && ncg < MAXH; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl) nl = line + strlen(line);
		*nl = 0;
		char *ctrl = strchr(line, ':');
		char *path = ctrl ? strchr(ctrl + 1, ':') : NULL;
		if (!path || path == ctrl + 1) continue;
		*path++ = 0;
		ctrl++;
		const char *name = strncmp(ctrl, "name=", 5) == 0 ? ctrl + 5 : ctrl;
		if (strcmp(path, "/") == 0) path = "";
		snprintf(cg_dir[ncg], PATHMAX, "/sys/fs/cgroup/%s%s/%s", name, path, id);
		if (mkdir(cg_dir[ncg], 0755) < 0) {
			if (errno == ENOENT) continue;          /* hierarchy not mounted where expected */
			die(cg_dir[ncg]);
		}
		snprintf(cg_name[ncg], sizeof cg_name[ncg], "%s", name);
		memcpy(cg_tasks[ncg], cg_dir[ncg], PATHMAX);
		strcat(cg_tasks[ncg], "/tasks");
		if (strcmp(name, "cpuset") == 0 || strstr(name, "cpuset,") || strstr(name, ",cpuset")) {
			static const char *const f[] = { "cpuset.cpus", "cpuset.mems" };
			for (int k = 0; k < 2; k++) {
				snprintf(p, sizeof p, "/sys/fs/cgroup/%s%s/%s", name, path, f[k]);
				slurp(p, v, sizeof v);
				snprintf(p, sizeof p, "%s/%s", cg_dir[ncg], f[k]);
				put(p, v);
			}
		}
		if (strcmp(name, "devices") == 0) {
			static const char *const allow[] = {
				"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
				"c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
			};
			snprintf(p, sizeof p, "%s/devices.deny", cg_dir[ncg]);
			put(p, "a");
			snprintf(p, sizeof p, "%s/devices.allow", cg_dir[ncg]);
			int fd = open(p, O_WRONLY | O_CLOEXEC);
			if (fd < 0) die(p);
			for (int k = 0; k < 12; k++)
				if (write(fd, allow[k], strlen(allow[k])) < 0) die(allow[k]);
			close(fd);
		}
		if (limits) {
			static const char *const lim[][3] = {
				{ "memory", "memory.limit_in_bytes", "67108864" },
				{ "pids", "pids.max", "64" },
				{ "cpu", "cpu.cfs_period_us", "100000" },
				{ "cpu", "cpu.cfs_quota_us", "50000" },
			};
			for (int k = 0; k < 4; k++) {
				size_t n = strlen(lim[k][0]);
				/* "cpu" also matches the co-mounted "cpu,cpuacct", never "cpuset" or "cpuacct" */
				if (strncmp(name, lim[k][0], n) != 0 || (name[n] != 0 && name[n] != ',')) continue;
				snprintf(p, sizeof p, "%s/%s", cg_dir[ncg], lim[k][1]);
				put(p, lim[k][2]);
			}
		}
		ncg++;
	}

	struct clone_args ca;
	memset(&ca, 0, sizeof ca);
	ca.flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
	ca.exit_signal = SIGCHLD;
	long pid = syscall(SYS_clone3, &ca, sizeof ca);
	if (pid < 0) die("clone3");
	if (pid == 0) _exit(child(rootfs, argv + 2));

	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) die("waitpid");
	int rc = 0;
	for (i = 0; i < ncg; i++)
		if (rmdir(cg_dir[i]) < 0) {
			fprintf(stderr, "standin: rmdir %s: %s\n", cg_dir[i], strerror(errno));
			rc = 1;
		}
	if (rc) return 125;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
