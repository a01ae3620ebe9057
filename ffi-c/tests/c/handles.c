/* Handles are ids, never reused: a freed handle stays -EBADF however many objects are made
 * after it (with addresses as handles, the 19th round's container answered for it). And
 * handles belong to the process that made them: after fork(), the child's use of an
 * inherited handle is -EXDEV and changes nothing (freeing it does not remove the parent's
 * container; the parent's pool cannot be taken from). */
#include "check.h"

static int running(struct corral_container *c) {
  char *st = NULL;
  OK(corral_state_json(c, &st));
  int r = contains(st, "\"status\":\"running\"");
  corral_string_free(st);
  return r;
}

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  char id[256];
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  struct corral_spec *s = sh_spec(rootfs, "exec sleep 60");

  /* A stale container handle against 40 create/free rounds. */
  struct corral_container *stale = NULL;
  make_id(id, sizeof id, prefix, "stale");
  OK(corral_run(s, id, &o, &stale));
  corral_container_free(stale);
  for (int i = 0; i < 40; i++) {
    struct corral_container *c = NULL;
    char cid[256];
    snprintf(cid, sizeof cid, "%s-round%d", prefix, i);
    OK(corral_run(s, cid, &o, &c));
    if (c == stale)
      FAIL("round %d: the new container's handle is the freed one", i);
    FAILS(corral_kill(stale, SIGKILL, 0), EBADF);
    int pid = 0;
    FAILS(corral_pid(stale, &pid), EBADF);
    if (!running(c))
      FAIL("round %d: the live container was hit through the stale handle", i);
    OK(corral_kill(c, SIGKILL, 0));
    struct corral_exit e;
    OK(corral_wait(c, 10000, &e));
    OK(corral_delete(c, 0));
    corral_container_free(c);
  }
  /* Specs too. */
  struct corral_spec *stale_spec = NULL;
  OK(corral_spec_new(rootfs, &stale_spec));
  corral_spec_free(stale_spec);
  for (int i = 0; i < 40; i++) {
    struct corral_spec *t = NULL;
    OK(corral_spec_new(rootfs, &t));
    FAILS(corral_spec_set_hostname(stale_spec, "x"), EBADF);
    corral_spec_free(t);
  }

  /* fork(): the child may not use the parent's handles. */
  struct corral_container *mine = NULL;
  make_id(id, sizeof id, prefix, "parent");
  OK(corral_run(s, id, &o, &mine));
  struct corral_spec *ps = NULL;
  OK(corral_spec_new(rootfs, &ps));
  struct corral_pool *pool = NULL;
  OK(corral_pool_new(ps, &o, 1, prefix, &pool));
  size_t ready = 0;
  for (int i = 0; i < 1000 && ready < 1; i++) {
    OK(corral_pool_ready(pool, &ready));
    usleep(10000);
  }
  EXPECT(ready == 1);
  pid_t child = fork();
  EXPECT(child >= 0);
  if (child == 0) {
    FAILS(corral_kill(mine, SIGKILL, 1), EXDEV);
    EXPECT(contains(corral_last_error_message(), "fork"));
    FAILS(corral_delete(mine, 1), EXDEV);
    corral_container_free(mine);
    EXPECT(corral_last_error_code() == -EXDEV);
    const char *args[] = {"/bin/true"};
    struct corral_container *taken = NULL;
    FAILS(corral_pool_take(pool, args, 1, NULL, &taken), EXDEV);
    FAILS(corral_pool_ready(pool, &ready), EXDEV);
    corral_pool_free(pool);
    EXPECT(corral_last_error_code() == -EXDEV);
    FAILS(corral_spec_set_hostname(s, "child"), EXDEV);
    corral_spec_free(s);
    EXPECT(corral_last_error_code() == -EXDEV);
    /* Its own handles work. */
    struct corral_spec *own = NULL;
    OK(corral_spec_new(rootfs, &own));
    OK(corral_spec_set_hostname(own, "child"));
    corral_spec_free(own);
    FAILS(corral_spec_set_hostname(own, "child"), EBADF);
    _exit(0);
  }
  int status = 0;
  EXPECT(waitpid(child, &status, 0) == child);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    FAIL("the child's checks failed (status %#x)", status);
  /* Nothing of the parent's changed. */
  if (!running(mine))
    FAIL("the child's calls stopped the parent's container");
  OK(corral_spec_set_hostname(s, "parent"));
  OK(corral_pool_ready(pool, &ready));
  EXPECT(ready == 1);
  const char *args[] = {"/bin/true"};
  struct corral_container *taken = NULL;
  struct corral_take_options t;
  corral_take_options_init(&t);
  t.flags = CORRAL_TAKE_WAIT;
  OK(corral_pool_take(pool, args, 1, &t, &taken));
  struct corral_exit e;
  OK(corral_wait(taken, 10000, &e));
  EXPECT(e.kind == CORRAL_EXITED && e.code == 0);
  OK(corral_delete(taken, 0));
  corral_container_free(taken);
  corral_pool_free(pool);
  corral_spec_free(ps);
  OK(corral_kill(mine, SIGKILL, 0));
  OK(corral_wait(mine, 10000, &e));
  OK(corral_delete(mine, 0));
  corral_container_free(mine);
  corral_spec_free(s);
  printf("handles: ok\n");
  return 0;
}
