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

#endif
