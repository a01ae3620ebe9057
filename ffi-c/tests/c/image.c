/* Images from C: ROOTFS imported as "c-base:1" into the empty store $CORRAL_TEST_STORE,
 * containers of it (the image's config, the caller's settings on top, writes that stay in
 * the container's own layer, the store's record gone after delete), an image built from
 * a Dockerfile on it, tags, the list, and at the end every image removed and the store
 * pruned. Takes ROOTFS STATE_ROOT ID_PREFIX; $CORRAL_TEST_CONTEXT is an empty directory
 * for the build context. */
#include "check.h"

/* The progress lines of a build, one after the other. */
static char progress_buf[16384];

static void on_progress(const char *line, void *user) {
  int *calls = user;
  (*calls)++;
  size_t n = strlen(progress_buf);
  snprintf(progress_buf + n, sizeof progress_buf - n, "%s\n", line);
}

static void write_file(const char *dir, const char *name, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  EXPECT(f != NULL);
  EXPECT(fputs(text, f) >= 0);
  EXPECT(fclose(f) == 0);
}

/* Imports ROOTFS as c-base:1; bad sources and names are refused. */
static void import_base(const char *store, const char *rootfs) {
  EXPECT(corral_has_feature("image-store") == 1);
  char *json = NULL;
  OK(corral_image_import(store, rootfs, "c-base:1", &json));
  if (!contains(json, "\"c-base:1\"") || !contains(json, "\"id\":\"sha256:"))
    FAIL("import: %s", json);
  corral_string_free(json);
  FAILS(corral_image_import(store, rootfs, "Bad Name!", NULL), EINVAL);
  EXPECT(contains(corral_last_error_path(), "reference"));
  EXPECT(corral_image_import(store, "/no/such/source", "c-x:1", NULL) < 0);
  EXPECT(contains(corral_last_error_message(), "/no/such/source"));
  FAILS(corral_image_import(store, NULL, NULL, NULL), EINVAL);
}

/* Builds c-built:1 on c-base:1 (a RUN with a build argument, a COPY, a CMD) with the
 * Dockerfile given by its path, and runs it with the image's command. */
static void build_and_run(const char *store, const char *root, const char *prefix) {
  const char *ctx = getenv("CORRAL_TEST_CONTEXT");
  EXPECT(ctx != NULL);
  write_file(ctx, "hello.txt", "hello\n");
  char df[4096];
  snprintf(df, sizeof df, "%s/c.Dockerfile", ctx);
  const char *text = "FROM c-base:1\nARG GREETING=none\nRUN echo built-$GREETING > /built\n"
                     "COPY hello.txt /hello.txt\n"
                     "CMD [\"/bin/cat\", \"/built\", \"/hello.txt\"]\n";
  FILE *f = fopen(df, "w");
  EXPECT(f != NULL);
  fputs(text, f);
  EXPECT(fclose(f) == 0);
  struct corral_build_options bo;
  corral_build_options_init(&bo);
  bo.state_root = root;
  const char *bargs[] = {"GREETING=hi"};
  bo.build_args = bargs;
  bo.build_args_len = 1;
  const char *tags[] = {"c-built:1"};
  int calls = 0;
  char *id = NULL;
  int rc = corral_image_build(store, ctx, df, tags, 1, &bo, on_progress, &calls, &id);
  if (rc != 0)
    FAIL("build: %d; progress:\n%s", rc, progress_buf);
  if (!contains(progress_buf, "Step 1/5 : FROM c-base:1\n") ||
      !contains(progress_buf, "Successfully tagged c-built:1\n") || calls < 5)
    FAIL("progress (%d calls):\n%s", calls, progress_buf);
  EXPECT(strncmp(id, "sha256:", 7) == 0);
  corral_string_free(id);
  /* Again with the context's own Dockerfile, no tag, no callback, no id wanted: every
   * step from the cache. A bad tag is refused before anything is built. */
  write_file(ctx, "Dockerfile", text);
  OK(corral_image_build(store, ctx, NULL, NULL, 0, &bo, NULL, NULL, NULL));
  const char *bad[] = {"Bad Tag!"};
  FAILS(corral_image_build(store, ctx, NULL, bad, 1, NULL, NULL, NULL, NULL), EINVAL);
  EXPECT(contains(corral_last_error_path(), "tags[0]"));

  struct corral_spec *s = NULL;
  OK(corral_spec_from_image(store, "c-built:1", &s));
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  int p[2];
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  o.stdout_fd = p[1];
  char cid[256];
  make_id(cid, sizeof cid, prefix, "built");
  struct corral_container *c = NULL;
  OK(corral_run(s, cid, &o, &c));
  close(p[1]);
  struct corral_exit e;
  OK(corral_wait(c, 10000, &e));
  const char *out = read_all(p[0]);
  if (e.kind != CORRAL_EXITED || e.code != 0 || strcmp(out, "built-hi\nhello\n") != 0)
    FAIL("the built image's command: exit %d/%d, output %s", e.kind, e.code, out);
  OK(corral_delete(c, 0));
  corral_container_free(c);
  corral_spec_free(s);
}

