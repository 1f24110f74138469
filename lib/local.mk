libhagent_a_SOURCES += \
	proto/frame.c proto/frame.h \
	lib/guestcfg.c lib/guestcfg.h \
	lib/fsutil.c lib/fsutil.h \
	lib/log.c lib/log.h
