/* Runs `echo` in a container on the demo root filesystem and prints its exit code.
 * Build: cc -Wall -Werror hello.c $(pkg-config --cflags --libs container) -o hello */
#include <container.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
  const char *rootfs = getenv("CORRAL_ROOTFS") ? getenv("CORRAL_ROOTFS") : "target/demo-bundle/rootfs";
  const char *argv[] = {"/bin/echo", "hello from a container"};
  struct corral_spec *spec;
  struct corral_container *c;
  struct corral_exit status;
  char id[64];
  snprintf(id, sizeof id, "example-hello-%ld", (long)getpid());
  if (corral_spec_new(rootfs, &spec) < 0 || corral_spec_set_args(spec, argv, 2) < 0 ||
      corral_run(spec, id, NULL, &c) < 0) {
    fprintf(stderr, "error: %s\n", corral_last_error_message());
    return 1;
  }
  corral_wait(c, -1, &status);
  printf("exit code %d\n", status.code);
  corral_container_free(c); /* removes the container */
  corral_spec_free(spec);
  return status.code;
}
