/*
 * hotplug.h - CPU hotplug states with multi-instance callbacks, in the
 * way of the kernel's cpuhp multi-instance states.
 *
 *   uz_hp_lock (one, process-wide) serialises every callback, every
 *   instance add/remove and every CPU event:
 *
 *   struct uz_hp_state  "pool"  prepare(inst, cpu)  teardown(inst, cpu)
 *        instances: inst <-> inst <-> inst   (one per live pool)
 *
 * Event sources, both ending in uz_hp_cpu_event(): the kernel's CPU
 * uevents (a NETLINK_KOBJECT_UEVENT socket read by a thread that runs
 * while any instance exists; re-reading /sys/devices/system/cpu/online
 * once a second when the socket cannot be had), and
 * uzswap_hotplug_inject() (include/uzswap_test.h: a test-only hook, not
 * in the shared library) for tests and simulation.
 *
 * Lock order (src/lockdep.h): switch_lock -> uz_hp_ctl_lock -> uz_hp_lock
 * (callbacks take no cache lock). A prepare callback allocates without holding any
 * context lock (I5). Never call add/remove or inject from a callback.
 *
 * Must never: run a callback of an instance after remove_instance()
 * returned (I4 relies on it), or run two callbacks at once.
 */
#ifndef UZ_HOTPLUG_H
#define UZ_HOTPLUG_H

#include <stdbool.h>
#include <stddef.h>

struct uz_hp_instance {
	struct uz_hp_instance *prev, *next;	/* under uz_hp_lock */
};

struct uz_hp_state {
	const char *name;
	/* Bring up inst's resources for cpu: 0 or a negative errno. */
	int (*prepare)(struct uz_hp_instance *inst, unsigned cpu);
	/* Optional: cpu went offline, or rollback of a failed add. */
	void (*teardown)(struct uz_hp_instance *inst, unsigned cpu);
	struct uz_hp_instance head;		/* list of instances */
	struct uz_hp_state *next_state;		/* registered states */
};

#define UZ_HP_STATE_INIT(nm, prep, tear) \
	{ .name = (nm), .prepare = (prep), .teardown = (tear) }

/*
 * Add an instance: run prepare for every online CPU, synchronously. If one
 * fails, run teardown on the CPUs already prepared (in reverse) and return
 * its error; the instance is then not added. Starts the event thread when
 * this is the first instance.
 */
int uz_hp_add_instance(struct uz_hp_state *st, struct uz_hp_instance *inst);

/*
 * Remove an instance: waits for a callback in flight (it takes the
 * hotplug lock), unlinks it; no callback runs for it afterwards. Stops the
 * event thread with the last instance. Runs no teardown.
 */
void uz_hp_remove_instance(struct uz_hp_state *st,
			   struct uz_hp_instance *inst);

/*
 * The one path of every CPU event: a CPU coming online runs prepare of
 * every instance for it, then becomes online in the CPU set; a CPU going
 * offline leaves the set, then teardown runs. Returns 1 when the state
 * changed, 0 when the CPU already had it, -EINVAL for a CPU outside the
 * possible range. A failed prepare leaves that instance's context
 * unprepared (the hot path falls back, I3) and is counted.
 */
enum uz_hp_source {
	UZ_HP_SRC_UEVENT,	/* the kernel's CPU uevent */
	UZ_HP_SRC_SYSFS,	/* found re-reading /sys/.../cpu/online */
	UZ_HP_SRC_INJECT,	/* uzswap_hotplug_inject() */
	UZ_HP_NR_SRC
};
int uz_hp_cpu_event(unsigned cpu, bool online, enum uz_hp_source src);

/*
 * Parse a kernel uevent, "ACTION@DEVPATH\0KEY=VALUE\0...", len bytes
 * followed by a NUL. Returns the CPU (< UZ_MAX_CPUS) and sets *online for
 * an online/offline event of subsystem cpu, else -1.
 */
int uz_uevent_parse(const char *msg, size_t len, bool *online);

/* Counters, for tests and the torture report. */
struct uz_hp_counters {
	unsigned long events;		/* state changes applied */
	unsigned long by_source[UZ_HP_NR_SRC];	/* of those, from where */
	unsigned long prepare_fail;	/* prepare callbacks that failed */
	bool thread_running;		/* the uevent thread */
	bool thread_uses_netlink;	/* else sysfs polling */
};
void uz_hp_get_counters(struct uz_hp_counters *c);

/* Test hook: called at the start of every prepare callback, under the
 * hotplug lock. NULL by default. */
extern void (*uz_hp_prepare_hook)(unsigned cpu);

#endif
