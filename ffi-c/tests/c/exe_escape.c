/* CVE-2019-5736 through the C library: the process that sets a container up is a copy of
 * this program until it runs the container's; an image whose program or exec'd program
 * resolves to /proc/self/exe (a symlink, a #! interpreter, an ELF interpreter) must never run
 * this program inside the container. The harness made the root hostile: a preloaded payload
 * marks /tmp/pwned whenever a dynamically linked program (only this one can be) runs there. */
#include "check.h"

static int pwned(const char *rootfs) {
  char p[4096];
  snprintf(p, sizeof p, "%s/tmp/pwned", rootfs);
  return access(p, F_OK) == 0;
}

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  const char *progs[] = {"/evil", "/script", "/interp"};
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  for (int i = 0; i < 3; i++) {
    char id[256];
    make_id(id, sizeof id, prefix, "exe");
    struct corral_spec *s = NULL;
    OK(corral_spec_new(rootfs, &s));
    OK(corral_spec_set_readonly_root(s, 0));
    /* This program is built with AddressSanitizer, which would refuse to start behind a
     * preloaded library and so hide the attack: let it. */
    OK(corral_spec_set_env(s, "ASAN_OPTIONS", "verify_asan_link_order=0"));
    OK(corral_spec_set_args(s, &progs[i], 1));
    struct corral_container *c = NULL;
    OK(corral_run(s, id, &o, &c));
    struct corral_exit e;
    OK(corral_wait(c, -1, &e));
    if (pwned(rootfs))
      FAIL("%s: this program ran inside the container", progs[i]);
    EXPECT(e.kind == CORRAL_EXITED && e.code == 127);
    OK(corral_delete(c, 1));
    corral_container_free(c);
    corral_spec_free(s);
  }
  char id[256];
  make_id(id, sizeof id, prefix, "exe-x");
  struct corral_spec *s = NULL;
  OK(corral_spec_new(rootfs, &s));
  OK(corral_spec_set_readonly_root(s, 0));
  OK(corral_spec_set_env(s, "ASAN_OPTIONS", "verify_asan_link_order=0"));
  const char *sl[] = {"/bin/sleep", "60"};
  OK(corral_spec_set_args(s, sl, 2));
  struct corral_container *c = NULL;
  OK(corral_run(s, id, &o, &c));
  for (int i = 0; i < 3; i++) {
    struct corral_process *proc = NULL;
    OK(corral_exec(c, &progs[i], 1, NULL, &proc));
    struct corral_exit e;
    OK(corral_process_wait(proc, -1, &e));
    if (pwned(rootfs))
      FAIL("exec %s: this program ran inside the container", progs[i]);
    EXPECT(e.kind == CORRAL_EXITED && e.code == 127);
    corral_process_free(proc);
  }
  OK(corral_delete(c, 1));
  corral_container_free(c);
  corral_spec_free(s);
  printf("exe_escape: ok\n");
  return 0;
}
