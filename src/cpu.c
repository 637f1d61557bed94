/*
 * cpu.c - CPU sets from sysfs and the current CPU. See cpu.h.
 */
#define _GNU_SOURCE
#include "cpu.h"

#include <ctype.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LONG_BITS (8 * sizeof(unsigned long))
#define NR_WORDS (UZ_MAX_CPUS / LONG_BITS)

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static unsigned nr_possible;
/* Online set: written by the hotplug module, read anywhere. */
static _Atomic unsigned long online_bits[NR_WORDS];

int uz_cpulist_parse(const char *s, unsigned long *bits)
{
	int count = 0;

	memset(bits, 0, NR_WORDS * sizeof(*bits));
	while (*s && !isspace((unsigned char)*s)) {
		char *end;
		long lo = strtol(s, &end, 10), hi = lo;

		if (end == s || lo < 0 || lo >= UZ_MAX_CPUS)
			return -1;
		s = end;
		if (*s == '-') {
			hi = strtol(s + 1, &end, 10);
			if (end == s + 1 || hi < lo || hi >= UZ_MAX_CPUS)
				return -1;
			s = end;
		}
		for (long c = lo; c <= hi; c++, count++)
			bits[c / LONG_BITS] |= 1ul << (c % LONG_BITS);
		if (*s == ',')
			s++;
		else if (*s && !isspace((unsigned char)*s))
			return -1;
	}
	return count;
}

static int read_cpulist(const char *path, unsigned long *bits)
{
	char buf[4096];
	FILE *f = fopen(path, "re");
	int n = -1;

	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		n = uz_cpulist_parse(buf, bits);
	fclose(f);
	return n;
}

static unsigned highest_bit(const unsigned long *bits)
{
	for (unsigned c = UZ_MAX_CPUS; c-- > 0;)
		if (bits[c / LONG_BITS] & (1ul << (c % LONG_BITS)))
			return c;
	return 0;
}

/* Fallback when sysfs is absent: every configured CPU, all online. */
static void cpu_sets_from_sysconf(unsigned long *possible,
				  unsigned long *online)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);

	if (n < 1)
		n = 1;
	if (n > UZ_MAX_CPUS)
		n = UZ_MAX_CPUS;
	memset(possible, 0, NR_WORDS * sizeof(*possible));
	for (long c = 0; c < n; c++)
		possible[c / LONG_BITS] |= 1ul << (c % LONG_BITS);
	memcpy(online, possible, NR_WORDS * sizeof(*online));
}

static void cpu_init(void)
{
	unsigned long possible[NR_WORDS], online[NR_WORDS];

	if (read_cpulist("/sys/devices/system/cpu/possible", possible) < 1 ||
	    read_cpulist("/sys/devices/system/cpu/online", online) < 1)
		cpu_sets_from_sysconf(possible, online);
	nr_possible = highest_bit(possible) + 1;
	for (unsigned w = 0; w < NR_WORDS; w++)
		atomic_store(&online_bits[w], online[w] & possible[w]);
}

unsigned uz_cpu_nr_possible(void)
{
	pthread_once(&cpu_once, cpu_init);
	return nr_possible;
}

bool uz_cpu_online(unsigned cpu)
{
	pthread_once(&cpu_once, cpu_init);
	if (cpu >= nr_possible)
		return false;
	return atomic_load(&online_bits[cpu / LONG_BITS]) &
	       (1ul << (cpu % LONG_BITS));
}

void uz_cpu_set_online(unsigned cpu, bool online)
{
	pthread_once(&cpu_once, cpu_init);
	if (cpu >= nr_possible)
		return;
	if (online)
		atomic_fetch_or(&online_bits[cpu / LONG_BITS],
				1ul << (cpu % LONG_BITS));
	else
		atomic_fetch_and(&online_bits[cpu / LONG_BITS],
				 ~(1ul << (cpu % LONG_BITS)));
}

unsigned uz_cpu_current(void)
{
	int cpu = sched_getcpu();
	unsigned n = uz_cpu_nr_possible();

	/* sched_getcpu() can fail (no vDSO/rseq) or exceed a cut-down
	 * possible set in a container: any in-range id is correct (I3). */
	if (cpu < 0)
		return 0;
	return (unsigned)cpu < n ? (unsigned)cpu : (unsigned)cpu % n;
}
