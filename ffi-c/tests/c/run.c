/* Run a container and read its exit code, its output, the signal that killed it, a wait
 * that times out, and the per-phase timings. */
#include "check.h"

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s ROOTFS STATE_ROOT ID_PREFIX\n", argv[0]);
    return 2;
  }
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  char id[256];

  /* Exit code and stdout through a pipe. */
  int p[2];
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  struct corral_spec *s = sh_spec(rootfs, "echo hello from $(hostname); exit 7");
  OK(corral_spec_set_hostname(s, "c-run"));
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  o.stdout_fd = p[1];
  struct corral_container *c = NULL;
  make_id(id, sizeof id, prefix, "exit");
  OK(corral_run(s, id, &o, &c));
  close(p[1]);
  struct corral_exit e;
  OK(corral_wait(c, -1, &e));
  EXPECT(e.kind == CORRAL_EXITED && e.code == 7 && e.signal == 0);
  const char *out = read_all(p[0]);
  if (strcmp(out, "hello from c-run\n") != 0)
    FAIL("stdout %s", out);
  /* The wait is repeatable once known. */
  OK(corral_wait(c, 0, &e));
  EXPECT(e.kind == CORRAL_EXITED && e.code == 7);

  /* Timings: the create phases in order, then start. */
  struct corral_timing *t = NULL;
  size_t n = 0;
  OK(corral_timings(c, &t, &n));
  const char *want[] = {"check", "record", "rootfs", "cgroup", "plan",
                        "clone", "setup", "created", "start"};
  EXPECT(n == 9);
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(t[i].phase, want[i]) != 0)
      FAIL("phase %zu is %s, want %s", i, t[i].phase, want[i]);
    total += t[i].nanoseconds;
  }
  EXPECT(total > 0);
  corral_timings_free(t, n);
  OK(corral_delete(c, 0));
  corral_container_free(c);

  /* Killed by a signal; a wait that times out first. */
  corral_spec_free(s);
  s = sh_spec(rootfs, "exec sleep 30");
  o.stdout_fd = -1; /* closed above: the library would refuse it (-EBADF) */
  make_id(id, sizeof id, prefix, "sig");
  OK(corral_run(s, id, &o, &c));
  FAILS(corral_wait(c, 50, &e), ETIMEDOUT);
  EXPECT(contains(corral_last_error_message(), "still running"));
  OK(corral_kill(c, SIGKILL, 0));
  OK(corral_wait(c, 10000, &e));
  EXPECT(e.kind == CORRAL_SIGNALED && e.signal == SIGKILL && e.code == 0);
  OK(corral_delete(c, 0));
  corral_container_free(c);
  corral_spec_free(s);

  /* A container whose handle is freed while it runs is removed with it. */
  s = sh_spec(rootfs, "exec sleep 30");
  make_id(id, sizeof id, prefix, "drop");
  OK(corral_run(s, id, &o, &c));
  corral_container_free(c);
  FAILS(corral_open(root, id, &c), ENOENT);
  corral_spec_free(s);
  printf("run: ok\n");
  return 0;
}
