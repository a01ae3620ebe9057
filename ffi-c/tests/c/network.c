/* Networking from C: bad arguments refused by name; named networks made, listed and
 * removed; a container on two networks with a published port and rate limits: its
 * attachments as JSON match its interfaces, the port reaches its server, the limits are
 * token buckets here; delete leaves the network free to remove. Runs in a network
 * namespace of its own (ip netns exec), with the store $CORRAL_TEST_STORE. */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

/* The text of `cmd`'s stdout (run here, in the test's namespace). */
static const char *sh_out(const char *cmd) {
  static char buf[65536];
  FILE *f = popen(cmd, "r");
  if (f == NULL)
    FAIL("popen %s", cmd);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  pclose(f);
  return buf;
}

/* The first address (without its prefix) of interface `ifname` in attachments `json`. */
static void address_of(const char *json, const char *ifname, char *out, size_t len) {
  char key[64];
  snprintf(key, sizeof key, "\"ifname\":\"%s\",\"ips\":[\"", ifname);
  const char *p = strstr(json, key);
  if (p == NULL)
    FAIL("no %s in %s", ifname, json);
  p += strlen(key);
  size_t n = strcspn(p, "/\"");
  if (n == 0 || n >= len)
    FAIL("bad address of %s in %s", ifname, json);
  memcpy(out, p, n);
  out[n] = '\0';
}

/* The output of `argv` run in container `c`. */
static const char *exec_out(struct corral_container *c, const char *const *argv, size_t argc) {
  int p[2];
  EXPECT(pipe2(p, O_CLOEXEC) == 0);
  struct corral_exec_options eo;
  corral_exec_options_init(&eo);
  eo.stdout_fd = p[1];
  struct corral_process *proc = NULL;
  OK(corral_exec(c, argv, argc, &eo, &proc));
  close(p[1]);
  struct corral_exit e;
  OK(corral_process_wait(proc, 10000, &e));
  corral_process_free(proc);
  EXPECT(e.kind == CORRAL_EXITED && e.code == 0);
  return read_all(p[0]);
}

