#include "config.h"

#include <syslog.h>

#include "lib/log.h"

void log_setup(const char *ident, int to_stderr, int debug)
{
	int prio = debug ? LOG_DEBUG : LOG_INFO;

	qb_log_init(ident, LOG_DAEMON, prio);
	qb_log_format_set(QB_LOG_STDERR, "%T %p: %b");
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, to_stderr ? QB_FALSE : QB_TRUE);
	qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", prio);
	if (to_stderr) {
		qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
		qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", prio);
	}
}

void log_teardown(void)
{
	qb_log_fini();
}
