/* The limits docker has as run flags, through corral_limits: seen inside the container,
 * and refused in docker's words (checked against the host) before anything is made. */
#include "check.h"

#include <stddef.h>
#include <stdint.h>

#define CG "cg=/sys/fs/cgroup; "

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  char id[256];
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;

  int p[2];
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  o.stdout_fd = p[1];
  struct corral_spec *s = sh_spec(
      rootfs, CG "echo $(cat $cg/cpuset/cpuset.cpus 2>/dev/null || cat $cg/cpuset.cpus) "
                 "$(cat $cg/memory/memory.soft_limit_in_bytes 2>/dev/null || cat $cg/memory.low) "
                 "$(cat /proc/self/oom_score_adj) $(ulimit -n) $(ulimit -Hn) $(ulimit -u) "
                 "$(grep -c 'size=16384k' /proc/mounts)");
  struct corral_limits l;
  corral_limits_init(&l);
  EXPECT(l.memory_swappiness == -1);
  l.memory = 64 << 20;
  l.memory_reservation = 32 << 20;
  l.cpuset_cpus = "0";
  l.oom_score_adj = 300;
  l.shm_size = 16 << 20;
  struct corral_ulimit ul[] = {{.name = "nofile", .soft = 100, .hard = 200},
                               {.name = "nproc", .soft = 50, .hard = 60}};
  l.ulimits = ul;
  l.ulimits_len = 2;
  OK(corral_spec_set_limits(s, &l));
  struct corral_container *c = NULL;
  make_id(id, sizeof id, prefix, "dl");
  OK(corral_run(s, id, &o, &c));
  close(p[1]);
  struct corral_exit e;
  OK(corral_wait(c, 30000, &e));
  const char *out = read_all(p[0]);
  if (strcmp(out, "0 33554432 300 100 200 50 1\n") != 0)
    FAIL("inside: %s", out);
  OK(corral_delete(c, 0));
  corral_container_free(c);
  corral_spec_free(s);

  /* Refused, in docker's words, before anything is made. */
  s = sh_spec(rootfs, "exit 0");
  corral_limits_init(&l);
  l.cpus = 4096;
  FAILS(corral_spec_set_limits(s, &l), EINVAL);
  EXPECT(contains(corral_last_error_message(), "Range of CPUs is from 0.01 to"));
  corral_limits_init(&l);
  l.memory = 1 << 20;
  FAILS(corral_spec_set_limits(s, &l), EINVAL);
  EXPECT(contains(corral_last_error_message(), "Minimum memory limit allowed is 6MB"));
  corral_limits_init(&l);
  l.cpuset_cpus = "0-4095";
  FAILS(corral_spec_set_limits(s, &l), EINVAL);
  EXPECT(contains(corral_last_error_message(), "Requested CPUs are not available"));
  corral_limits_init(&l);
  l.oom_score_adj = 1001;
  FAILS(corral_spec_set_limits(s, &l), EINVAL);
  EXPECT(contains(corral_last_error_message(), "range for oom score adj is [-1000, 1000]"));
  corral_limits_init(&l);
  l.memory_swappiness = 101;
  FAILS(corral_spec_set_limits(s, &l), EINVAL);
  EXPECT(contains(corral_last_error_message(), "memory.swappiness"));
  corral_limits_init(&l);
  struct corral_ulimit bad = {.name = "nofile", .soft = 10, .hard = 5};
  l.ulimits = &bad;
  l.ulimits_len = 1;
  FAILS(corral_spec_set_limits(s, &l), EINVAL);
  EXPECT(contains(corral_last_error_message(), "soft limit must be less than or equal"));
  bad.name = "bogus";
  bad.hard = 10;
  FAILS(corral_spec_set_limits(s, &l), EINVAL);
  EXPECT(contains(corral_last_error_message(), "invalid ulimit type: bogus"));
  EXPECT(contains(corral_last_error_path(), "ulimits[0]"));
  /* A program built before these fields passes a shorter struct: they are not read. */
  corral_limits_init(&l);
  l.size = offsetof(struct corral_limits, cpu_period);
  l.oom_score_adj = 5000;
  l.memory = 64 << 20;
  OK(corral_spec_set_limits(s, &l));
  char *json = NULL;
  OK(corral_spec_to_json(s, &json));
  EXPECT(!contains(json, "oomScoreAdj") && contains(json, "67108864"));
  corral_string_free(json);
  corral_spec_free(s);
  printf("docker_limits: ok\n");
  return 0;
}
