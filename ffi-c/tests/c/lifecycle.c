/* create, start, state, pid and pidfd, pause and resume, stats, list, open, kill, delete. */
#include "check.h"

static void expect_status(struct corral_container *c, const char *status) {
  char *st = NULL;
  OK(corral_state_json(c, &st));
  char want[64];
  snprintf(want, sizeof want, "\"status\":\"%s\"", status);
  if (!contains(st, want))
    FAIL("state %s, want %s", st, status);
  corral_string_free(st);
}

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  char id[256];
  make_id(id, sizeof id, prefix, "life");
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  struct corral_spec *s = sh_spec(rootfs, "exec sleep 60");
  struct corral_container *c = NULL;
  OK(corral_create(s, id, &o, &c));
  expect_status(c, "created");
  int pid = 0;
  OK(corral_pid(c, &pid));
  EXPECT(pid > 1 && kill(pid, 0) == 0);
  int pidfd = -1;
  OK(corral_pidfd(c, &pidfd));
  struct pollfd pf = {.fd = pidfd, .events = POLLIN};
  EXPECT(poll(&pf, 1, 0) == 0);

  OK(corral_start(c));
  expect_status(c, "running");
  FAILS(corral_start(c), EBUSY);

  OK(corral_pause(c));
  expect_status(c, "paused");
  FAILS(corral_delete(c, 0), EBUSY);
  OK(corral_resume(c));
  expect_status(c, "running");

  char *stats = NULL;
  OK(corral_stats_json(c, &stats));
  EXPECT(contains(stats, "\"type\":\"stats\"") && contains(stats, "\"pids\""));
  corral_string_free(stats);

  char *list = NULL;
  OK(corral_list(root, &list));
  EXPECT(contains(list, id));
  corral_string_free(list);

  /* Another handle on the same container, as another process would open it. */
  struct corral_container *other = NULL;
  OK(corral_open(root, id, &other));
  expect_status(other, "running");
  int pid2 = 0;
  OK(corral_pid(other, &pid2));
  EXPECT(pid2 == pid);

  OK(corral_kill(c, SIGKILL, 1));
  EXPECT(poll(&pf, 1, 10000) == 1);
  close(pidfd);
  struct corral_exit e;
  OK(corral_wait(c, 10000, &e));
  EXPECT(e.kind == CORRAL_SIGNALED && e.signal == SIGKILL);
  /* The other handle did not make it: it knows only that it ended. */
  OK(corral_wait(other, 10000, &e));
  EXPECT(e.kind == CORRAL_UNKNOWN);
  expect_status(other, "stopped");
  corral_container_free(other);
  FAILS(corral_kill(c, SIGTERM, 0), EBUSY);

  OK(corral_delete(c, 0));
  FAILS(corral_state_json(c, &list), ENOENT);
  FAILS(corral_delete(c, 0), ENOENT);
  corral_container_free(c);
  FAILS(corral_open(root, id, &c), ENOENT);
  corral_spec_free(s);
  printf("lifecycle: ok\n");
  return 0;
}
