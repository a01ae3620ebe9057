/* Limits that hold inside the container, and an update of them. */
#include "check.h"

#include <stddef.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define CG "cg=/sys/fs/cgroup; "
#define PIDS_MAX "$(cat $cg/pids/pids.max 2>/dev/null || cat $cg/pids.max)"

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  char id[256];
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;

  /* The files say it, and the pids limit stops a fork loop. */
  int p[2];
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  o.stdout_fd = p[1];
  struct corral_spec *s = sh_spec(
      rootfs,
      CG "echo $(cat $cg/memory/memory.limit_in_bytes 2>/dev/null || cat $cg/memory.max) " PIDS_MAX
      " $(cat $cg/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 $cg/cpu.max); "
      "echo 0 > /dev/shm/n; "
      "sh -c 'n=0; while [ $n -lt 20 ]; do sleep 5 & n=$((n+1)); echo $n > /dev/shm/n; done' "
      "2>/dev/null; echo started $(cat /dev/shm/n); kill -9 -1; exit 0");
  struct corral_limits l;
  corral_limits_init(&l);
  l.memory = 32 << 20;
  l.pids = 8;
  l.cpus = 0.5;
  OK(corral_spec_set_limits(s, &l));
  struct corral_container *c = NULL;
  make_id(id, sizeof id, prefix, "lim");
  OK(corral_run(s, id, &o, &c));
  close(p[1]);
  struct corral_exit e;
  OK(corral_wait(c, 30000, &e));
  const char *out = read_all(p[0]);
  unsigned long mem = 0, pids = 0, quota = 0, started = 0;
  if (sscanf(out, "%lu %lu %lu\nstarted %lu", &mem, &pids, &quota, &started) != 4)
    FAIL("output %s", out);
  EXPECT(mem == 32ul << 20 && pids == 8 && quota == 50000);
  /* The shells count too: fewer than 8 sleeps could start, but some did. */
  if (started >= 8 || started == 0)
    FAIL("%lu processes started under pids.max 8: %s", started, out);
  OK(corral_delete(c, 0));
  corral_container_free(c);
  corral_spec_free(s);

  /* An update of a running container, seen inside by exec. */
  o.stdout_fd = -1;
  s = sh_spec(rootfs, "exec sleep 60");
  OK(corral_spec_set_limits(s, &l));
  make_id(id, sizeof id, prefix, "upd");
  OK(corral_run(s, id, &o, &c));
  struct corral_limits u;
  corral_limits_init(&u);
  u.pids = 32;
  OK(corral_update(c, &u));
  u.memory = -3;
  FAILS(corral_update(c, &u), EINVAL);
  EXPECT(contains(corral_last_error_message(), "memory.limit"));
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  struct corral_exec_options eo;
  corral_exec_options_init(&eo);
  eo.stdout_fd = p[1];
  const char *args[] = {"/bin/sh", "-c", CG "echo " PIDS_MAX};
  struct corral_process *proc = NULL;
  OK(corral_exec(c, args, 3, &eo, &proc));
  close(p[1]);
  OK(corral_process_wait(proc, 10000, &e));
  corral_process_free(proc);
  out = read_all(p[0]);
  if (strcmp(out, "32\n") != 0)
    FAIL("pids.max after update: %s", out);
  OK(corral_delete(c, 1));
  corral_container_free(c);
  corral_spec_free(s);
  /* Block IO: per-device rates on the block device $CORRAL_TEST_BLKDEV (a whole disk),
   * seen inside; a weight in the spec; bad values refused by field. */
  const char *dev = getenv("CORRAL_TEST_BLKDEV");
  EXPECT(dev != NULL);
  EXPECT(corral_has_feature("blkio") == 1);
  struct stat st;
  EXPECT(stat(dev, &st) == 0 && S_ISBLK(st.st_mode));
  char want_v1[64], want_v2[64];
  snprintf(want_v1, sizeof want_v1, "%u:%u 1048576", major(st.st_rdev), minor(st.st_rdev));
  snprintf(want_v2, sizeof want_v2, "%u:%u rbps=1048576", major(st.st_rdev),
           minor(st.st_rdev));
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  o.stdout_fd = p[1];
  s = sh_spec(rootfs, CG "cat $cg/blkio/blkio.throttle.read_bps_device 2>/dev/null || "
                         "cat $cg/io.max");
  struct corral_device_rate rbps = {.path = dev, .rate = 1 << 20};
  struct corral_limits b;
  corral_limits_init(&b);
  b.device_read_bps = &rbps;
  b.device_read_bps_len = 1;
  OK(corral_spec_set_limits(s, &b));
  make_id(id, sizeof id, prefix, "blkio");
  OK(corral_run(s, id, &o, &c));
  close(p[1]);
  OK(corral_wait(c, 10000, &e));
  out = read_all(p[0]);
  if (!contains(out, want_v1) && !contains(out, want_v2))
    FAIL("read bps of %s: want %s or %s, got %s", dev, want_v1, want_v2, out);
  OK(corral_delete(c, 0));
  corral_container_free(c);
  corral_spec_free(s);

  s = sh_spec(rootfs, "exit 0");
  corral_limits_init(&b);
  b.blkio_weight = 500;
  OK(corral_spec_set_limits(s, &b));
  char *json = NULL;
  OK(corral_spec_to_json(s, &json));
  if (!contains(json, "\"weight\": 500"))
    FAIL("blockIO.weight not in %s", json);
  corral_string_free(json);
  b.blkio_weight = 5;
  FAILS(corral_spec_set_limits(s, &b), EINVAL);
  EXPECT(contains(corral_last_error_message(), "blockIO.weight"));
  b.blkio_weight = 0;
  struct corral_device_rate notblk = {.path = "/dev/null", .rate = 1};
  b.device_write_iops = &notblk;
  b.device_write_iops_len = 1;
  FAILS(corral_spec_set_limits(s, &b), EINVAL);
  EXPECT(contains(corral_last_error_message(), "not a block device"));
  b.device_write_iops = NULL;
  FAILS(corral_spec_set_limits(s, &b), EINVAL);
  EXPECT(contains(corral_last_error_path(), "device_write_iops"));
  /* A program built before the block IO fields passes a shorter struct: what lies past
   * its size is not read. */
  b.size = offsetof(struct corral_limits, blkio_weight);
  b.blkio_weight = 5;
  b.memory = 64 << 20;
  OK(corral_spec_set_limits(s, &b));
  OK(corral_spec_to_json(s, &json));
  EXPECT(!contains(json, "\"weight\"") && contains(json, "67108864"));
  corral_string_free(json);
  corral_spec_free(s);
  printf("limits: ok\n");
  return 0;
}
