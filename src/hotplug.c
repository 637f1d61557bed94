/*
 * hotplug.c - CPU hotplug states, instances, and the event sources.
 *
 * Owns: the hotplug lock, the list of states and their instances, and the
 * uevent thread. See hotplug.h for the picture and the lock order.
 *
 * Must never: call a callback without uz_hp_lock held, hold uz_hp_lock
 * while joining the event thread (the thread takes it), or free anything
 * an instance owns (teardown is the instance's business).
 */
#define _GNU_SOURCE
#include "hotplug.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cpu.h"
#include "lockdep.h"
#include "thread.h"
#include "uzswap.h"
#include "uzswap_test.h"

void (*uz_hp_prepare_hook)(unsigned cpu);

/* Serialises callbacks, instance lists and events. */
static pthread_mutex_t uz_hp_lock = PTHREAD_MUTEX_INITIALIZER;
/* Serialises starting and stopping the event thread; before uz_hp_lock. */
static pthread_mutex_t uz_hp_ctl_lock = PTHREAD_MUTEX_INITIALIZER;

static struct uz_hp_state *states;	/* under uz_hp_lock */
static unsigned nr_instances;		/* under uz_hp_lock */
static unsigned long nr_events, nr_prepare_fail;	/* under uz_hp_lock */
static unsigned long nr_by_source[UZ_HP_NR_SRC];	/* under uz_hp_lock */

/* Event thread; under uz_hp_ctl_lock. */
static pthread_t ev_thread;
static bool ev_running;
static int ev_stop_pipe[2] = { -1, -1 };
static atomic_bool ev_netlink;

/* ---- states and instances ---- */

static void state_register(struct uz_hp_state *st)
{
	if (st->head.next)
		return;
	st->head.next = st->head.prev = &st->head;
	st->next_state = states;
	states = st;
}

static void run_teardown(struct uz_hp_state *st, struct uz_hp_instance *in,
			 unsigned cpu)
{
	if (st->teardown)
		st->teardown(in, cpu);
}

static int run_prepare(struct uz_hp_state *st, struct uz_hp_instance *in,
		       unsigned cpu)
{
	if (uz_hp_prepare_hook)
		uz_hp_prepare_hook(cpu);
	return st->prepare(in, cpu);
}

/* Prepare every online CPU for in; on failure undo those done. */
static int prepare_online(struct uz_hp_state *st, struct uz_hp_instance *in)
{
	unsigned n = uz_cpu_nr_possible();

	for (unsigned cpu = 0; cpu < n; cpu++) {
		int err;

		if (!uz_cpu_online(cpu))
			continue;
		err = run_prepare(st, in, cpu);
		if (err == 0)
			continue;
		while (cpu-- > 0)	/* only CPUs already prepared */
			if (uz_cpu_online(cpu))
				run_teardown(st, in, cpu);
		return err;
	}
	return 0;
}

static void ev_thread_start(void);
static void ev_thread_stop(void);

int uz_hp_add_instance(struct uz_hp_state *st, struct uz_hp_instance *in)
{
	int err;

	uz_mutex_lock(&uz_hp_ctl_lock, UZ_LR_HP_CTL);
	uz_mutex_lock(&uz_hp_lock, UZ_LR_HP);
	state_register(st);
	err = prepare_online(st, in);
	if (!err) {
		in->next = st->head.next;
		in->prev = &st->head;
		in->next->prev = in;
		st->head.next = in;
		nr_instances++;
	}
	uz_mutex_unlock(&uz_hp_lock, UZ_LR_HP);
	if (!err && !ev_running)
		ev_thread_start();
	uz_mutex_unlock(&uz_hp_ctl_lock, UZ_LR_HP_CTL);
	return err;
}

void uz_hp_remove_instance(struct uz_hp_state *st, struct uz_hp_instance *in)
{
	unsigned left;

	uz_mutex_lock(&uz_hp_ctl_lock, UZ_LR_HP_CTL);
	/* Taking the lock waits for any callback in flight (I4). */
	uz_mutex_lock(&uz_hp_lock, UZ_LR_HP);
	in->prev->next = in->next;
	in->next->prev = in->prev;
	in->next = in->prev = NULL;
	left = --nr_instances;
	uz_mutex_unlock(&uz_hp_lock, UZ_LR_HP);
	(void)st;
	if (left == 0 && ev_running)
		ev_thread_stop();	/* not under uz_hp_lock: it takes it */
	uz_mutex_unlock(&uz_hp_ctl_lock, UZ_LR_HP_CTL);
}

/* ---- events ---- */

static void cpu_up(unsigned cpu)
{
	for (struct uz_hp_state *st = states; st; st = st->next_state)
		for (struct uz_hp_instance *in = st->head.next;
		     in != &st->head; in = in->next)
			if (run_prepare(st, in, cpu) < 0)
				nr_prepare_fail++;
	/* Online only once prepared, as the kernel runs nothing on a CPU
	 * before its prepare steps finished. */
	uz_cpu_set_online(cpu, true);
}

static void cpu_down(unsigned cpu)
{
	uz_cpu_set_online(cpu, false);
	for (struct uz_hp_state *st = states; st; st = st->next_state)
		for (struct uz_hp_instance *in = st->head.next;
		     in != &st->head; in = in->next)
			run_teardown(st, in, cpu);
}

