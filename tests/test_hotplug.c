/*
 * test_hotplug.c - the context lifecycle under CPU hotplug (I1-I4).
 *
 * Pins down: offline frees nothing and online rebuilds nothing (same
 * resources); a thread running on a CPU marked offline stores and loads
 * through that CPU's own context; a thread on a CPU that was never
 * prepared goes through the pool's fallback context and allocates nothing
 * for its CPU; pool destroy waits for a prepare in flight; the event
 * thread runs only while a pool exists; bad injections change nothing.
 *
 * The two parts that run a thread on the last CPU need to be able to pin
 * to it (and a second CPU): where that is impossible (one CPU, an affinity
 * mask or cpuset without it) the rest still runs, and the test then exits
 * 77 (skip) naming what did not run, never 0.
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "cpu.h"
#include "hotplug.h"
#include "instance.h"
#include "uzswap.h"
#include "uzswap_test.h"

static uint8_t *corpus;
static uint8_t out[T_PAGE];
static cpu_set_t start_mask;	/* the affinity main() began with */
static const char *not_run;	/* the first part that could not run */

static void cannot_run(const char *what)
{
	printf("not run: %s\n", what);
	if (!not_run)
		not_run = what;
}

/* Context locks taken on cpu's own context of uz's current pool. */
static unsigned long ctx_locks(struct uzswap *uz, unsigned cpu)
{
	struct uz_ctx *ctx = &uz->current->ctxs[cpu];
	unsigned long n;

	pthread_mutex_lock(&ctx->lock);
	n = ctx->nr_locked;
	pthread_mutex_unlock(&ctx->lock);
	return n;
}


static void store_check(struct uzswap *uz, uint64_t off)
{
	const uint8_t *p = corpus + (300 + off) * T_PAGE;

	T_EQ(uzswap_store(uz, off, p), 0);
	T_EQ(uzswap_load(uz, off, out), 0);
	T_ASSERT(memcmp(out, p, T_PAGE) == 0);
}

static bool pin_to(unsigned cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0 &&
	       uz_cpu_current() == cpu;
}

static void unpin(void)
{
	T_EQ(sched_setaffinity(0, sizeof(start_mask), &start_mask), 0);
}

static void test_inject_args(void)
{
	struct uz_hp_counters a, b;
	unsigned n = uz_cpu_nr_possible();

	uz_hp_get_counters(&a);
	T_EQ(uzswap_hotplug_inject(n, false), -EINVAL);
	T_EQ(uzswap_hotplug_inject(UINT32_MAX, true), -EINVAL);
	T_EQ(uzswap_hotplug_inject(0, true), 0);	/* already online */
	uz_hp_get_counters(&b);
	T_EQ(b.events, a.events);
}

/* I2: offline then online keeps the very same resources. */
static void test_offline_keeps(void)
{
	struct uzswap *uz = t_open_cache(256, NULL);
	unsigned cpu = uz_cpu_nr_possible() - 1;
	const void *before = uz_pool_ctx_resources(uz->current, cpu);

	T_ASSERT(before);
	T_EQ(uzswap_hotplug_inject(cpu, false), 0);
	T_ASSERT(!uz_cpu_online(cpu));
	T_ASSERT(uz_pool_ctx_resources(uz->current, cpu) == before);
	if (pin_to(cpu)) {	/* I3: a CPU marked offline still works */
		unsigned long locks = ctx_locks(uz, cpu);

		store_check(uz, 1);	/* store and load: 2 locks */
		T_EQ(ctx_locks(uz, cpu) - locks, 2);
	} else {
		cannot_run("store on a CPU marked offline (cannot pin there)");
	}
	unpin();
	T_EQ(uzswap_hotplug_inject(cpu, true), 0);
	T_ASSERT(uz_pool_ctx_resources(uz->current, cpu) == before);
	store_check(uz, 2);
	uzswap_close(uz);
}

/* I3 fallback: a pool made while cpu was offline has no resources for
 * it; a thread running there uses the fallback context; online builds. */
