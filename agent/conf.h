/* hagent.conf: the daemon's own settings, in the same key = value syntax as
 * guest files (parsed with libxlutil too). */
#ifndef HAGENT_CONF_H
#define HAGENT_CONF_H

#include "agent/hagentd.h"

#define CONF_DEFAULT_PATH SYSCONFDIR "/hagent/hagent.conf"

void conf_defaults(struct conf *c);
/* Load path into c (defaults first).  A missing file at the default path is
 * not an error; a missing explicit file is.  Errors are printed to stderr
 * and logged as "FILE:LINE: key: message"; returns -1 on any error. */
int conf_load(struct conf *c, const char *path, bool explicit_path);
/* The fence agent and its args for node (its fence_nodes entry, else
 * fence_agent/fence_args); false when it has none. */
bool conf_fence_for(const struct conf *c, const char *node, const char **agent,
		    const char **args);

#endif
