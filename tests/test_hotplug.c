/*
 * test_hotplug.c - the context lifecycle under CPU hotplug (I1-I4):
 * offline frees nothing and online rebuilds nothing (same resources);
 * a store on a CPU marked offline works; a thread on a CPU that was never
 * prepared falls back to a prepared context; pool destroy waits for a
 * prepare in flight; the event thread runs only while a pool exists.
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

static struct uzswap *open_uz(void)
{
	struct uzswap_options o;
	struct uzswap *uz;

	uzswap_options_init(&o);
	o.nr_pages = 256;
	T_EQ(uzswap_open(&o, &uz), 0);
	return uz;
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
	struct uzswap *uz = open_uz();
	unsigned cpu = uz_cpu_nr_possible() - 1;
	const void *before = uz_pool_ctx_resources(uz->current, cpu);

	T_ASSERT(before);
	T_EQ(uzswap_hotplug_inject(cpu, false), 0);
	T_ASSERT(!uz_cpu_online(cpu));
	T_ASSERT(uz_pool_ctx_resources(uz->current, cpu) == before);
	if (pin_to(cpu))	/* I3: a CPU marked offline still works */
		store_check(uz, 1);
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
		printf("one CPU: fallback part not run\n");
		return;
	}
	T_EQ(uzswap_hotplug_inject(cpu, false), 0);
	uz = open_uz();
	T_ASSERT(uz_pool_ctx_resources(uz->current, cpu) == NULL);
	T_ASSERT(uz_pool_ctx_resources(uz->current, 0) != NULL);
	if (pin_to(cpu))
		for (uint64_t off = 0; off < 16; off++)
			store_check(uz, off);
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
	struct uzswap *uz = open_uz();
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
	struct uzswap *uz = open_uz(), *uz2 = open_uz();

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
	test_inject_args();
	test_offline_keeps();
	test_unprepared_cpu();
	test_destroy_waits_prepare();
	test_event_thread();
	free(corpus);
	return T_PASS;
}
