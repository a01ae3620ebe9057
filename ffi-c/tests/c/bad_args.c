/* NULL and bad handles, bad arguments and options: an error every time, never a crash. */
#include "check.h"

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2];
  (void)argv[3];
  struct corral_spec *s = NULL;
  struct corral_container *c = NULL;
  struct corral_exit e;
  int x;
  char *str = NULL;

  EXPECT(corral_last_error_code() == 0 && corral_last_error_message() == NULL);
  EXPECT(corral_version() != NULL && strchr(corral_version(), '.') != NULL);
  EXPECT(corral_abi_version() == CORRAL_ABI_VERSION);
  EXPECT(corral_has_feature("exec") == 1 && corral_has_feature("timings") == 1);
  EXPECT(corral_has_feature("teleport") == 0);
  FAILS(corral_has_feature(NULL), EINVAL);

  /* NULL everywhere. */
  FAILS(corral_spec_new(NULL, &s), EINVAL);
  EXPECT(contains(corral_last_error_path(), "rootfs"));
  FAILS(corral_spec_new(rootfs, NULL), EINVAL);
  FAILS(corral_spec_set_args(NULL, NULL, 0), EINVAL);
  FAILS(corral_start(NULL), EINVAL);
  FAILS(corral_wait(NULL, -1, &e), EINVAL);
  FAILS(corral_kill(NULL, SIGKILL, 0), EINVAL);
  FAILS(corral_pid(NULL, &x), EINVAL);
  FAILS(corral_state_json(NULL, &str), EINVAL);
  FAILS(corral_delete(NULL, 1), EINVAL);
  FAILS(corral_open(root, NULL, &c), EINVAL);
  FAILS(corral_list(root, NULL), EINVAL);
  corral_spec_free(NULL);
  corral_container_free(NULL);
  corral_process_free(NULL);
  corral_string_free(NULL);
  corral_timings_free(NULL, 0);

  /* Made-up and freed handles. */
  struct corral_container *bogus = (struct corral_container *)(uintptr_t)0x1000;
  FAILS(corral_start(bogus), EBADF);
  FAILS(corral_wait(bogus, 0, &e), EBADF);
  corral_container_free(bogus);
  OK(corral_spec_new(rootfs, &s));
  const char *args[] = {"/bin/true"};
  OK(corral_spec_set_args(s, args, 1));
  FAILS(corral_spec_set_args(s, args, 0), EINVAL);
  FAILS(corral_spec_set_args(s, NULL, 2), EINVAL);
  const char *with_null[] = {"/bin/true", NULL};
  FAILS(corral_spec_set_args(s, with_null, 2), EINVAL);
  EXPECT(contains(corral_last_error_path(), "argv[1]"));
  FAILS(corral_spec_set_namespace(s, "nett", "new"), EINVAL);
  EXPECT(contains(corral_last_error_message(), "nett"));
  FAILS(corral_spec_set_namespace(s, "net", "sideways"), EINVAL);
  FAILS(corral_spec_set_cwd(s, "relative"), EINVAL);
  FAILS(corral_spec_set_env(s, "A=B", "c"), EINVAL);
  FAILS(corral_spec_add_mount(s, "/tmp", "rel", "bind", NULL), EINVAL);
  struct corral_spec *freed = s;
  corral_spec_free(s);
  FAILS(corral_spec_set_hostname(freed, "x"), EBADF);
  corral_spec_free(freed); /* twice: ignored */

  /* Options: never initialised, unknown flags, bad fds. */
  OK(corral_spec_new(rootfs, &s));
  OK(corral_spec_set_args(s, args, 1));
  struct corral_options o;
  memset(&o, 0, sizeof o);
  FAILS(corral_create(s, "x-bad-opts", &o, &c), EINVAL);
  EXPECT(contains(corral_last_error_message(), "opts.size"));
  corral_options_init(&o);
  o.root = root;
  o.flags = 1u << 30;
  FAILS(corral_create(s, "x-bad-flags", &o, &c), EINVAL);
  corral_options_init(&o);
  o.root = root;
  o.stdout_fd = 999;
  FAILS(corral_create(s, "x-bad-fd", &o, &c), EBADF);
  EXPECT(contains(corral_last_error_message(), "opts.stdout_fd"));
  corral_options_init(&o);
  o.root = root;
  FAILS(corral_create(s, "bad id!", &o, &c), EINVAL);
  EXPECT(contains(corral_last_error_message(), "bad id!"));

  /* Bad signal and timeout; a spec from a bundle cannot be edited field by field. */
  OK(corral_run(s, "x-sig-args", &o, &c));
  FAILS(corral_kill(c, 0, 0), EINVAL);
  FAILS(corral_kill(c, 99, 0), EINVAL);
  FAILS(corral_wait(c, -5, &e), EINVAL);
  FAILS(corral_wait(c, 1000, NULL), EINVAL);
  OK(corral_wait(c, 10000, &e));
  OK(corral_delete(c, 0));
  corral_container_free(c);
  FAILS(corral_delete(c, 0), EBADF);
  corral_spec_free(s);
  OK(corral_spec_from_json("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"}}", root, &s));
  FAILS(corral_spec_set_hostname(s, "x"), ENOTSUP);
  OK(corral_spec_to_json(s, &str));
  EXPECT(contains(str, "\"ociVersion\""));
  corral_string_free(str);
  corral_spec_free(s);

  /* The last error is per thread and stays until the next failure. */
  OK(corral_spec_new(rootfs, &s));
  EXPECT(corral_last_error_code() == -ENOTSUP);
  corral_clear_error();
  EXPECT(corral_last_error_code() == 0 && corral_last_error_message() == NULL);
  corral_spec_free(s);
  printf("bad_args: ok\n");
  return 0;
}
