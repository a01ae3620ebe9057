/* A warm pool: containers taken from it run the caller's program with its env and stdio,
 * the pool refills, a bad take is an error, and freeing it removes what waits in it. */
#include "check.h"

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  EXPECT(corral_has_feature("pool") == 1);
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  struct corral_spec *s = NULL;
  OK(corral_spec_new(rootfs, &s));
  OK(corral_spec_set_hostname(s, "pooled"));
  struct corral_pool *pool = NULL;
  OK(corral_pool_new(s, &o, 2, prefix, &pool));
  for (int i = 0; i < 10; i++) {
    int p[2];
    EXPECT(pipe2(p, O_CLOEXEC) == 0);
    struct corral_take_options t;
    corral_take_options_init(&t);
    char round[32];
    snprintf(round, sizeof round, "ROUND=%d", i);
    const char *env[] = {round};
    t.env = env;
    t.env_len = 1;
    t.stdout_fd = p[1];
    t.flags = i % 2 ? CORRAL_TAKE_WAIT : 0;
    const char *args[] = {"sh", "-c", "echo $$ $(hostname) $ROUND; exit 4"};
    struct corral_container *c = NULL;
    OK(corral_pool_take(pool, args, 3, &t, &c));
    close(p[1]);
    struct corral_exit e;
    OK(corral_wait(c, 10000, &e));
    EXPECT(e.kind == CORRAL_EXITED && e.code == 4);
    const char *out = read_all(p[0]);
    char want[64];
    snprintf(want, sizeof want, "1 pooled %d\n", i);
    if (strcmp(out, want) != 0)
      FAIL("take %d printed %s", i, out);
    struct corral_timing *tm = NULL;
    size_t n = 0;
    OK(corral_timings(c, &tm, &n));
    EXPECT(n >= 1 && strcmp(tm[n - 1].phase, "start") == 0);
    corral_timings_free(tm, n);
    OK(corral_delete(c, 0));
    corral_container_free(c);
  }
  const char *bad[] = {"/no/such/program"};
  struct corral_container *c = NULL;
  FAILS(corral_pool_take(pool, bad, 1, NULL, &c), ENOENT);
  EXPECT(contains(corral_last_error_message(), "exec"));
  FAILS(corral_pool_take(pool, bad, 0, NULL, &c), EINVAL);
  size_t ready = 0;
  for (int i = 0; i < 1000 && ready < 2; i++) {
    OK(corral_pool_ready(pool, &ready));
    usleep(10000);
  }
  EXPECT(ready == 2);
  corral_pool_free(pool);
  FAILS(corral_pool_ready(pool, &ready), EBADF);
  corral_spec_free(s);
  char *list = NULL;
  OK(corral_list(root, &list));
  if (strcmp(list, "[]") != 0)
    FAIL("left: %s", list);
  corral_string_free(list);
  printf("pool: ok\n");
  return 0;
}
