/* Spawns that fail: the code, the message naming what and where, and nothing left. */
#include "check.h"

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  char id[256];
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  struct corral_container *c = NULL;

  /* A program that does not exist: -ENOENT, named, at create. */
  struct corral_spec *s = NULL;
  OK(corral_spec_new(rootfs, &s));
  const char *args[] = {"/no/such/program", "x"};
  OK(corral_spec_set_args(s, args, 2));
  make_id(id, sizeof id, prefix, "noprog");
  FAILS(corral_create(s, id, &o, &c), ENOENT);
  EXPECT(c == NULL);
  EXPECT(contains(corral_last_error_message(), "/no/such/program"));
  EXPECT(contains(corral_last_error_message(), "corral_create"));
  EXPECT(corral_last_error_step() != NULL);
  corral_spec_free(s);

  /* A root filesystem that does not exist: -EINVAL naming root.path. */
  OK(corral_spec_new("/no/such/rootfs", &s));
  FAILS(corral_run(s, id, &o, &c), EINVAL);
  EXPECT(contains(corral_last_error_path(), "root.path"));
  EXPECT(contains(corral_last_error_message(), "/no/such/rootfs"));
  corral_spec_free(s);

  /* A bad config JSON: line and column. */
  FAILS(corral_spec_from_json("{\"ociVersion\": \"1.0.2\",\n \"process\": 5}", root, &s),
        EINVAL);
  EXPECT(contains(corral_last_error_message(), "config.json:2:"));
  EXPECT(contains(corral_last_error_step(), "config"));

  /* A bad limit: named. */
  OK(corral_spec_new(rootfs, &s));
  struct corral_limits l;
  corral_limits_init(&l);
  l.pids = -7;
  FAILS(corral_spec_set_limits(s, &l), EINVAL);
  EXPECT(contains(corral_last_error_message(), "pids.limit"));

  /* The same id twice: -EEXIST, and the first is untouched. */
  const char *sleep_args[] = {"/bin/sleep", "30"};
  OK(corral_spec_set_args(s, sleep_args, 2));
  make_id(id, sizeof id, prefix, "dup");
  OK(corral_create(s, id, &o, &c));
  struct corral_container *c2 = NULL;
  FAILS(corral_create(s, id, &o, &c2), EEXIST);
  char *state = NULL;
  OK(corral_state_json(c, &state));
  EXPECT(contains(state, "\"created\""));
  corral_string_free(state);
  OK(corral_delete(c, 1));
  corral_container_free(c);
  corral_spec_free(s);

  /* Nothing is left under the state root. */
  char *list = NULL;
  OK(corral_list(root, &list));
  if (strcmp(list, "[]") != 0)
    FAIL("left: %s", list);
  corral_string_free(list);
  printf("spawn_fail: ok\n");
  return 0;
}
