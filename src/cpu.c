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
#include <sys/rseq.h>
#include <unistd.h>

#define LONG_BITS (8 * sizeof(unsigned long))
#define NR_WORDS (UZ_MAX_CPUS / LONG_BITS)

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static unsigned nr_possible, nr_present;
/* nr_possible, published once cpu_init() finished: the hot path's check. */
static atomic_uint nr_possible_ready;
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
	unsigned long present[NR_WORDS];

	nr_possible = highest_bit(possible) + 1;
	nr_present = (unsigned)read_cpulist("/sys/devices/system/cpu/present",
					    present);
	if ((int)nr_present < 1)
		nr_present = nr_possible;
	for (unsigned w = 0; w < NR_WORDS; w++)
		atomic_store(&online_bits[w], online[w] & possible[w]);
	atomic_store_explicit(&nr_possible_ready, nr_possible,
			      memory_order_release);
}

unsigned uz_cpu_nr_possible(void)
{
	unsigned n = atomic_load_explicit(&nr_possible_ready,
					  memory_order_acquire);

	if (__builtin_expect(n != 0, 1))
		return n;
	pthread_once(&cpu_once, cpu_init);
	return nr_possible;
}

unsigned uz_cpu_nr_present(void)
{
	pthread_once(&cpu_once, cpu_init);
	return nr_present;
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

/*
 * rseq's cpu_id, kept up to date by the kernel in this thread's rseq
 * area, where glibc registered one (__rseq_size != 0): one load. Else
 * sched_getcpu().
 */
static int cpu_raw(void)
{
	if (__rseq_size) {
		const struct rseq *rs = (const struct rseq *)(void *)
			((char *)__builtin_thread_pointer() + __rseq_offset);
		int cpu = (int)__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);

		if (cpu >= 0)
			return cpu;
	}
	return sched_getcpu();
}

unsigned uz_cpu_current(void)
{
	int cpu = cpu_raw();
	unsigned n = uz_cpu_nr_possible();

	/* sched_getcpu() can fail (no vDSO/rseq) or exceed a cut-down
	 * possible set in a container: any in-range id is correct (I3). */
	if (cpu < 0)
		return 0;
	return (unsigned)cpu < n ? (unsigned)cpu : (unsigned)cpu % n;
}