/* Tags, the list, removal (refused while a container uses the image) and prune. */
static void tag_list_remove_prune(const char *store, const char *root, const char *prefix) {
  OK(corral_image_tag(store, "c-built:1", "c-built:2"));
  FAILS(corral_image_tag(store, "no-such:1", "c-x:1"), ENOENT);
  FAILS(corral_image_tag(store, "c-built:1", "Bad Tag!"), EINVAL);
  char *json = NULL;
  OK(corral_image_list(store, &json));
  if (json[0] != '[' || !contains(json, "\"reference\":\"c-base:1\"") ||
      !contains(json, "\"reference\":\"c-built:1\"") ||
      !contains(json, "\"reference\":\"c-built:2\"") || !contains(json, "\"size\":"))
    FAIL("list: %s", json);
  corral_string_free(json);
  FAILS(corral_image_list(store, NULL), EINVAL);

  /* A container made from c-base:1 keeps it. */
  struct corral_spec *s = NULL;
  OK(corral_spec_from_image(store, "c-base:1", &s));
  const char *args[] = {"/bin/true"};
  OK(corral_spec_set_args(s, args, 1));
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  char cid[256];
  make_id(cid, sizeof cid, prefix, "user");
  struct corral_container *c = NULL;
  OK(corral_create(s, cid, &o, &c));
  FAILS(corral_image_remove(store, "c-base:1"), EINVAL);
  EXPECT(contains(corral_last_error_message(), cid));
  OK(corral_delete(c, 1));
  corral_container_free(c);
  corral_spec_free(s);

  OK(corral_image_remove(store, "c-built:2"));
  OK(corral_image_list(store, &json));
  EXPECT(!contains(json, "c-built:2") && contains(json, "c-built:1"));
  corral_string_free(json);
  OK(corral_image_remove(store, "c-built:1"));
  OK(corral_image_remove(store, "c-base:1"));
  FAILS(corral_image_remove(store, "c-base:1"), ENOENT);
  OK(corral_image_list(store, &json));
  if (strcmp(json, "[]") != 0)
    FAIL("list after removing every image: %s", json);
  corral_string_free(json);
  OK(corral_image_prune(store, &json));
  if (!contains(json, "\"layers\":") || !contains(json, "\"bytes\":"))
    FAIL("prune: %s", json);
  corral_string_free(json);
  FAILS(corral_image_prune(store, NULL), EINVAL);
}

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *root = argv[2], *prefix = argv[3];
  const char *store = getenv("CORRAL_TEST_STORE");
  EXPECT(store != NULL);
  EXPECT(corral_has_feature("image") == 1);
  import_base(store, argv[1]);
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

  /* Issue 17: an image container keeps every limit it is given (swap and CPU shares were
   * dropped), read inside (cgroup v1 or v2 files). A host without swap accounting says so
   * in the container's warnings instead. */
  OK(corral_spec_from_image(store, "c-base:1", &s));
  const char *lim[] = {"/bin/sh", "-c",
                       "cg=/sys/fs/cgroup; echo $(cat $cg/cpu/cpu.shares 2>/dev/null || "
                       "cat $cg/cpu.weight) $(cat $cg/memory/memory.memsw.limit_in_bytes "
                       "2>/dev/null || cat $cg/memory.swap.max 2>/dev/null)"};
  OK(corral_spec_set_args(s, lim, 3));
  struct corral_limits l;
  corral_limits_init(&l);
  l.memory = 32 << 20;
  l.memory_swap = 64 << 20;
  l.cpu_shares = 512;
  OK(corral_spec_set_limits(s, &l));
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  o.stdout_fd = p[1];
  make_id(id, sizeof id, prefix, "limits");
  OK(corral_run(s, id, &o, &c));
  close(p[1]);
  OK(corral_wait(c, 10000, &e));
  out = read_all(p[0]);
  char *w = NULL;
  OK(corral_warnings(c, &w));
  int v1 = strcmp(out, "512 67108864\n") == 0, v2 = strcmp(out, "20 33554432\n") == 0;
  int no_swap = (strcmp(out, "512\n") == 0 || strcmp(out, "20\n") == 0) &&
                contains(w, "memory_swap");
  if (!v1 && !v2 && !no_swap)
    FAIL("cpu shares and swap of an image container: %s (warnings %s)", out, w);
  corral_string_free(w);
  OK(corral_delete(c, 0));
  corral_container_free(c);
  corral_spec_free(s);

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
  build_and_run(store, root, prefix);
  tag_list_remove_prune(store, root, prefix);
  printf("image: ok\n");
  return 0;
}
