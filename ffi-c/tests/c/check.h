/* Helpers shared by the C tests of libcontainer. Each test program takes
 * ROOTFS STATE_ROOT ID_PREFIX and exits 0 when every check held. */
#ifndef CHECK_H
#define CHECK_H

#include <container.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                            \
    fprintf(stderr, __VA_ARGS__);                                              \
    fprintf(stderr, "\n  last error: %d %s (step %s, path %s)\n",              \
            corral_last_error_code(),                                          \
            corral_last_error_message() ? corral_last_error_message() : "-",   \
            corral_last_error_step() ? corral_last_error_step() : "-",         \
            corral_last_error_path() ? corral_last_error_path() : "-");        \
    exit(1);                                                                   \
  } while (0)

/* A call that must succeed. */
#define OK(call)                                                               \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ != 0)                                                              \
      FAIL("%s returned %d", #call, rc_);                                      \
  } while (0)

/* A call that must fail with -err. */
#define FAILS(call, err)                                                       \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ != -(err))                                                         \
      FAIL("%s returned %d, want -%s (%d)", #call, rc_, #err, -(err));         \
    if (corral_last_error_code() != -(err))                                    \
      FAIL("%s: last error code %d, want %d", #call,                           \
           corral_last_error_code(), -(err));                                  \
  } while (0)

#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond))                                                               \
      FAIL("expected %s", #cond);                                              \
  } while (0)

static inline int contains(const char *hay, const char *needle) {
  return hay != NULL && strstr(hay, needle) != NULL;
}

/* Reads all of fd (closed after) into a static buffer. */
static inline const char *read_all(int fd) {
  static char buf[65536];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
    if (n == sizeof buf - 1)
      break;
  }
  buf[n] = '\0';
  close(fd);
  return buf;
}

/* A spec on ROOTFS running /bin/sh -c SCRIPT. */
static inline struct corral_spec *sh_spec(const char *rootfs, const char *script) {
  struct corral_spec *s = NULL;
  OK(corral_spec_new(rootfs, &s));
  const char *argv[] = {"/bin/sh", "-c", script};
  OK(corral_spec_set_args(s, argv, 3));
  return s;
}

static inline void make_id(char *buf, size_t len, const char *prefix, const char *what) {
  snprintf(buf, len, "%s-%s", prefix, what);
}

static inline int count_fds(void) {
  int n = 0;
  for (int fd = 0; fd < 4096; fd++)
    if (fcntl(fd, F_GETFD) >= 0)
      n++;
  return n;
}

#endif
