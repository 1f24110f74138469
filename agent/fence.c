#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#include "agent/cluster.h"
#include "agent/fence.h"
#include "agent/registry.h"
#include "agent/timeouts.h"
#include "lib/fsutil.h"
#include "lib/log.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define FENCE_MAX 16

enum fence_state { FS_IDLE = 0, FS_RUNNING, FS_DONE, FS_BACKOFF };

struct fence_job {
	char node[64];
	enum fence_state state;
	pid_t pid;
	int pidfd;
	fence_done_fn done;
	qb_loop_timer_handle timer;
	bool timer_armed;
	bool timed_out;
	bool watchdog;     /* no agent: waiting out the node's watchdog */
	struct hagentd *d;
	uint64_t started_ms;
	char agent[PATH_MAX];
};

static struct fence_job jobs[FENCE_MAX]; /* one daemon per process: a fixed table */

static struct fence_job *job_of(const char *node, bool create)
{
	int i, free_slot = -1;

	for (i = 0; i < FENCE_MAX; i++) {
		if (jobs[i].state != FS_IDLE && !strcmp(jobs[i].node, node))
			return &jobs[i];
		if (jobs[i].state == FS_IDLE && free_slot < 0)
			free_slot = i;
	}
	if (!create || free_slot < 0)
		return NULL;
	memset(&jobs[free_slot], 0, sizeof(jobs[0]));
	snprintf(jobs[free_slot].node, sizeof(jobs[0].node), "%s", node);
	jobs[free_slot].pidfd = -1;
	return &jobs[free_slot];
}

static void timer_off(struct fence_job *j)
{
	if (j->timer_armed)
		qb_loop_timer_del(j->d->loop, j->timer);
	j->timer_armed = false;
}

static void retry_fired(void *arg)
{
	struct fence_job *j = arg;

	j->timer_armed = false;
	j->state = FS_IDLE;
	registry_check_recovery(j->d);
}

static int child_exited(int fd, int revents, void *arg)
{
	struct fence_job *j = arg;
	siginfo_t si = { 0 };
	char why[128];
	bool ok;

	qb_loop_poll_del(j->d->loop, fd);
	waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED);
	close(fd);
	j->pidfd = -1;
	timer_off(j);
	ok = !j->timed_out && si.si_code == CLD_EXITED && si.si_status == 0;
	if (j->timed_out)
		snprintf(why, sizeof(why), "agent did not finish within %ld s",
			 j->d->conf.fence_timeout_s);
	else if (si.si_code == CLD_EXITED)
		snprintf(why, sizeof(why), "agent exited with status %d", si.si_status);
	else
		snprintf(why, sizeof(why), "agent killed by signal %d", si.si_status);
	log_notice("fence: %s %s after %llu ms (%s)", j->node, ok ? "FENCED" : "NOT fenced",
		   (unsigned long long)(now_ms() - j->started_ms), ok ? "agent exit 0" : why);
	if (ok) {
		j->state = FS_DONE;
	} else {
		j->state = FS_BACKOFF;
		if (qb_loop_timer_add(j->d->loop, QB_LOOP_LOW, TO_FENCE_RETRY_S * 1000000000ULL, j,
				      retry_fired, &j->timer) == 0)
			j->timer_armed = true;
	}
	j->done(j->d, j->node, ok, why);
	return 0;
}

static void deadline(void *arg)
{
	struct fence_job *j = arg;

	j->timer_armed = false;
	j->timed_out = true;
	log_err("fence: agent for %s still running after %ld s, killing it", j->node,
		j->d->conf.fence_timeout_s);
	kill(-j->pid, SIGKILL);
}

/* The node's watchdog has reset it by now (timeouts.h): unless it is back. */
static void watchdog_waited(void *arg)
{
	struct fence_job *j = arg;
	char why[128];
	bool ok = !cluster_is_member(j->d, j->node);

	j->timer_armed = false;
	snprintf(why, sizeof(why), ok ? "self-fenced by its watchdog (waited %llu ms)"
				      : "it came back before its watchdog deadline",
		 (unsigned long long)(now_ms() - j->started_ms));
	log_notice("fence: %s %s (%s)", j->node, ok ? "FENCED" : "NOT fenced", why);
	j->state = ok ? FS_DONE : FS_IDLE;
	j->done(j->d, j->node, ok, why);
}

