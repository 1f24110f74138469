/* A guest's storage jobs: see storage.h.  The child runs lib/storage_host.c's
 * steps over the guest's disks in order and writes one line per result:
 *   dev I PATH      disk I's device (prepare)
 *   ok              every step done
 *   err MESSAGE     a step failed; what the job had done is undone
 * The parent reads them from the pipe in the loop; a deadline kills the
 * child (every tool in it has its own, shorter one). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/guests.h"
#include "agent/storage.h"
#include "agent/supervise.h"
#include "agent/timeouts.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/storage_host.h"

/* how long a window's close waits for the peer to let go (within the job's
 * deadline, TO_STORAGE_JOB_S) */
#define WINDOW_CLOSE_WAIT_MS 90000

struct storjob {
	struct hagentd *d;
	char name[GUEST_NAME_MAX];
	enum storage_op op;
	storage_done_fn done;
	pid_t pid;
	int fd;
	qb_loop_timer_handle timer;
	bool timer_armed;
	bool timed_out;
	uint64_t started_ms;
	char out[4096];
	size_t used;
};

static const char *const op_names[] = {
	[STORAGE_PREPARE] = "activate",
	[STORAGE_PREPARE_SHARED] = "activate (shared, for a migration)",
	[STORAGE_RELEASE] = "release",
	[STORAGE_WINDOW_OPEN] = "open the migration window",
	[STORAGE_WINDOW_CLOSE] = "close the migration window",
};

const char *storage_op_name(enum storage_op op)
{
	return op <= STORAGE_WINDOW_CLOSE ? op_names[op] : "?";
}

bool storage_needed(const struct guest_cfg *cfg)
{
	int i;

	for (i = 0; i < cfg->n_disks; i++)
		if (stor_activated(cfg->disks[i].stor.kind))
			return true;
	return false;
}

bool storage_busy(const struct guest *g)
{
	return g->stor_job != NULL;
}

void storage_apply(const struct guest *g, struct guest_cfg *cfg)
{
	int i;

	for (i = 0; i < cfg->n_disks; i++) {
		struct guest_disk *dk = &cfg->disks[i];
		if (!stor_activated(dk->stor.kind) || !g->stor_dev[i][0])
			continue;
		snprintf(dk->target, sizeof(dk->target), "%s", g->stor_dev[i]);
		dk->script[0] = '\0';
		dk->backend = DISK_PHY;
	}
}

/* ---- the child ---------------------------------------------------- */

static void put_dev(int fd, int i, const char *dev)
{
	char line[600];
	int n = snprintf(line, sizeof(line), "dev %d %.500s\n", i, dev);

	if (n > 0)
		(void)fs_write_all(fd, line, (size_t)n);
}

static void put_err(int fd, const struct guest_disk *dk, const char *err)
{
	char line[600], what[300];

	stor_describe(&dk->stor, dk->target, what, sizeof(what));
	snprintf(line, sizeof(line), "err %s %.300s: %.250s\n", dk->vdev, what, err);
	(void)fs_write_all(fd, line, strlen(line));
}

static int child_main(const struct guest_cfg *cfg, enum storage_op op, int fd)
{
	char err[512], dev[PATH_MAX];
	int i, j, bad = 0;

	for (i = 0; i < cfg->n_disks; i++) {
		const struct guest_disk *dk = &cfg->disks[i];
		int rc = 0;

		if (!stor_activated(dk->stor.kind))
			continue;
		switch (op) {
		case STORAGE_PREPARE:
		case STORAGE_PREPARE_SHARED:
			rc = stor_activate(&dk->stor, dk->target, op == STORAGE_PREPARE_SHARED, dev,
					   sizeof(dev), err, sizeof(err));
			if (rc == 0) {
				put_dev(fd, i, dev);
				break;
			}
			put_err(fd, dk, err);
			/* undo what this job activated, newest first */
			for (j = i - 1; j >= 0; j--)
				if (stor_activated(cfg->disks[j].stor.kind) &&
				    stor_release(&cfg->disks[j].stor, cfg->disks[j].target, err,
						 sizeof(err)) < 0)
					put_err(fd, &cfg->disks[j], err);
			return 1;
		case STORAGE_RELEASE:
			rc = stor_release(&dk->stor, dk->target, err, sizeof(err));
			break;
		case STORAGE_WINDOW_OPEN:
			rc = stor_window(&dk->stor, true, err, sizeof(err));
			break;
		case STORAGE_WINDOW_CLOSE: {
			/* refused while the peer is still a primary: its release
			 * follows the commit within a few seconds */
			uint64_t end = now_ms() + WINDOW_CLOSE_WAIT_MS;
			while ((rc = stor_window(&dk->stor, false, err, sizeof(err))) < 0 &&
			       now_ms() < end)
				poll(NULL, 0, 1000);
			break;
		}
		}
		if (rc < 0) {
			put_err(fd, dk, err); /* a release goes on with the other disks */
			bad = 1;
		}
	}
	if (!bad)
		(void)fs_write_all(fd, "ok\n", 3);
	return bad;
}

/* ---- the parent --------------------------------------------------- */

