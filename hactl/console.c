/* hactl console: relay a terminal to the guest's serial socket.  Ctrl-]
 * leaves, as with xl console.  Without a terminal (a script), the relay ends
 * when stdin ends. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "hactl/hactl.h"
#include "lib/fsutil.h"

#define ESCAPE_CHAR 0x1d /* Ctrl-] */

int console_run(const char *path, const char *name)
{
	struct termios saved, raw;
	bool tty = isatty(STDIN_FILENO);
	struct stat st;
	int fd, rc = 0;

	/* a Xen guest's console is a pty (xenconsoled's or qemu-xen's); a
	 * QEMU guest's a unix socket */
	if (stat(path, &st) == 0 && S_ISCHR(st.st_mode)) {
		fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd >= 0 && tcgetattr(fd, &raw) == 0) {
			cfmakeraw(&raw);
			tcsetattr(fd, TCSANOW, &raw);
		}
	} else {
		fd = client_connect(path);
	}

	if (fd < 0) {
		fprintf(stderr, "hactl: cannot open console of %s at %s: %s\n", name, path,
			strerror(errno));
		return 1;
	}
	if (tty) {
		if (tcgetattr(STDIN_FILENO, &saved) < 0)
			tty = false;
		raw = saved;
		cfmakeraw(&raw);
		if (tty && tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
			tty = false;
		fprintf(stderr, "Connected to %s (escape character is ^])\r\n", name);
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = STDIN_FILENO, .events = POLLIN } };
		char buf[4096];
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = 1;
			break;
		}
		if (p[0].revents) {
			n = read(fd, buf, sizeof(buf));
			if (n <= 0) {
				fprintf(stderr, "%sconsole of %s closed\n", tty ? "\r\n" : "", name);
				break;
			}
			if (fs_write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
				break;
		}
		if (p[1].revents) {
			char *esc;
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0)
				break; /* input ended: a script is done with the console */
			esc = memchr(buf, ESCAPE_CHAR, (size_t)n);
			if (esc) {
				fs_write_all(fd, buf, (size_t)(esc - buf));
				break;
			}
			if (fs_write_all(fd, buf, (size_t)n) < 0)
				break;
		}
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		fprintf(stderr, "\r\n");
	}
	close(fd);
	return rc;
}