void fence_wait_watchdog(struct hagentd *d, const char *node, uint64_t wait_ms,
			 fence_done_fn done)
{
	struct fence_job *j = job_of(node, true);

	if (!j || j->state != FS_IDLE)
		return;
	j->d = d;
	j->done = done;
	j->watchdog = true;
	j->pid = 0;
	j->started_ms = now_ms();
	j->state = FS_RUNNING;
	log_notice("fence: %s has no fence agent but a watchdog: waiting %llu ms for it to "
		   "self-fence", node, (unsigned long long)wait_ms);
	if (qb_loop_timer_add(d->loop, QB_LOOP_HIGH, wait_ms * 1000000ULL, j, watchdog_waited,
			      &j->timer) == 0)
		j->timer_armed = true;
}

bool fence_in_progress(struct hagentd *d, const char *node, uint64_t *since_ms, bool *watchdog)
{
	struct fence_job *j = job_of(node, false);

	if (!j || j->state != FS_RUNNING)
		return false;
	*since_ms = j->started_ms;
	*watchdog = j->watchdog;
	return true;
}

void fence_node(struct hagentd *d, const char *node, const char *agent, const char *agent_args,
		fence_done_fn done)
{
	struct fence_job *j = job_of(node, true);
	char input[1024], *args, *tok, *save = NULL, lost_at[48], **env;
	size_t n_env, i, k;
	int in[2], n;
	pid_t pid;

	if (!j || j->state != FS_IDLE)
		return;
	/* the fence-agents stdin protocol: one "name=value" per line */
	n = snprintf(input, sizeof(input), "action=off\nplug=%s\nport=%s\n", node, node);
	args = strdup(agent_args);
	for (tok = args ? strtok_r(args, ",", &save) : NULL; tok && n < (int)sizeof(input);
	     tok = strtok_r(NULL, ",", &save))
		n += snprintf(input + n, sizeof(input) - (size_t)n, "%s\n", tok);
	free(args);
	/* The agent's environment: ours, and when the node was lost, so that an
	 * agent that only confirms someone else's fencing (fence-pacemaker) can
	 * tell a fencing of this loss from an older one. */
	snprintf(lost_at, sizeof(lost_at), "HAGENT_LOST_AT=%lld",
		 (long long)cluster_lost_at(d, node));
	for (n_env = 0; environ[n_env]; n_env++)
		;
	env = calloc(n_env + 2, sizeof(*env));
	if (!env)
		return;
	for (i = 0, k = 0; i < n_env; i++)
		if (strncmp(environ[i], "HAGENT_LOST_AT=", 15))
			env[k++] = environ[i];
	env[k] = lost_at;
	if (pipe2(in, O_CLOEXEC) < 0) {
		free(env);
		return;
	}
	pid = fork();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		free(env);
		return;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		setpgid(0, 0);
		dup2(in[0], 0);
		if (devnull >= 0) {
			dup2(devnull, 1);
		}
		execle(agent, agent, (char *)NULL, env);
		_exit(127);
	}
	free(env);
	close(in[0]);
	if (n > (int)sizeof(input))
		n = (int)sizeof(input);
	fs_write_all(in[1], input, (size_t)n);
	close(in[1]);
	j->d = d;
	j->pid = pid;
	j->done = done;
	j->timed_out = false;
	j->watchdog = false;
	snprintf(j->agent, sizeof(j->agent), "%s", agent);
	j->started_ms = now_ms();
	j->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	j->state = FS_RUNNING;
	log_notice("fence: fencing %s with %s", node, agent);
	if (j->pidfd < 0 ||
	    qb_loop_poll_add(d->loop, QB_LOOP_HIGH, j->pidfd, POLLIN, j, child_exited) < 0) {
		log_err("fence: cannot watch the agent for %s", node);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		j->state = FS_IDLE;
		return;
	}
	if (qb_loop_timer_add(d->loop, QB_LOOP_HIGH,
			      (uint64_t)d->conf.fence_timeout_s * 1000000000ULL, j, deadline,
			      &j->timer) == 0)
		j->timer_armed = true;
}

void fence_forget(struct hagentd *d, const char *node)
{
	struct fence_job *j = job_of(node, false);

	if (j && j->state == FS_DONE)
		j->state = FS_IDLE;
}

void fence_shutdown(struct hagentd *d)
{
	int i;

	for (i = 0; i < FENCE_MAX; i++) {
		if (jobs[i].state == FS_IDLE)
			continue;
		timer_off(&jobs[i]);
		if (jobs[i].pidfd >= 0) {
			qb_loop_poll_del(d->loop, jobs[i].pidfd);
			close(jobs[i].pidfd);
		}
		jobs[i].state = FS_IDLE;
	}
}
