# migrate/ — live migration: the agent-to-agent channel and the job phases.
# Part of libagent.a (agent/local.mk) so unit tests can link it.
libagent_a_SOURCES += migrate/channel.c migrate/channel.h migrate/job.c migrate/job.h migrate/evacuate.c migrate/evacuate.h \
	migrate/relay.c migrate/relay.h
