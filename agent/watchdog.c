#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/watchdog.h>

#include "agent/cluster.h"
#include "agent/guests.h"
#include "agent/timeouts.h"
#include "agent/watchdog.h"
#include "lib/log.h"

struct watchdog {
	struct hagentd *d;
	int fd;              /* open = armed; -1 = disarmed */
	bool fifo;           /* a test double (tests/lab/softdog_lab), not a driver */
	unsigned timeout_s;  /* effective: what the device accepted */
	qb_loop_timer_handle timer;
	bool timer_armed;
	uint64_t last_kick_ms;
	bool starving;       /* holding guests without quorum: not fed */
};

static struct watchdog *wd_of(struct hagentd *d)
{
	return d->watchdog;
}

static bool holding(struct hagentd *d)
{
	struct guest *g;

	guests_for_each(g, d)
		if (g->h)
			return true;
	return false;
}

static bool in_cluster(struct hagentd *d)
{
	const struct cluster_view *v = cluster_view(d);

	return v && v->enabled;
}

static bool quorate(struct hagentd *d)
{
	const struct cluster_view *v = cluster_view(d);

	return v && v->enabled && v->quorate;
}

/* Open the device and give it our timeout.  A watchdog driver takes
 * WDIOC_SETTIMEOUT (some only report theirs: then that one is used); a FIFO
 * is the lab's stand-in for softdog, whose timeout its reader was given. */