static void job_end(struct storjob *j)
{
	struct hagentd *d = j->d;
	struct guest *g = guests_find(d, j->name);
	char why[512] = "";
	bool ok = false;
	char *line, *save = NULL;
	int status = 0;

	if (j->timer_armed)
		qb_loop_timer_del(d->loop, j->timer);
	qb_loop_poll_del(d->loop, j->fd);
	close(j->fd);
	while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (g && g->stor_job == j)
		g->stor_job = NULL;
	else
		g = NULL; /* removed (or replaced) meanwhile */
	j->out[j->used] = '\0';
	for (line = strtok_r(j->out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "ok")) {
			ok = true;
		} else if (!strncmp(line, "err ", 4)) {
			if (!why[0])
				snprintf(why, sizeof(why), "%s", line + 4);
		} else if (!strncmp(line, "dev ", 4) && g) {
			char *sp;
			int i = (int)strtol(line + 4, &sp, 10);
			if (i >= 0 && i < GUEST_MAX_DISKS && *sp == ' ')
				snprintf(g->stor_dev[i], sizeof(g->stor_dev[i]), "%s", sp + 1);
		}
	}
	if (j->timed_out) {
		ok = false;
		snprintf(why, sizeof(why), "storage %s did not finish within %d s", storage_op_name(j->op),
			 TO_STORAGE_JOB_S);
	} else if (!ok && !why[0]) {
		snprintf(why, sizeof(why), "storage %s: helper ended with status 0x%x",
			 storage_op_name(j->op), (unsigned)status);
	}
	log_info("storage: %s: %s %s after %llu ms%s%s", j->name, storage_op_name(j->op),
		 ok ? "done" : "FAILED", (unsigned long long)(now_ms() - j->started_ms),
		 ok ? "" : ": ", why);
	if (g) {
		if (j->op == STORAGE_PREPARE || j->op == STORAGE_PREPARE_SHARED) {
			g->stor_active = ok;
			g->stor_shared = ok && j->op == STORAGE_PREPARE_SHARED;
		} else if (j->op == STORAGE_RELEASE) {
			g->stor_active = false; /* a failed release is logged; nothing runs on it */
			memset(g->stor_dev, 0, sizeof(g->stor_dev));
		}
		if (j->done)
			j->done(g, j->op, ok, why);
		supervise_storage_settle(g); /* what ended meanwhile lets go now */
	}
	storage_kick(d, "storage job ended");
	free(j);
}

static int job_readable(int fd, int revents, void *arg)
{
	struct storjob *j = arg;
	char buf[512];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n > 0) {
		size_t k = (size_t)n;
		if (k > sizeof(j->out) - 1 - j->used)
			k = sizeof(j->out) - 1 - j->used;
		memcpy(j->out + j->used, buf, k);
		j->used += k;
		return 0;
	}
	(void)revents;
	job_end(j); /* EOF: the child is done */
	return 0;
}

static void job_deadline(void *arg)
{
	struct storjob *j = arg;

	j->timer_armed = false;
	j->timed_out = true;
	log_warn("storage: %s: %s still running after %d s: killing it", j->name,
		 storage_op_name(j->op), TO_STORAGE_JOB_S);
	kill(j->pid, SIGKILL); /* EOF follows */
}

int storage_run(struct guest *g, enum storage_op op, storage_done_fn done, char *err, size_t errlen)
{
	struct guest_cfg *cfg;
	struct storjob *j;
	int p[2];

	if (g->stor_job) {
		snprintf(err, errlen, "%s: its storage is busy (%s)", g->cfg.name,
			 storage_op_name(g->stor_job->op));
		return -1;
	}
	if (!(cfg = guests_load_cfg(g)) || !(j = calloc(1, sizeof(*j)))) {
		free(cfg);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		free(cfg);
		free(j);
		return -1;
	}
	j->d = g->d;
	j->op = op;
	j->done = done;
	j->fd = p[0];
	j->started_ms = now_ms();
	snprintf(j->name, sizeof(j->name), "%s", g->cfg.name);
	j->pid = fork();
	if (j->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		free(cfg);
		free(j);
		return -1;
	}
	if (j->pid == 0) {
		close(p[0]);
		signal(SIGPIPE, SIG_IGN);
		_exit(child_main(cfg, op, p[1]));
	}
	close(p[1]);
	free(cfg);
	fcntl(j->fd, F_SETFL, O_NONBLOCK);
	if (qb_loop_poll_add(g->d->loop, QB_LOOP_MED, j->fd, POLLIN, j, job_readable) < 0) {
		snprintf(err, errlen, "cannot watch the storage helper");
		kill(j->pid, SIGKILL);
		waitpid(j->pid, NULL, 0);
		close(j->fd);
		free(j);
		return -1;
	}
	if (qb_loop_timer_add(g->d->loop, QB_LOOP_MED, (uint64_t)TO_STORAGE_JOB_S * 1000000000ULL, j,
			      job_deadline, &j->timer) == 0)
		j->timer_armed = true;
	g->stor_job = j;
	if (op == STORAGE_PREPARE || op == STORAGE_PREPARE_SHARED)
		memset(g->stor_dev, 0, sizeof(g->stor_dev));
	log_info("storage: %s: %s (pid %d)", g->cfg.name, storage_op_name(op), (int)j->pid);
	return 0;
}

void storage_shutdown(struct hagentd *d)
{
	struct guest *g;

	qb_list_for_each_entry(g, &d->guests, list) {
		if (g->stor_job) {
			struct storjob *j = g->stor_job;
			if (j->timer_armed)
				qb_loop_timer_del(d->loop, j->timer);
			qb_loop_poll_del(d->loop, j->fd);
			close(j->fd);
			free(j);
			g->stor_job = NULL;
		}
	}
}
