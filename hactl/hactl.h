#ifndef HAGENT_HACTL_H
#define HAGENT_HACTL_H

#include <stdbool.h>
#include "proto/hagent.pb-c.h"

struct hactl {
	const char *socket;
	bool json;
	unsigned timeout_s; /* stop --timeout */
};

struct hactl_cmd {
	const char *name;
	const char *args;   /* usage of the arguments */
	const char *help;
	int min_args, max_args;
	const char *complete; /* bash completion of the first argument: "guest", "file", "" */
	int (*fn)(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv);
};

/* hactl/client.c */
int client_connect(const char *path);
/* Send a request, read the response; returns it (free with
 * hagent__response__free_unpacked) or NULL after printing an error. */
Hagent__Response *client_call(struct hactl *h, Hagent__Request *req, int *fd_out);
/* Print messages/error of a response, return its exit code. */
int client_finish(struct hactl *h, Hagent__Response *resp);

/* hactl/output.c */
void output_guests(struct hactl *h, Hagent__Response *resp, bool status);
void output_event(struct hactl *h, const Hagent__Event *ev);

/* hactl/migrate.c */
int cmd_migrate(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv);
int cmd_node(struct hactl *h, const struct hactl_cmd *cmd, int argc, char **argv);

/* hactl/console.c */
int console_run(const char *path, const char *name);

#endif
