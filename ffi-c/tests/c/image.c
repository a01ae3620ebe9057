/* A container from an image of a store: the image's config, the caller's settings on top,
 * writes that stay in the container's own layer, and the store's record gone after delete.
 * Takes ROOTFS STATE_ROOT ID_PREFIX; the harness has imported ROOTFS as the image
 * "c-base:1" into the store $CORRAL_TEST_STORE. */
#include "check.h"

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *root = argv[2], *prefix = argv[3];
  const char *store = getenv("CORRAL_TEST_STORE");
  EXPECT(store != NULL);
  EXPECT(corral_has_feature("image") == 1);
  char id[256];
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;

  /* A missing image: -ENOENT at create, naming it; nothing left. */
  struct corral_spec *s = NULL;
  OK(corral_spec_from_image(store, "no-such-image:1", &s));
  struct corral_container *c = NULL;
  make_id(id, sizeof id, prefix, "missing");
  FAILS(corral_create(s, id, &o, &c), ENOENT);
  EXPECT(contains(corral_last_error_message(), "no-such-image"));
  corral_spec_free(s);
  FAILS(corral_spec_from_image(store, "Bad Name!", &s), EINVAL);

  /* Run: writes go to the container's own layer. */
  OK(corral_spec_from_image(store, "c-base:1", &s));
  const char *args[] = {"/bin/sh", "-c",
                        "echo $GREETING $(hostname) $(pwd); echo x > /written; cat /written"};
  OK(corral_spec_set_args(s, args, 3));
  OK(corral_spec_set_env(s, "GREETING", "hi"));
  OK(corral_spec_set_hostname(s, "from-image"));
  OK(corral_spec_set_cwd(s, "/tmp"));
  OK(corral_spec_set_seccomp(s, 1)); /* docker's profile: the default of an image */
  int p[2];
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  o.stdout_fd = p[1];
  make_id(id, sizeof id, prefix, "img");
  OK(corral_run(s, id, &o, &c));
  close(p[1]);
  struct corral_exit e;
  OK(corral_wait(c, 10000, &e));
  EXPECT(e.kind == CORRAL_EXITED && e.code == 0);
  const char *out = read_all(p[0]);
  if (strcmp(out, "hi from-image /tmp\nx\n") != 0)
    FAIL("output %s", out);
  char rec[4096];
  snprintf(rec, sizeof rec, "%s/containers/%s/image.json", store, id);
  EXPECT(access(rec, F_OK) == 0);
  OK(corral_delete(c, 0));
  EXPECT(access(rec, F_OK) != 0);
  corral_container_free(c);
  corral_spec_free(s);

  /* Issue 16: docker's defaults (seccomp profile, capabilities, no new user namespace),
   * and the opt-outs named as docker's options. */
  const char *status[] = {"/bin/sh", "-c",
                          "grep -E '^(Seccomp|CapEff|NoNewPrivs):' /proc/self/status; "
                          "busybox unshare -U -r true 2>&1 || echo NO-USERNS"};
  struct {
    const char *what, *want;
  } runs[] = {
      {"default", "CapEff:\t00000000a80425fb\nNoNewPrivs:\t0\nSeccomp:\t2\n"},
      {"unconfined", "CapEff:\t0000000000000400\nNoNewPrivs:\t1\nSeccomp:\t0\n"},
      {"privileged", "NoNewPrivs:\t0\nSeccomp:\t0\n"},
  };
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    OK(corral_spec_from_image(store, "c-base:1", &s));
    OK(corral_spec_set_args(s, status, 3));
    if (i == 1) {
      OK(corral_spec_set_seccomp(s, 0));
      OK(corral_spec_drop_cap(s, "ALL"));
      OK(corral_spec_add_cap(s, "NET_BIND_SERVICE"));
      OK(corral_spec_add_security_opt(s, "no-new-privileges"));
    } else if (i == 2) {
      OK(corral_spec_set_privileged(s, 1));
    }
    EXPECT(pipe2(p, O_CLOEXEC) == 0);
    o.stdout_fd = p[1];
    make_id(id, sizeof id, prefix, runs[i].what);
    OK(corral_run(s, id, &o, &c));
    close(p[1]);
    OK(corral_wait(c, 10000, &e));
    EXPECT(e.kind == CORRAL_EXITED && e.code == 0);
    out = read_all(p[0]);
    if (!contains(out, runs[i].want))
      FAIL("%s: output %s", runs[i].what, out);
    if (i == 0 && !contains(out, "Operation not permitted"))
      FAIL("default: unshare -U -r worked: %s", out);
    OK(corral_delete(c, 0));
    corral_container_free(c);
    corral_spec_free(s);
  }

  /* Bad input is refused by name; these are for image specs only. */
  OK(corral_spec_from_image(store, "c-base:1", &s));
  FAILS(corral_spec_add_cap(s, "NOPE"), EINVAL);
  EXPECT(contains(corral_last_error_message(), "NOPE"));
  FAILS(corral_spec_add_security_opt(s, "apparmor=x"), EINVAL);
  FAILS(corral_spec_add_device(s, "/etc/passwd"), EINVAL);
  EXPECT(contains(corral_last_error_message(), "not a device node"));
  FAILS(corral_spec_add_cap(s, NULL), EINVAL);
  corral_spec_free(s);
  OK(corral_spec_new(argv[1], &s));
  FAILS(corral_spec_add_cap(s, "CHOWN"), ENOTSUP);
  FAILS(corral_spec_set_privileged(s, 1), ENOTSUP);
  corral_spec_free(s);
  printf("image: ok\n");
  return 0;
}
