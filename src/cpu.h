/*
 * cpu.h - the CPU sets and the current CPU.
 *
 * Owns: the possible, present and online CPU sets (read from
 * /sys/devices/system/cpu once, at first use; the online set then changes
 * only through hotplug events) and the cheapest correct answer to "which
 * CPU am I on": rseq's cpu_id where glibc registered rseq, else
 * sched_getcpu().
 *
 * Must never: allocate, or block, in uz_cpu_current() - it is on every
 * hot path. The answer may be stale by the time it is used: a thread can
 * migrate at any moment, and callers must be correct anyway (I3).
 */
#ifndef UZ_CPU_H
#define UZ_CPU_H

#include <stdbool.h>

#define UZ_MAX_CPUS 4096

/* Number of possible CPU ids: every CPU id is below this. >= 1. */
unsigned uz_cpu_nr_possible(void);

/* Number of present CPUs (sysfs "present"), for reports. */
unsigned uz_cpu_nr_present(void);

/* True when cpu is in the online set. */
bool uz_cpu_online(unsigned cpu);

/* Mark cpu online or offline in the set (for the hotplug module). */
void uz_cpu_set_online(unsigned cpu, bool online);

/* The CPU this thread runs on now, always < uz_cpu_nr_possible(). */
unsigned uz_cpu_current(void);

/*
 * Parse a kernel cpulist ("0-3,8,10-11") into a bitmap of UZ_MAX_CPUS
 * bits. Returns the number of CPUs set, or -1 on a malformed list.
 */
int uz_cpulist_parse(const char *s, unsigned long *bits);

#endif