int uz_hp_cpu_event(unsigned cpu, bool online, enum uz_hp_source src)
{
	int changed = 0;

	if (cpu >= uz_cpu_nr_possible())
		return -EINVAL;
	uz_mutex_lock(&uz_hp_lock, UZ_LR_HP);
	if (uz_cpu_online(cpu) != online) {
		if (online)
			cpu_up(cpu);
		else
			cpu_down(cpu);
		nr_events++;
		nr_by_source[src]++;
		changed = 1;
	}
	uz_mutex_unlock(&uz_hp_lock, UZ_LR_HP);
	return changed;
}

int uzswap_hotplug_inject(unsigned cpu, bool online)
{
	int r = uz_hp_cpu_event(cpu, online, UZ_HP_SRC_INJECT);

	return r < 0 ? r : 0;
}

void uz_hp_get_counters(struct uz_hp_counters *c)
{
	uz_mutex_lock(&uz_hp_lock, UZ_LR_HP);
	c->events = nr_events;
	memcpy(c->by_source, nr_by_source, sizeof(c->by_source));
	c->prepare_fail = nr_prepare_fail;
	uz_mutex_unlock(&uz_hp_lock, UZ_LR_HP);
	uz_mutex_lock(&uz_hp_ctl_lock, UZ_LR_HP_CTL);
	c->thread_running = ev_running;
	uz_mutex_unlock(&uz_hp_ctl_lock, UZ_LR_HP_CTL);
	c->thread_uses_netlink = atomic_load(&ev_netlink);
}

/* ---- the uevent thread ---- */

int uz_uevent_parse(const char *msg, size_t len, bool *online)
{
	const char *action = NULL, *devpath = NULL, *subsys = NULL;
	unsigned cpu;

	for (size_t i = 0; i < len; i += strlen(msg + i) + 1) {
		const char *kv = msg + i;

		if (!strncmp(kv, "ACTION=", 7))
			action = kv + 7;
		else if (!strncmp(kv, "DEVPATH=", 8))
			devpath = kv + 8;
		else if (!strncmp(kv, "SUBSYSTEM=", 10))
			subsys = kv + 10;
	}
	if (!action || !devpath || !subsys || strcmp(subsys, "cpu"))
		return -1;
	if (sscanf(devpath, "/devices/system/cpu/cpu%u", &cpu) != 1 ||
	    cpu >= UZ_MAX_CPUS)
		return -1;
	if (!strcmp(action, "online"))
		*online = true;
	else if (!strcmp(action, "offline"))
		*online = false;
	else
		return -1;
	return (int)cpu;
}

static int uevent_socket(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			NETLINK_KOBJECT_UEVENT);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void uevent_drain(int fd)
{
	char buf[8192];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0) {
		bool online;
		int cpu;

		buf[n] = '\0';
		cpu = uz_uevent_parse(buf, (size_t)n, &online);
		if (cpu >= 0)
			uz_hp_cpu_event((unsigned)cpu, online,
					UZ_HP_SRC_UEVENT);
	}
}

#define LB (8 * sizeof(unsigned long))

/*
 * Fallback: re-read sysfs and turn each CPU whose state changed since the
 * last reading into an event. Comparing with the last reading, not with
 * our set, leaves injected events alone.
 */
static void sysfs_resync(unsigned long *last, bool first)
{
	unsigned long bits[UZ_MAX_CPUS / LB];
	char buf[4096];
	FILE *f = fopen("/sys/devices/system/cpu/online", "re");
	unsigned n = uz_cpu_nr_possible();

	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f) && uz_cpulist_parse(buf, bits) > 0) {
		for (unsigned c = 0; c < n && !first; c++) {
			unsigned long m = 1ul << (c % LB);

			if ((bits[c / LB] ^ last[c / LB]) & m)
				uz_hp_cpu_event(c, bits[c / LB] & m,
						UZ_HP_SRC_SYSFS);
		}
		memcpy(last, bits, sizeof(bits));
	}
	fclose(f);
}

static void *ev_main(void *arg)
{
	unsigned long last[UZ_MAX_CPUS / LB] = { 0 };
	int fd = uevent_socket();
	struct pollfd p[2] = { { .fd = ev_stop_pipe[0], .events = POLLIN },
			       { .fd = fd, .events = POLLIN } };
	(void)arg;

	atomic_store(&ev_netlink, fd >= 0);
	sysfs_resync(last, true);
	for (;;) {
		/*
		 * sysfs is also re-read once a second with a socket: in a
		 * user namespace a bound uevent socket may stay silent, and
		 * a CPU that came online unseen would never be prepared.
		 */
		int r = poll(p, fd >= 0 ? 2 : 1, 1000);

		if (r < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;	/* stop requested */
		if (fd >= 0 && p[1].revents)
			uevent_drain(fd);
		else if (r == 0)
			sysfs_resync(last, false);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Under uz_hp_ctl_lock. A thread that cannot start leaves injection and
 * the CPU set as they are: the cache works without live events. */
static void ev_thread_start(void)
{
	if (pipe2(ev_stop_pipe, O_CLOEXEC) < 0)
		return;
	if (uz_thread_start(&ev_thread, ev_main, NULL) != 0) {
		close(ev_stop_pipe[0]);
		close(ev_stop_pipe[1]);
		return;
	}
	ev_running = true;
}

/* Under uz_hp_ctl_lock, never under uz_hp_lock. */
static void ev_thread_stop(void)
{
	char c = 0;

	if (write(ev_stop_pipe[1], &c, 1) != 1)
		abort();	/* a pipe we own cannot refuse one byte */
	pthread_join(ev_thread, NULL);
	close(ev_stop_pipe[0]);
	close(ev_stop_pipe[1]);
	ev_running = false;
}
