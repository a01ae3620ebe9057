/* 8 threads spawning containers at once (1,000 in all by default): no deadlock, every one
 * exits 0, and no fd is left behind. The harness checks mounts, cgroups and state dirs;
 * AddressSanitizer's leak check covers memory. */
#include "check.h"
#include <pthread.h>

#define THREADS 8

struct job {
  const char *rootfs, *root, *prefix;
  int index, count, failures;
};

static void *worker(void *arg) {
  struct job *j = arg;
  struct corral_spec *s = NULL;
  if (corral_spec_new(j->rootfs, &s) != 0) {
    j->failures = j->count;
    return NULL;
  }
  const char *args[] = {"/bin/true"};
  corral_spec_set_args(s, args, 1);
  struct corral_options o;
  corral_options_init(&o);
  o.root = j->root;
  for (int i = 0; i < j->count; i++) {
    char id[256];
    snprintf(id, sizeof id, "%s-t%d-%d", j->prefix, j->index, i);
    struct corral_container *c = NULL;
    struct corral_exit e;
    if (corral_run(s, id, &o, &c) != 0) {
      fprintf(stderr, "%s: %s\n", id, corral_last_error_message());
      j->failures++;
      continue;
    }
    if (corral_wait(c, 60000, &e) != 0 || e.kind != CORRAL_EXITED || e.code != 0) {
      fprintf(stderr, "%s: wait: %s\n", id, corral_last_error_message());
      j->failures++;
    }
    if (corral_delete(c, 1) != 0) {
      fprintf(stderr, "%s: delete: %s\n", id, corral_last_error_message());
      j->failures++;
    }
    corral_container_free(c);
  }
  corral_spec_free(s);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  int total = getenv("CORRAL_C_THREADS_TOTAL") ? atoi(getenv("CORRAL_C_THREADS_TOTAL")) : 1000;
  int fds_before = count_fds();
  pthread_t th[THREADS];
  struct job jobs[THREADS];
  for (int i = 0; i < THREADS; i++) {
    jobs[i] = (struct job){argv[1], argv[2], argv[3], i,
                           total / THREADS + (i < total % THREADS), 0};
    EXPECT(pthread_create(&th[i], NULL, worker, &jobs[i]) == 0);
  }
  int failures = 0;
  for (int i = 0; i < THREADS; i++) {
    EXPECT(pthread_join(th[i], NULL) == 0);
    failures += jobs[i].failures;
  }
  if (failures)
    FAIL("%d of %d failed", failures, total);
  int fds_after = count_fds();
  if (fds_after != fds_before)
    FAIL("fds: %d before, %d after", fds_before, fds_after);
  char *list = NULL;
  OK(corral_list(argv[2], &list));
  if (strcmp(list, "[]") != 0)
    FAIL("left: %s", list);
  corral_string_free(list);
  printf("threads: %d containers from %d threads: ok\n", total, THREADS);
  return 0;
}
