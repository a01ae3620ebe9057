/* The warnings of a container's set-up and start reach C: none for a plain run, and the
 * one of a startContainer hook that failed (start succeeds, the program does not run). */
#include "check.h"

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  EXPECT(corral_has_feature("warnings") == 1);
  char id[256];
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;

  /* Nothing to say. */
  struct corral_spec *s = sh_spec(rootfs, "exit 0");
  struct corral_container *c = NULL;
  make_id(id, sizeof id, prefix, "quiet");
  OK(corral_run(s, id, &o, &c));
  char *w = NULL;
  OK(corral_warnings(c, &w));
  if (strcmp(w, "[]") != 0)
    FAIL("warnings of a plain run: %s", w);
  corral_string_free(w);
  FAILS(corral_warnings(c, NULL), EINVAL);
  struct corral_exit e;
  OK(corral_wait(c, 10000, &e));
  OK(corral_delete(c, 0));
  FAILS(corral_warnings(c, &w), ENOENT);
  corral_container_free(c);
  FAILS(corral_warnings(c, &w), EBADF);

  /* A failing startContainer hook: the config of a spec with the hook added. */
  corral_spec_free(s);
  s = sh_spec(rootfs, "echo the program ran");
  char *json = NULL;
  OK(corral_spec_to_json(s, &json));
  corral_spec_free(s);
  EXPECT(json[0] == '{');
  const char *hook = "{\"hooks\":{\"startContainer\":[{\"path\":\"/bin/false\"}]},";
  size_t n = strlen(hook) + strlen(json);
  char *text = malloc(n + 1);
  EXPECT(text != NULL);
  snprintf(text, n + 1, "%s%s", hook, json + 1);
  corral_string_free(json);
  OK(corral_spec_from_json(text, NULL, &s));
  free(text);
  int p[2];
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  o.stdout_fd = p[1];
  make_id(id, sizeof id, prefix, "hook");
  OK(corral_run(s, id, &o, &c));
  close(p[1]);
  OK(corral_wait(c, 10000, &e));
  const char *out = read_all(p[0]);
  if (strlen(out) != 0)
    FAIL("the program ran after its startContainer hook failed: %s", out);
  OK(corral_warnings(c, &w));
  if (!contains(w, "error running hook #0") || !contains(w, "did not run") || w[0] != '[')
    FAIL("warnings: %s", w);
  corral_string_free(w);
  OK(corral_delete(c, 0));
  corral_container_free(c);
  corral_spec_free(s);
  printf("warnings: ok\n");
  return 0;
}