static int wd_open(struct watchdog *w, char *err, size_t errlen)
{
	const char *path = w->d->conf.watchdog;
	int t = (int)w->d->conf.watchdog_timeout_s;
	struct stat st;

	w->fd = open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
	if (w->fd < 0) {
		snprintf(err, errlen, "watchdog %s: %s%s", path, strerror(errno),
			 errno == ENXIO ? " (a FIFO without its reader)" : "");
		return -1;
	}
	if (fstat(w->fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
		w->fifo = true;
		w->timeout_s = (unsigned)t;
		return 0;
	}
	if (ioctl(w->fd, WDIOC_SETTIMEOUT, &t) < 0 &&
	    ioctl(w->fd, WDIOC_GETTIMEOUT, &t) < 0) {
		snprintf(err, errlen, "watchdog %s: not a watchdog device (%s)", path,
			 strerror(errno));
		/* not a watchdog: closing it resets nothing */
		close(w->fd);
		w->fd = -1;
		return -1;
	}
	if (t <= 0) {
		snprintf(err, errlen, "watchdog %s: reports a timeout of %d s", path, t);
		if (write(w->fd, "V", 1) < 0) { /* magic close: disarm */
		}
		close(w->fd);
		w->fd = -1;
		return -1;
	}
	if ((unsigned)t != (unsigned)w->d->conf.watchdog_timeout_s && !w->timeout_s)
		log_warn("watchdog %s: the device uses %d s, not watchdog_timeout %ld s", path, t,
			 w->d->conf.watchdog_timeout_s);
	w->timeout_s = (unsigned)t;
	return 0;
}

static void kick(struct watchdog *w)
{
	if (write(w->fd, "k", 1) < 0 && errno != EAGAIN) {
		log_err("watchdog %s: keepalive failed: %s", w->d->conf.watchdog, strerror(errno));
		return;
	}
	w->last_kick_ms = now_ms();
}

/* Disarm: the magic character, then close.  Only with no guest held. */
static void disarm(struct watchdog *w, const char *why)
{
	if (w->fd < 0)
		return;
	if (write(w->fd, "V", 1) < 0)
		log_warn("watchdog %s: magic close failed: %s", w->d->conf.watchdog,
			 strerror(errno));
	close(w->fd);
	w->fd = -1;
	w->starving = false;
	log_notice("watchdog %s: disarmed (%s)", w->d->conf.watchdog, why);
}

static void tick(void *arg);

static void schedule(struct watchdog *w)
{
	if (w->timer_armed)
		return;
	if (qb_loop_timer_add(w->d->loop, QB_LOOP_HIGH,
			      (uint64_t)TO_WATCHDOG_KICK_MS(w->timeout_s) * 1000000ULL, w, tick,
			      &w->timer) == 0)
		w->timer_armed = true;
}

/* Every K ms while open: feed it while quorate and holding guests; disarm
 * once nothing is held; otherwise let it run down. */
static void tick(void *arg)
{
	struct watchdog *w = arg;
	struct hagentd *d = w->d;

	w->timer_armed = false;
	if (w->fd < 0)
		return;
	if (!holding(d)) {
		disarm(w, "this host holds no guest");
		return;
	}
	if (quorate(d)) {
		if (w->starving)
			log_notice("watchdog %s: quorate again, feeding it", d->conf.watchdog);
		w->starving = false;
		kick(w);
	} else if (!w->starving) {
		w->starving = true;
		log_crit("watchdog %s: holding guests without quorum: no more keepalives; "
			 "this host resets in %u s unless its guests are gone first",
			 d->conf.watchdog,
			 (unsigned)((w->last_kick_ms + w->timeout_s * 1000ULL - now_ms()) / 1000));
	}
	schedule(w);
}

int watchdog_arm(struct hagentd *d, char *err, size_t errlen)
{
	struct watchdog *w = wd_of(d);

	if (!w || w->fd >= 0 || !in_cluster(d))
		return 0; /* none, already armed, or a single host: nobody to fence for */
	if (wd_open(w, err, errlen) < 0) {
		log_err("%s", err);
		return -1;
	}
	kick(w);
	log_notice("watchdog %s: armed, %u s (keepalive every %u ms while quorate)",
		   d->conf.watchdog, w->timeout_s, TO_WATCHDOG_KICK_MS(w->timeout_s));
	schedule(w);
	return 0;
}

int watchdog_start(struct hagentd *d, char *err, size_t errlen)
{
	struct watchdog *w;

	if (!d->conf.watchdog[0])
		return 0;
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w->d = d;
	w->fd = -1;
	d->watchdog = w;
	/* Try the device once now: a wrong path is found at start, not at the
	 * first guest.  A driver is left disarmed at once (magic close). */
	if (wd_open(w, err, errlen) < 0) {
		d->watchdog = NULL;
		free(w);
		return -1;
	}
	/* Called once re-attached guests are known.  Holding some means a
	 * previous hagentd may have left the device running down: keep it open,
	 * and feed it once quorum is known.  Never disarm while guests run in a
	 * cluster, even one whose corosync is not reachable yet. */
	if (holding(d) && (in_cluster(d) || !strcmp(d->conf.cluster, "corosync")))
		schedule(w);
	else
		disarm(w, "checked at start; armed when a guest runs");
	log_notice("watchdog %s: self-fencing within %u s%s", d->conf.watchdog, w->timeout_s,
		   w->fifo ? " (a FIFO: the lab's softdog stand-in)" : "");
	return 0;
}

unsigned watchdog_timeout(struct hagentd *d)
{
	struct watchdog *w = wd_of(d);

	return w ? (w->timeout_s ? w->timeout_s : (unsigned)d->conf.watchdog_timeout_s) : 0;
}

bool watchdog_armed(struct hagentd *d)
{
	struct watchdog *w = wd_of(d);

	return w && w->fd >= 0;
}

void watchdog_stop(struct hagentd *d)
{
	struct watchdog *w = wd_of(d);

	if (!w)
		return;
	if (w->timer_armed)
		qb_loop_timer_del(d->loop, w->timer);
	if (w->fd >= 0 && holding(d)) {
		log_crit("watchdog %s: left armed with guests running: this host resets in "
			 "%u s unless hagentd is back by then",
			 d->conf.watchdog, w->timeout_s);
		close(w->fd);
	} else {
		disarm(w, "hagentd stops");
	}
	free(w);
	d->watchdog = NULL;
}
