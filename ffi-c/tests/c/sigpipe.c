/* A C program leaves SIGPIPE at its default (death): the library must not die of one when
 * what it writes to is gone. A createRuntime hook that exits without reading the state on
 * its stdin (a state bigger than a pipe holds, so the writes outlive the hook) is an EPIPE
 * for the library, not the end of this program. */
#include "check.h"

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  EXPECT(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
  char id[256];
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  struct corral_spec *s = sh_spec(rootfs, "exit 0");
  char *json = NULL;
  OK(corral_spec_to_json(s, &json));
  corral_spec_free(s);
  EXPECT(json[0] == '{' && !contains(json, "\"annotations\""));
  /* 256 KiB of annotation: the state JSON the hook is given. */
  size_t big = 256 << 10;
  const char *head = "{\"hooks\":{\"createRuntime\":[{\"path\":\"/bin/true\"}]},"
                     "\"annotations\":{\"big\":\"";
  size_t n = strlen(head) + big + 3 + strlen(json);
  char *text = malloc(n + 1);
  EXPECT(text != NULL);
  size_t at = (size_t)snprintf(text, n + 1, "%s", head);
  memset(text + at, 'x', big);
  at += big;
  snprintf(text + at, n + 1 - at, "\"},%s", json + 1);
  corral_string_free(json);
  OK(corral_spec_from_json(text, NULL, &s));
  free(text);
  struct corral_container *c = NULL;
  make_id(id, sizeof id, prefix, "pipe");
  OK(corral_run(s, id, &o, &c));
  struct corral_exit e;
  OK(corral_wait(c, 10000, &e));
  EXPECT(e.kind == CORRAL_EXITED && e.code == 0);
  OK(corral_delete(c, 0));
  corral_container_free(c);
  corral_spec_free(s);
  printf("sigpipe: ok\n");
  return 0;
}
