#include "config.h"

#include <stdio.h>
#include <string.h>

#include "drivers/driver.h"

/* Every driver hagentd knows. */
static const struct driver_ops *const drivers[] = {
	&qemu_driver_ops,
	&xen_driver_ops,
};

/* Xen's control domain: xenfs says "control_d" in its capabilities. */
const char *driver_host_default(void)
{
	char caps[128] = "";
	FILE *f = fopen("/proc/xen/capabilities", "r");

	if (f) {
		if (!fgets(caps, sizeof(caps), f))
			caps[0] = '\0';
		fclose(f);
	}
	return strstr(caps, "control_d") ? "xen" : "qemu";
}

const struct driver_ops *driver_lookup(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}

static const char *const event_names[DRV_EV__COUNT] = {
	[DRV_EV_RUNNING] = "running",
	[DRV_EV_POWEROFF] = "poweroff",
	[DRV_EV_REBOOT] = "reboot",
	[DRV_EV_CRASH] = "crash",
	[DRV_EV_WATCHDOG] = "watchdog",
	[DRV_EV_IO_ERROR] = "io-error",
	[DRV_EV_PAUSED] = "paused",
	[DRV_EV_RESUMED] = "resumed",
	[DRV_EV_EXIT] = "exit",
	[DRV_EV_DUMP_DONE] = "dump-done",
	[DRV_EV_MIGRATION] = "migration",
};

const char *drv_event_name(enum drv_event ev)
{
	if ((unsigned)ev >= DRV_EV__COUNT || !event_names[ev])
		return "unknown";
	return event_names[ev];
}
