/* exec into a running container: its output, env, user, cwd and exit code. */
#include "check.h"

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  char id[256];
  make_id(id, sizeof id, prefix, "exec");
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;
  struct corral_spec *s = sh_spec(rootfs, "echo inside > /tmp/mark; exec sleep 60");
  OK(corral_spec_set_env(s, "FROM_SPEC", "spec"));
  OK(corral_spec_add_mount(s, "tmpfs", "/tmp", "tmpfs", "nosuid,nodev"));
  struct corral_container *c = NULL;
  OK(corral_run(s, id, &o, &c));

  int p[2];
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  struct corral_exec_options eo;
  corral_exec_options_init(&eo);
  const char *env[] = {"FOO=bar"};
  eo.env = env;
  eo.env_len = 1;
  eo.cwd = "/tmp";
  eo.uid = 1000;
  eo.gid = 1000;
  eo.stdout_fd = p[1];
  const char *args[] = {"/bin/sh", "-c",
                        "sleep 0.2; echo $FOO $FROM_SPEC $(id -u):$(id -g) $(pwd) $(cat mark); exit 5"};
  struct corral_process *proc = NULL;
  OK(corral_exec(c, args, 3, &eo, &proc));
  close(p[1]);
  int ppid = 0;
  OK(corral_process_pid(proc, &ppid));
  EXPECT(ppid > 1);
  struct corral_exit e;
  FAILS(corral_process_wait(proc, 10, &e), ETIMEDOUT);
  OK(corral_process_wait(proc, -1, &e));
  EXPECT(e.kind == CORRAL_EXITED && e.code == 5);
  const char *out = read_all(p[0]);
  if (strcmp(out, "bar spec 1000:1000 /tmp inside\n") != 0)
    FAIL("exec output %s", out);
  corral_process_free(proc);

  /* A long one, killed through its handle. */
  const char *sl[] = {"/bin/sleep", "60"};
  OK(corral_exec(c, sl, 2, NULL, &proc));
  OK(corral_process_kill(proc, SIGKILL));
  OK(corral_process_wait(proc, 10000, &e));
  EXPECT(e.kind == CORRAL_SIGNALED && e.signal == SIGKILL);
  corral_process_free(proc);

  /* A program that does not exist in the container. */
  const char *bad[] = {"/no/such/thing"};
  FAILS(corral_exec(c, bad, 1, NULL, &proc), ENOENT);
  EXPECT(contains(corral_last_error_message(), "/no/such/thing"));

  OK(corral_delete(c, 1));
  corral_container_free(c);
  /* exec into a deleted container. */
  corral_spec_free(s);
  printf("exec: ok\n");
  return 0;
}