static void expect_arg_error(const char *path, const char *in_message) {
  const char *p = corral_last_error_path();
  if (p == NULL || strcmp(p, path) != 0)
    FAIL("error path %s, want %s", p ? p : "NULL", path);
  if (!contains(corral_last_error_message(), in_message))
    FAIL("message %s lacks %s", corral_last_error_message(), in_message);
}

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  const char *rootfs = argv[1], *root = argv[2], *prefix = argv[3];
  const char *store = getenv("CORRAL_TEST_STORE");
  EXPECT(store != NULL);
  EXPECT(corral_has_feature("network") == 1);
  char id[256];
  char *json = NULL;
  struct corral_options o;
  corral_options_init(&o);
  o.root = root;

  /* Bad arguments, each refused naming itself. */
  struct corral_spec *s = sh_spec(rootfs, "exit 0");
  FAILS(corral_spec_add_port(s, "x:80"), EINVAL);
  expect_arg_error("port", "\"x:80\"");
  FAILS(corral_spec_add_port(s, "80/sctp"), EINVAL);
  expect_arg_error("port", "protocol");
  FAILS(corral_spec_add_port(s, "70000:80"), EINVAL);
  expect_arg_error("port", "1-65535");
  FAILS(corral_spec_set_network_rate(s, 10, 0), EINVAL);
  expect_arg_error("ingress_bps", "between 1kbit");
  FAILS(corral_spec_set_network_rate(s, 1000000, UINT64_MAX), EINVAL);
  expect_arg_error("egress_bps", "between 1kbit");
  FAILS(corral_spec_set_network(s, "bogus"), EINVAL);
  expect_arg_error("mode", "\"bogus\"");
  FAILS(corral_spec_add_network(s, "a/b"), EINVAL);
  expect_arg_error("name", "not a network name");
  FAILS(corral_spec_add_network(s, "-x"), EINVAL);
  expect_arg_error("name", "not a network name");
  FAILS(corral_spec_add_network(s, NULL), EINVAL);
  OK(corral_spec_add_network(s, "bridge"));
  FAILS(corral_spec_add_network(s, "bridge"), EEXIST);
  /* A network that does not exist is refused at create, naming it; nothing is left. */
  OK(corral_spec_set_store(s, store));
  OK(corral_spec_add_network(s, "nosuchnet"));
  struct corral_container *c = NULL;
  make_id(id, sizeof id, prefix, "nonet");
  FAILS(corral_run(s, id, &o, &c), ENOENT);
  EXPECT(contains(corral_last_error_message(), "nosuchnet"));
  EXPECT(c == NULL);
  corral_spec_free(s);
  /* Ports (and publish-all) need a network to go through. */
  s = sh_spec(rootfs, "exit 0");
  OK(corral_spec_set_store(s, store));
  OK(corral_spec_set_publish_all(s, 1));
  make_id(id, sizeof id, prefix, "noports");
  FAILS(corral_run(s, id, &o, &c), EINVAL);
  EXPECT(contains(corral_last_error_message(), "need a network"));
  corral_spec_free(s);

  /* Named networks. */
  OK(corral_network_create(store, "faces", "10.90.200.0/24", NULL, &json));
  if (!contains(json, "\"10.90.200.0/24\"") || !contains(json, "\"name\":\"faces\""))
    FAIL("created: %s", json);
  corral_string_free(json);
  FAILS(corral_network_create(store, "faces", NULL, NULL, NULL), EEXIST);
  FAILS(corral_network_create(store, "other", "10.90.300.0/24", NULL, NULL), EINVAL);
  FAILS(corral_network_create(store, "other", NULL, "not-an-ip", NULL), EINVAL);
  expect_arg_error("gateway", "not an IP address");
  OK(corral_network_list(store, &json));
  if (!contains(json, "\"name\":\"bridge\"") || !contains(json, "\"name\":\"faces\""))
    FAIL("list: %s", json);
  corral_string_free(json);
  FAILS(corral_network_remove(store, "nope"), ENOENT);
  FAILS(corral_network_remove(store, "bridge"), EINVAL);

  /* A container on bridge (eth0) and faces (eth1), a port published on a free host
   * port of 127.0.0.1, 10 Mbit/s in and 20 Mbit/s out. */
  s = sh_spec(rootfs, "exec nc -ll -p 80 -e echo published");
  OK(corral_spec_set_store(s, store));
  OK(corral_spec_add_network(s, "bridge"));
  OK(corral_spec_add_network(s, "faces"));
  OK(corral_spec_add_port(s, "127.0.0.1::80"));
  OK(corral_spec_set_network_rate(s, 10000000, 20000000));
  make_id(id, sizeof id, prefix, "web");
  OK(corral_run(s, id, &o, &c));
  OK(corral_attachments_json(c, &json));
  char eth0[64], eth1[64];
  address_of(json, "eth0", eth0, sizeof eth0);
  address_of(json, "eth1", eth1, sizeof eth1);
  if (strncmp(eth0, "10.89.", 6) != 0 || strncmp(eth1, "10.90.200.", 10) != 0)
    FAIL("addresses %s %s in %s", eth0, eth1, json);
  if (!contains(json, "\"network\":\"bridge\"") || !contains(json, "\"gateway\":\"10.89.0.1\"") ||
      !contains(json, "\"container_port\":80") || !contains(json, "\"protocol\":\"tcp\""))
    FAIL("attachments: %s", json);
  const char *hp = strstr(json, "\"host_port\":");
  EXPECT(hp != NULL);
  int host_port = atoi(hp + strlen("\"host_port\":"));
  EXPECT(host_port > 0 && host_port < 65536);
  corral_string_free(json);

  /* The addresses are the interfaces' inside. */
  const char *ip0[] = {"ip", "-o", "-4", "addr", "show", "dev", "eth0"};
  const char *out = exec_out(c, ip0, 7);
  char want[80];
  snprintf(want, sizeof want, "inet %s/", eth0);
  if (!contains(out, want))
    FAIL("eth0 inside: %s, want %s", out, want);
  const char *ip1[] = {"ip", "-o", "-4", "addr", "show", "dev", "eth1"};
  out = exec_out(c, ip1, 7);
  snprintf(want, sizeof want, "inet %s/", eth1);
  if (!contains(out, want))
    FAIL("eth1 inside: %s, want %s", out, want);

  /* The published port reaches the server. */
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)host_port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int tries = 0;
  while (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    /* nc may not listen yet: the container was started a moment ago. */
    if (errno != ECONNREFUSED || ++tries > 200)
      FAIL("connect 127.0.0.1:%d: %s", host_port, strerror(errno));
    close(fd);
    usleep(20000);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  out = read_all(fd);
  if (strcmp(out, "published\n") != 0)
    FAIL("from the published port: %s", out);

  /* The rates are token buckets on this side: one each way per interface. */
  const char *q = sh_out("tc qdisc show");
  int tbf = 0;
  for (const char *p = q; (p = strstr(p, "qdisc tbf")) != NULL; p++)
    tbf++;
  if (tbf != 4 || !contains(q, "rate 10Mbit") || !contains(q, "rate 20Mbit"))
    FAIL("qdiscs: %s", q);

  /* A network a container is on is not removed. */
  FAILS(corral_network_remove(store, "faces"), EBUSY);
  OK(corral_delete(c, 1));
  corral_container_free(c);
  corral_spec_free(s);
  q = sh_out("tc qdisc show");
  if (contains(q, "qdisc tbf"))
    FAIL("qdiscs after delete: %s", q);
  if (sh_out("ip -o link show type veth")[0] != '\0')
    FAIL("veths after delete: %s", sh_out("ip -o link show type veth"));
  OK(corral_network_remove(store, "faces"));

  /* A container opened by id ($CORRAL_STORE is the test's store) has the same
   * attachments, and its delete takes it off its network. */
  s = sh_spec(rootfs, "exec sleep 60");
  OK(corral_spec_set_store(s, store));
  OK(corral_spec_add_network(s, "bridge"));
  make_id(id, sizeof id, prefix, "opened");
  OK(corral_run(s, id, &o, &c));
  char *made_json = NULL;
  OK(corral_attachments_json(c, &made_json));
  OK(corral_detach(c));
  corral_container_free(c);
  OK(corral_open(root, id, &c));
  OK(corral_attachments_json(c, &json));
  if (strcmp(json, made_json) != 0 || !contains(json, "\"ifname\":\"eth0\""))
    FAIL("opened: %s, made: %s", json, made_json);
  corral_string_free(json);
  corral_string_free(made_json);
  OK(corral_delete(c, 1));
  corral_container_free(c);
  corral_spec_free(s);
  if (sh_out("ip -o link show type veth")[0] != '\0')
    FAIL("veths after deleting an opened container: %s", sh_out("ip -o link show type veth"));

  /* A container freed without a delete leaves its network too. */
  s = sh_spec(rootfs, "exec sleep 60");
  OK(corral_spec_set_store(s, store));
  OK(corral_spec_add_network(s, "bridge"));
  make_id(id, sizeof id, prefix, "freed");
  OK(corral_run(s, id, &o, &c));
  if (sh_out("ip -o link show type veth")[0] == '\0')
    FAIL("no veth for a container on bridge");
  corral_container_free(c);
  corral_spec_free(s);
  if (sh_out("ip -o link show type veth")[0] != '\0')
    FAIL("veths after free: %s", sh_out("ip -o link show type veth"));

  /* "none": loopback only, whatever networks were added. */
  s = sh_spec(rootfs, "exec sleep 60");
  OK(corral_spec_set_store(s, store));
  OK(corral_spec_add_network(s, "bridge"));
  OK(corral_spec_set_network(s, "none"));
  make_id(id, sizeof id, prefix, "none");
  OK(corral_run(s, id, &o, &c));
  OK(corral_attachments_json(c, &json));
  if (strcmp(json, "[]") != 0)
    FAIL("attachments of none: %s", json);
  corral_string_free(json);
  const char *links[] = {"ip", "-o", "link"};
  out = exec_out(c, links, 3);
  if (contains(out, "eth0"))
    FAIL("links of none: %s", out);
  OK(corral_delete(c, 1));
  corral_container_free(c);
  corral_spec_free(s);
  printf("network: ok\n");
  return 0;
}