static void test_unprepared_cpu(void)
{
	unsigned cpu = uz_cpu_nr_possible() - 1;
	struct uzswap *uz;

	if (cpu == 0) {
		cannot_run("fallback context (one possible CPU)");
		return;
	}
	T_EQ(uzswap_hotplug_inject(cpu, false), 0);
	uz = t_open_cache(256, NULL);
	T_ASSERT(uz_pool_ctx_resources(uz->current, cpu) == NULL);
	T_ASSERT(uz_pool_ctx_resources(uz->current, 0) != NULL);
	if (pin_to(cpu)) {
		unsigned fb = uz->current->fallback_cpu;
		unsigned long before = ctx_locks(uz, fb);

		T_ASSERT(fb != cpu && uz_pool_ctx_resources(uz->current, fb));
		for (uint64_t off = 0; off < 16; off++)
			store_check(uz, off);
		/* every store and load went through the fallback context */
		T_EQ(ctx_locks(uz, fb) - before, 32);
	} else {
		cannot_run("fallback context (cannot pin to the last CPU)");
	}
	unpin();
	T_ASSERT(uz_pool_ctx_resources(uz->current, cpu) == NULL);
	T_EQ(uzswap_hotplug_inject(cpu, true), 0);
	T_ASSERT(uz_pool_ctx_resources(uz->current, cpu) != NULL);
	store_check(uz, 20);
	uzswap_close(uz);
}

static atomic_int hook_state;	/* 0 idle, 1 armed, 2 blocked, 3 go */

static void blocking_hook(unsigned cpu)
{
	int armed = 1;
	(void)cpu;
	if (!atomic_compare_exchange_strong(&hook_state, &armed, 2))
		return;
	while (atomic_load(&hook_state) != 3)
		usleep(1000);
}

static void *online_thread(void *arg)
{
	uzswap_hotplug_inject((unsigned)(uintptr_t)arg, true);
	return NULL;
}

static atomic_bool closed;

static void *close_thread(void *arg)
{
	uzswap_close(arg);
	atomic_store(&closed, true);
	return NULL;
}

/* I4: destroy waits for a prepare of its pool that is in flight. */
static void test_destroy_waits_prepare(void)
{
	unsigned cpu = uz_cpu_nr_possible() - 1;
	struct uzswap *uz = t_open_cache(256, NULL);
	pthread_t a, b;

	T_EQ(uzswap_hotplug_inject(cpu, false), 0);
	uz_hp_prepare_hook = blocking_hook;
	atomic_store(&hook_state, 1);
	pthread_create(&a, NULL, online_thread, (void *)(uintptr_t)cpu);
	while (atomic_load(&hook_state) != 2)
		usleep(1000);
	pthread_create(&b, NULL, close_thread, uz);
	usleep(200 * 1000);
	T_ASSERT(!atomic_load(&closed));	/* blocked behind prepare */
	atomic_store(&hook_state, 3);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	T_ASSERT(atomic_load(&closed));
	uz_hp_prepare_hook = NULL;
	T_ASSERT(uz_cpu_online(cpu));
}

static void test_event_thread(void)
{
	struct uz_hp_counters c;
	struct uzswap *uz = t_open_cache(256, NULL), *uz2 = t_open_cache(256, NULL);

	uz_hp_get_counters(&c);
	T_ASSERT(c.thread_running);
	printf("event source: %s\n", c.thread_uses_netlink ?
	       "kernel uevents (netlink)" : "sysfs polling");
	uzswap_close(uz);
	uz_hp_get_counters(&c);
	T_ASSERT(c.thread_running);	/* uz2's pool still there */
	uzswap_close(uz2);
	uz_hp_get_counters(&c);
	T_ASSERT(!c.thread_running);
}

int main(void)
{
	t_corpus_or_skip("gcc.pages", &corpus);
	T_EQ(sched_getaffinity(0, sizeof(start_mask), &start_mask), 0);
	test_inject_args();
	test_offline_keeps();
	test_unprepared_cpu();
	test_destroy_waits_prepare();
	test_event_thread();
	free(corpus);
	if (not_run)	/* everything else passed; this part never ran */
		t_skip("%s", not_run);
	return T_PASS;
}
