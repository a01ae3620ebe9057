/* A config whose seccomp profile predates the runtime's own syscalls (the harness passes it
 * in CORRAL_TEST_SECCOMP: everything from Linux 5.1 on refused with EPERM): the container and
 * an exec'd process run, each with a cwd other than /, without noNewPrivileges. */
#include "check.h"

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  const char *profile = getenv("CORRAL_TEST_SECCOMP");
  EXPECT(profile != NULL);
  char id[256];
  make_id(id, sizeof id, prefix, "oldsc");
  static char json[65536];
  int n = snprintf(json, sizeof json,
                   "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"%s\",\"readonly\":true},"
                   "\"process\":{\"args\":[\"/bin/sh\",\"-c\",\"pwd; exec sleep 60\"],"
                   "\"cwd\":\"/tmp\",\"env\":[\"PATH=/bin\"],\"user\":{\"uid\":0,\"gid\":0},"
                   "\"noNewPrivileges\":false},"
                   "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"}],"
                   "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"},"
                   "{\"type\":\"ipc\"},{\"type\":\"uts\"}],\"seccomp\":%s}}",
                   rootfs, profile);
  EXPECT(n > 0 && (size_t)n < sizeof json);
  struct corral_spec *s = NULL;
  OK(corral_spec_from_json(json, root, &s));
  int p[2];
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  o.stdout_fd = p[1];
  struct corral_container *c = NULL;
  OK(corral_run(s, id, &o, &c));
  close(p[1]);
  char line[64] = {0};
  EXPECT(read(p[0], line, sizeof line - 1) > 0);
  close(p[0]);
  if (strcmp(line, "/tmp\n") != 0)
    FAIL("init's cwd %s", line);

  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  struct corral_exec_options eo;
  corral_exec_options_init(&eo);
  eo.cwd = "/etc";
  eo.stdout_fd = p[1];
  const char *args[] = {"/bin/sh", "-c", "pwd; grep ^Seccomp: /proc/self/status"};
  struct corral_process *proc = NULL;
  OK(corral_exec(c, args, 3, &eo, &proc));
  close(p[1]);
  struct corral_exit e;
  OK(corral_process_wait(proc, -1, &e));
  EXPECT(e.kind == CORRAL_EXITED && e.code == 0);
  const char *out = read_all(p[0]);
  if (strcmp(out, "/etc\nSeccomp:\t2\n") != 0)
    FAIL("exec output %s", out);
  corral_process_free(proc);

  OK(corral_delete(c, 1));
  corral_container_free(c);
  corral_spec_free(s);
  printf("old_seccomp: ok\n");
  return 0;
}
