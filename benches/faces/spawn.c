/* The whole spawn through the C ABI: corral_run + corral_wait + corral_delete of /bin/true on
 * ROOTFS with memory, pids and cpu limits, N times; prints one duration (ms) per line.
 * Built and run by scripts/bench.sh. */
#include <container.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s ROOTFS STATE_ROOT N\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[3]);
  struct corral_spec *s;
  const char *args[] = {"/bin/true"};
  struct corral_limits l;
  corral_limits_init(&l);
  l.memory = 64 << 20;
  l.pids = 64;
  l.cpus = 0.5;
  if (corral_spec_new(argv[1], &s) < 0 || corral_spec_set_args(s, args, 1) < 0 ||
      corral_spec_set_limits(s, &l) < 0) {
    fprintf(stderr, "spec: %s\n", corral_last_error_message());
    return 1;
  }
  struct corral_options o;
  corral_options_init(&o);
  o.root = argv[2];
  for (int i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "bench-c-%ld-%d", (long)getpid(), i);
    double t0 = now_ms();
    struct corral_container *c;
    struct corral_exit e;
    if (corral_run(s, id, &o, &c) < 0 || corral_wait(c, -1, &e) < 0 || corral_delete(c, 0) < 0) {
      fprintf(stderr, "%s: %s\n", id, corral_last_error_message());
      return 1;
    }
    printf("%.4f\n", now_ms() - t0);
    corral_container_free(c);
  }
  corral_spec_free(s);
  return 0;
}
