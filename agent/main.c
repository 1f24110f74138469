/* hagentd: supervises this host's guests.  The life of the daemon, in order:
 * read the configuration, take the pid lock, load the stored guests, open the
 * control socket, re-attach to the guests that kept running, tell systemd we
 * are ready, run the loop; on SIGTERM let go of every guest (they keep
 * running) and exit. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "agent/cluster.h"
#include "agent/conf.h"
#include "agent/control.h"
#include "agent/guests.h"
#include "agent/peerfence.h"
#include "agent/storage.h"
#include "lib/storage_host.h"
#include "agent/store.h"
#include "agent/supervise.h"
#include "agent/watchdog.h"
#include "lib/fsutil.h"
#include "migrate/job.h"
#include "lib/log.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hagentd [-f] [-d] [-n] [-c FILE]\n"
		   "  -f       stay in the foreground, log to stderr\n"
		   "  -d       debug logging\n"
		   "  -n       check the configuration and every guest file, then exit 0/1\n"
		   "  -c FILE  configuration file (default %s)\n",
		CONF_DEFAULT_PATH);
}

/* -n: the config parsed already; check every stored guest and guest_dir file. */
static int check_file(struct hagentd *d, const char *path)
{
	struct guestcfg_diags *diags = calloc(1, sizeof(*diags));
	struct guest_cfg *cfg = calloc(1, sizeof(*cfg));
	char line[600];
	int i, rc = -1;

	if (!diags || !cfg)
		goto out;
	if (guestcfg_parse_file(path, cfg, diags) == 0) {
		const struct driver_ops *ops = driver_lookup(cfg->driver);
		if (!ops)
			guestcfg_diag_add(diags, DIAG_ERROR, 0, "ha_driver",
					  "driver '%s' is not available on host %s", cfg->driver,
					  d->conf.node_name);
		else if (ops->check)
			ops->check(cfg, diags);
		guestcfg_check_host(cfg, diags);
		stor_check_cfg(cfg, diags);
	}
	for (i = 0; i < diags->n; i++) {
		guestcfg_diag_format(&diags->d[i], path, line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
	rc = diags->n_errors ? -1 : 0;
out:
	free(diags);
	free(cfg);
	return rc;
}

static int check_dir(struct hagentd *d, const char *dir, const char *suffix)
{
	struct dirent *de;
	DIR *dh = opendir(dir);
	int rc = 0;

	if (!dh)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(dh))) {
		size_t n = strlen(de->d_name), s = strlen(suffix);
		char path[PATH_MAX];
		if (n <= s || strcmp(de->d_name + n - s, suffix) ||
		    fs_path(path, sizeof(path), "%s/%s", dir, de->d_name) < 0)
			continue;
		if (check_file(d, path) < 0)
			rc = -1;
	}
	closedir(dh);
	return rc;
}

static int check_only(struct hagentd *d)
{
	char dir[PATH_MAX];
	int rc = 0;

	if (fs_path(dir, sizeof(dir), "%s/guests", d->conf.state_dir) == 0 &&
	    check_dir(d, dir, ".cfg") < 0)
		rc = -1;
	if (d->conf.guest_dir[0] && check_dir(d, d->conf.guest_dir, ".cfg") < 0)
		rc = -1;
	printf("%s: %s\n", d->conf.path, rc ? "errors found" : "ok");
	return rc;
}

/* One hagentd per run_dir: an flock'ed pid file. */
static int take_pid_lock(struct hagentd *d)
{
	char path[PATH_MAX], buf[32];
	int fd, n;

	if (fs_path(path, sizeof(path), "%s/hagentd.pid", d->conf.run_dir) < 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		errno = EBUSY;
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)n) != n)
		log_warn("cannot write %s: %s", path, strerror(errno));
	return fd; /* held open (and locked) for the daemon's life */
}

static int32_t on_signal(int32_t sig, void *arg)
{
	struct hagentd *d = arg;

	log_notice("signal %d: exiting, guests keep running", sig);
	d->exiting = true;
	qb_loop_stop(d->loop);
	return 0;
}

static uint64_t sd_watchdog_usec;

static void sd_watchdog_kick(void *arg)
{
	struct hagentd *d = arg;
	qb_loop_timer_handle th;

	sd_notify(0, "WATCHDOG=1");
	qb_loop_timer_add(d->loop, QB_LOOP_HIGH, sd_watchdog_usec * 1000 / 2, d, sd_watchdog_kick,
			  &th);
}

