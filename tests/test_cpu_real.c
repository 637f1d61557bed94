/*
 * test_cpu_real - real CPU hotplug, not injected: while the torture
 * workload runs on real pages, CPU 1 is really taken offline and back
 * through sysfs, 10 times. Pins down:
 *   - the library saw every transition from the kernel (uevents; with no
 *     uevent socket, at least one sysfs re-read per direction), and its
 *     online set ends equal to the kernel's;
 *   - I2: a context prepared before the flips keeps exactly the same
 *     resources through them (prepared once, never freed at offline), and
 *     a pool made while CPU 1 was offline gets its context prepared when
 *     CPU 1 returns;
 *   - the torture saw no torn, wrong or lost page and no error.
 * Every CPU is put back online in every exit path (atexit, and a handler
 * for the fatal signals). Needs root and an offlinable CPU 1: skips (77)
 * otherwise.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "cpu.h"
#include "helpers.h"
#include "instance.h"
#include "torture.h"
#include "uzswap.h"

#define CPU1 "/sys/devices/system/cpu/cpu1/online"
#define FLIPS 10

static int cpu1_set(int on)
{
	int fd = open(CPU1, O_WRONLY);
	ssize_t n = -1;

	if (fd >= 0) {
		n = write(fd, on ? "1" : "0", 1);
		close(fd);
	}
	return n == 1 ? 0 : -1;
}

static void restore(void)
{
	(void)cpu1_set(1);
}

static void on_signal(int sig)
{
	restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

struct run {
	struct uz_torture_opts o;
	struct uz_torture_result r;
	int rc;
};

static void *torture(void *arg)
{
	struct run *t = arg;

	t->rc = uz_torture_run(&t->o, &t->r);
	return NULL;
}

static uint64_t kernel_events(struct uzswap *uz)
{
	struct uzswap_stats st;

	T_EQ(uzswap_get_stats(uz, &st), 0);
	return st.hotplug_uevent + st.hotplug_sysfs;
}

int main(void)
{
	const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGSEGV,
			     SIGBUS, SIGFPE };
	struct uzswap_options o;
	struct uzswap *uz, *uz2 = NULL;
	struct run t = { 0 };
	bool away = false;
	pthread_t th;
	uint8_t *pages;
	const void *before, *after;
	uint64_t ev0, ev;

	if (geteuid() != 0 || access(CPU1, W_OK) != 0 || cpu1_set(1) != 0)
		t_skip("needs root and a CPU 1 that can go offline (%s)", CPU1);
	atexit(restore);
	for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_signal);
	uz_torture_defaults(&t.o);
	t.o.nr_src = t_corpus_or_skip("sqlite.pages", &pages);
	t.o.pages = pages;
	t.o.nr_pages = 1024;
	t.o.hotplug_interval_us = 0;	/* only real events */
	t.o.seconds = 2.5;

	uzswap_options_init(&o);
	o.nr_pages = 64;
	T_EQ(uzswap_open(&o, &uz), 0);
	before = uz_pool_ctx_resources(uz->current, 1);
	T_ASSERT(before != NULL);
	ev0 = kernel_events(uz);
	T_EQ(pthread_create(&th, NULL, torture, &t), 0);
	for (int i = 0; i < FLIPS; i++) {
		sleep_ms(50);
		if (cpu1_set(0) != 0) {
			restore();
			t_skip("CPU 1 refused to go offline: %s",
			       strerror(errno));
		}
		if (i == FLIPS / 2) {
			/* A pool made while CPU 1 is away (once the library
			 * knows: then CPU 1's context is not prepared). */
			for (int w = 0; w < 100 && uz_cpu_online(1); w++)
				sleep_ms(5);
			T_EQ(uzswap_open(&o, &uz2), 0);
			away = !uz_pool_ctx_resources(uz2->current, 1);
		}
		sleep_ms(50);
		T_EQ(cpu1_set(1), 0);
	}
	pthread_join(th, NULL);
	/* The uevents are asynchronous: give the library up to 3 s. */
	for (int w = 0; w < 30 && kernel_events(uz) - ev0 < 2 * FLIPS; w++)
		sleep_ms(100);
	ev = kernel_events(uz) - ev0;
	printf("%d flips of CPU 1: the library saw %llu kernel events; "
	       "torture %llu ops, %llu mismatches, %llu errors\n", FLIPS,
	       (unsigned long long)ev, (unsigned long long)t.r.ops,
	       (unsigned long long)t.r.mismatches,
	       (unsigned long long)t.r.errors);
	T_EQ(t.rc, 0);
	T_ASSERT(t.r.ops > 0);
	/* Every transition when uevents arrive; else at least the sysfs
	 * re-reads caught one of each (they coalesce flips). */
	T_ASSERT(ev == 2 * FLIPS || ev >= 2);
	T_ASSERT(uz_cpu_online(1));
	/* I2: the same resources, built once, kept across every offline. */
	after = uz_pool_ctx_resources(uz->current, 1);
	T_ASSERT(after == before);
	/* The pool made while CPU 1 was away: prepared on its return. */
	T_ASSERT(uz_pool_ctx_resources(uz2->current, 1) != NULL);
	printf("I2: resources of CPU 1 unchanged through the flips; a pool "
	       "made %s CPU 1 was offline prepared it %s\n",
	       away ? "while" : "(the library had not yet seen that)",
	       away ? "when it came back" : "at create");
	uzswap_close(uz2);
	uzswap_close(uz);
	free(pages);
	return T_PASS;
}
