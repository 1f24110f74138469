/* agent/conf.c: hagent.conf, loaded from files in a temporary directory.
 * conf_load prints its errors to stderr; they show in the test's log. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/conf.h"

struct env {
	char dir[64];
	char path[PATH_MAX]; /* DIR/hagent.conf */
	struct conf c;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/hagent-test-conf.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/hagent.conf", e->dir);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	if (unlink(e->path) < 0)
		assert_int_equal(errno, ENOENT);
	assert_int_equal(rmdir(e->dir), 0);
	free(e);
	return 0;
}

static void write_conf(struct env *e, const char *text)
{
	FILE *f = fopen(e->path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void assert_defaults(const struct conf *c)
{
	char host[64] = "";

	assert_string_equal(c->run_dir, "/run/hagent");
	assert_string_equal(c->state_dir, "/var/lib/hagent");
	assert_string_equal(c->accel, "auto");
	assert_string_equal(c->qemu, QEMU_DEFAULT);
	assert_string_equal(c->guest_dir, "");
	assert_string_equal(c->dump_dir, "");
	assert_string_equal(c->socket_group, "");
	if (gethostname(host, sizeof(host) - 1) == 0)
		assert_string_equal(c->node_name, host);
}

static void test_defaults(void **state)
{
	struct env *e = *state;

	conf_defaults(&e->c);
	assert_defaults(&e->c);
	assert_string_equal(e->c.path, CONF_DEFAULT_PATH);
}

/* A missing file is fine where the default path is meant, an error where the
 * user named it. */
static void test_missing_file(void **state)
{
	struct env *e = *state;

	assert_int_equal(conf_load(&e->c, e->path, false), 0);
	assert_defaults(&e->c);
	assert_string_equal(e->c.path, e->path);

	assert_int_equal(conf_load(&e->c, e->path, true), -1);

	if (access(CONF_DEFAULT_PATH, F_OK) < 0 && errno == ENOENT) {
		assert_int_equal(conf_load(&e->c, NULL, false), 0);
		assert_defaults(&e->c);
		assert_string_equal(e->c.path, CONF_DEFAULT_PATH);
	} else {
		print_message("%s exists: skipping its missing-default check\n", CONF_DEFAULT_PATH);
	}
}

static void test_every_key(void **state)
{
	struct env *e = *state;

	write_conf(e, "# every key hagent.conf knows\n"
		      "node_name = \"node-a\"\n"
		      "run_dir = \"/tmp/hagent-run\"\n"
		      "state_dir = \"/tmp/hagent-state\"\n"
		      "guest_dir = \"/etc/hagent/guests\"\n"
		      "dump_dir = \"/var/crash/hagent\"\n"
		      "qemu = \"/opt/qemu/bin/qemu-system-x86_64\"\n"
		      "accel = \"kvm\"\n"
		      "socket_group = \"hagent\"\n"
		      "migration_address = \"10.0.0.1\"\n"
		      "migration_port = 7800\n"
		      "authkey = \"/etc/hagent/authkey\"\n"
		      "fence_agent = \"/bin/true\"\n"
		      "fence_args = \"ipaddr=10.0.0.5,login=admin\"\n"
		      "fence_timeout = 12\n"
		      "fence_nodes = [ \"n2 /bin/false ipaddr=10.0.0.6\", \"n3 /bin/true\" ]\n"
		      "watchdog = \"/dev/watchdog\"\n"
		      "watchdog_timeout = 7\n"
		      "guest_memory = 2048\n");
	assert_int_equal(conf_load(&e->c, e->path, true), 0);
	assert_string_equal(e->c.path, e->path);
	assert_string_equal(e->c.node_name, "node-a");
	assert_string_equal(e->c.run_dir, "/tmp/hagent-run");
	assert_string_equal(e->c.state_dir, "/tmp/hagent-state");
	assert_string_equal(e->c.guest_dir, "/etc/hagent/guests");
	assert_string_equal(e->c.dump_dir, "/var/crash/hagent");
	assert_string_equal(e->c.qemu, "/opt/qemu/bin/qemu-system-x86_64");
	assert_string_equal(e->c.accel, "kvm");
	assert_string_equal(e->c.socket_group, "hagent");
	assert_int_equal(e->c.fence_timeout_s, 12);
	assert_int_equal(e->c.watchdog_timeout_s, 7);
	assert_int_equal(e->c.guest_memory_mb, 2048);
	assert_string_equal(e->c.watchdog, "/dev/watchdog");
	assert_int_equal(e->c.n_fence_nodes, 2);
}

/* Each node's fence device, else the default agent. */
static void test_fence_for(void **state)
{
	struct env *e = *state;
	const char *agent, *args;

	write_conf(e, "fence_agent = \"/bin/true\"\nfence_args = \"a=1\"\n"
		      "fence_nodes = [ \"n2 /bin/false ip=10.0.0.6,login=x\" ]\n");
	assert_int_equal(conf_load(&e->c, e->path, true), 0);
	assert_true(conf_fence_for(&e->c, "n2", &agent, &args));
	assert_string_equal(agent, "/bin/false");
	assert_string_equal(args, "ip=10.0.0.6,login=x");
	assert_true(conf_fence_for(&e->c, "n1", &agent, &args));
	assert_string_equal(agent, "/bin/true");
	assert_string_equal(args, "a=1");
	/* no default: only n2 has one */
	write_conf(e, "fence_nodes = [ \"n2 /bin/false\" ]\n");
	assert_int_equal(conf_load(&e->c, e->path, true), 0);
	assert_false(conf_fence_for(&e->c, "n1", &agent, &args));
	assert_true(conf_fence_for(&e->c, "n2", &agent, &args));
	assert_string_equal(args, "");
}

/* A fence agent that does not exist, a malformed or repeated fence_nodes
 * entry, numbers out of range: each an error. */
static void test_bad_fencing(void **state)
{
	struct env *e = *state;

	write_conf(e, "fence_agent = \"/nonexistent/fence_x\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "fence_agent = \"fence_surely_not_installed\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "fence_nodes = [ \"n2\" ]\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "fence_nodes = [ \"n2 /nonexistent/agent\" ]\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "fence_nodes = [ \"n2 /bin/true\", \"n2 /bin/false\" ]\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "fence_timeout = 0\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "fence_timeout = \"ten\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "watchdog_timeout = 1\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "guest_memory = -5\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
}

static void test_partial_keeps_defaults(void **state)
{
	struct env *e = *state;

	write_conf(e, "accel = \"tcg\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), 0);
	assert_string_equal(e->c.accel, "tcg");
	assert_string_equal(e->c.run_dir, "/run/hagent");
	assert_string_equal(e->c.state_dir, "/var/lib/hagent");

	write_conf(e, "# nothing\n");
	assert_int_equal(conf_load(&e->c, e->path, true), 0);
	assert_defaults(&e->c);
}

static void test_migration_port_number(void **state)
{
	struct env *e = *state;

	write_conf(e, "migration_port = 7800\n");
	assert_int_equal(conf_load(&e->c, e->path, true), 0);
	write_conf(e, "migration_port = \"7800\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), 0);
}

static void test_migration_transport(void **state)
{
	struct env *e = *state;

	write_conf(e, "migration_transport = \"qemu-tls\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), 0);
	assert_string_equal(e->c.migration_transport, "qemu-tls");
	write_conf(e, "migration_transport = \"plaintext\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), 0);
	write_conf(e, "migration_transport = \"ssl\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
}

static void test_bad_accel(void **state)
{
	struct env *e = *state;

	write_conf(e, "accel = \"hvf\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "accel = \"\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
}

static void test_relative_dirs(void **state)
{
	struct env *e = *state;

	write_conf(e, "run_dir = \"run/hagent\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "state_dir = \"var/lib/hagent\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
}

static void test_bad_values(void **state)
{
	struct env *e = *state;

	/* a list where a string belongs */
	write_conf(e, "qemu = [ \"/usr/bin/qemu\" ]\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	/* longer than the field */
	write_conf(e, "accel = \"tcgtcgtcgtcgtcgtcg\"\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	/* not the key = value syntax */
	write_conf(e, "run_dir = \"/run/hagent\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
	write_conf(e, "this is not a config\n");
	assert_int_equal(conf_load(&e->c, e->path, true), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_keeps_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_port_number, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_transport, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_accel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_for, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_fencing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
