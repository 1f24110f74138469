/* Logging through libqb: syslog (journal) for the daemon, stderr with -f. */
#ifndef HAGENT_LOG_H
#define HAGENT_LOG_H

#include <qb/qblog.h>

/* ident: program name; to_stderr: also (or only) log to stderr; debug: level. */
void log_setup(const char *ident, int to_stderr, int debug);
void log_teardown(void);

#define log_crit(...) qb_log(LOG_CRIT, __VA_ARGS__)
#define log_err(...) qb_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) qb_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) qb_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) qb_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) qb_log(LOG_DEBUG, __VA_ARGS__)

#endif
