/* The life of a container through libcontainer: build a spec with limits, create, start,
 * exec into it, read its state, stats and timings, stop and delete it.
 * Run from the repository root after ./scripts/demo.sh (or set CORRAL_ROOTFS). */
#include <container.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int die(const char *what) {
  fprintf(stderr, "%s: %s (code %d, step %s)\n", what, corral_last_error_message(),
          corral_last_error_code(), corral_last_error_step() ? corral_last_error_step() : "-");
  return 1;
}

int main(void) {
  const char *rootfs = getenv("CORRAL_ROOTFS") ? getenv("CORRAL_ROOTFS") : "target/demo-bundle/rootfs";
  printf("libcontainer %s (ABI %d)\n", corral_version(), corral_abi_version());

  struct corral_spec *spec;
  if (corral_spec_new(rootfs, &spec) < 0)
    return die("spec");
  const char *args[] = {"/bin/sleep", "30"};
  struct corral_limits limits;
  corral_limits_init(&limits);
  limits.memory = 64 << 20;
  limits.pids = 32;
  limits.cpus = 0.5;
  if (corral_spec_set_args(spec, args, 2) < 0 || corral_spec_set_hostname(spec, "lifecycle") < 0 ||
      corral_spec_set_limits(spec, &limits) < 0)
    return die("spec");

  char id[64];
  snprintf(id, sizeof id, "example-lifecycle-%ld", (long)getpid());
  struct corral_container *c;
  if (corral_create(spec, id, NULL, &c) < 0)
    return die("create");
  if (corral_start(c) < 0)
    return die("start");

  struct corral_timing *t;
  size_t n;
  if (corral_timings(c, &t, &n) == 0) {
    for (size_t i = 0; i < n; i++)
      printf("  %-8s %8.3f ms\n", t[i].phase, t[i].nanoseconds / 1e6);
    corral_timings_free(t, n);
  }

  const char *cmd[] = {"/bin/sh", "-c", "echo \"exec: $(hostname), pids.max $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)\""};
  struct corral_process *p;
  struct corral_exit st;
  if (corral_exec(c, cmd, 3, NULL, &p) < 0)
    return die("exec");
  corral_process_wait(p, -1, &st);
  corral_process_free(p);

  char *json;
  if (corral_state_json(c, &json) == 0) {
    printf("state: %s\n", json);
    corral_string_free(json);
  }
  if (corral_stats_json(c, &json) == 0) {
    printf("stats: %s\n", json);
    corral_string_free(json);
  }
  corral_kill(c, SIGKILL, 0);
  if (corral_wait(c, 10000, &st) < 0)
    return die("wait");
  printf("ended by signal %d\n", st.signal);
  if (corral_delete(c, 0) < 0)
    return die("delete");
  corral_container_free(c);
  corral_spec_free(spec);
  return 0;
}
