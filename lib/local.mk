libhagent_a_SOURCES += \
	proto/frame.c proto/frame.h \
	lib/guestcfg.c lib/guestcfg.h \
	lib/storage.c lib/storage.h \
	lib/storage_host.c lib/storage_host.h \
	lib/fsutil.c lib/fsutil.h \
	lib/log.c lib/log.h