int main(int argc, char **argv)
{
	static struct hagentd daemon_ctx;
	struct hagentd *d = &daemon_ctx;
	const char *conf_path = NULL;
	bool check = false;
	struct guest *g, *tmp;
	int opt, lockfd;
	char why[256];

	while ((opt = getopt(argc, argv, "fdnc:h")) != -1) {
		switch (opt) {
		case 'f': d->foreground = true; break;
		case 'd': d->debug = true; break;
		case 'n': check = true; break;
		case 'c': conf_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_setup("hagentd", d->foreground || check, d->debug);
	if (conf_load(&d->conf, conf_path, conf_path != NULL) < 0)
		return 1;
	if (!d->conf.dump_dir[0])
		snprintf(d->conf.dump_dir, sizeof(d->conf.dump_dir), "%.*s/dump",
			 (int)sizeof(d->conf.dump_dir) - 6, d->conf.state_dir);
	/* a guest file without ha_driver runs under this host's hypervisor */
	guestcfg_set_default_driver(driver_host_default());
	if (check)
		return check_only(d) < 0 ? 1 : 0;

	signal(SIGPIPE, SIG_IGN);
	if (fs_mkdir_p(d->conf.run_dir, 0750) < 0 || fs_mkdir_p(d->conf.state_dir, 0700) < 0 ||
	    fs_mkdir_p(d->conf.dump_dir, 0700) < 0 || store_init(d) < 0) {
		log_err("cannot create %s / %s: %s", d->conf.run_dir, d->conf.state_dir,
			strerror(errno));
		return 1;
	}
	lockfd = take_pid_lock(d);
	if (lockfd < 0) {
		log_err("another hagentd runs with run_dir %s (%s)", d->conf.run_dir, strerror(errno));
		return 1;
	}
	d->loop = qb_loop_create();
	if (!d->loop)
		return 1;
	qb_list_init(&d->guests);
	d->drv = (struct drv_host){
		.loop = d->loop,
		.node = d->conf.node_name,
		.run_dir = d->conf.run_dir,
		.qemu_binary = d->conf.qemu,
		.accel = d->conf.accel,
		.dump_dir = d->conf.dump_dir,
		.qmp_observer = d->conf.qmp_observer != 0,
		.event = supervise_drv_event,
	};
	if (qemu_driver_ops.available(&d->drv, why, sizeof(why)) < 0)
		log_warn("qemu driver unavailable on %s: %s", d->conf.node_name, why);
	store_load_standby(d);
	if (store_load_all(d) < 0) {
		log_err("cannot read stored guests in %s: %s", d->conf.state_dir, strerror(errno));
		return 1;
	}
	if (control_listen(d) < 0) {
		log_err("cannot open control socket in %s: %s", d->conf.run_dir, strerror(errno));
		return 1;
	}
	if (cluster_start(d) < 0) {
		log_err("cannot set up the cluster layer: %s", strerror(errno));
		return 1;
	}
	guests_for_each(g, d) {
		/* an incoming copy a dead hagentd left: with a cluster, the
		 * guest itself if a commit made this host its owner (decided
		 * after the sync); else it never ran the guest */
		if (g->ops->incoming_alive && g->ops->incoming_alive(&d->drv, g->cfg.name)) {
			if (strcmp(d->conf.cluster, "none"))
				g->incoming_left = true;
			else
				g->ops->discard_incoming(&d->drv, g->cfg.name);
		}
		supervise_resume(g);
	}
	/* a cluster host takes migrations; without the key it runs on and
	 * refuses them, saying why */
	if (strcmp(d->conf.cluster, "none"))
		(void)migrate_init(d);
	storage_monitor_start(d);
	if (watchdog_start(d, why, sizeof(why)) < 0) {
		fprintf(stderr, "hagentd: %s\n", why);
		log_err("%s: refusing to run guests without the self-fencing it promises", why);
		return 1;
	}

	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGTERM, d, on_signal, NULL);
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGINT, d, on_signal, NULL);
	if (sd_watchdog_enabled(0, &sd_watchdog_usec) > 0)
		sd_watchdog_kick(d);
	log_notice("hagentd ready on %s: %d guests, control %s/hagentd.sock", d->conf.node_name,
		   d->n_guests, d->conf.run_dir);
	sd_notify(0, "READY=1");

	qb_loop_run(d->loop);

	sd_notify(0, "STOPPING=1");
	watchdog_stop(d);
	storage_monitor_stop(d);
	storage_shutdown(d);
	peerfence_shutdown(d);
	migrate_fini(d);
	cluster_stop(d);
	control_close(d);
	qb_list_for_each_entry_safe(g, tmp, &d->guests, list) {
		supervise_detach(g);
		guests_unlink(d, g);
		guests_free(g);
	}
	qb_loop_destroy(d->loop);
	close(lockfd);
	log_teardown();
	return 0;
}
