/*
 * place.c - where a region's handler runs: pinned to the CPU of the
 * thread whose faults it serves (follow), and unpinned by a watchdog when
 * it starves there (the starvation guard).
 *
 * Owns: the handler's CPU affinity, the process's pin watchdog thread and
 * its table of pinned handlers.
 *
 * Must never: allocate or take a lock (the watchdog runs beside handlers
 * that may be starved, a fork child's atfork handler resets it); pin a
 * handler that no watchdog looks at; touch region memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "region_int.h"
#include "regmap.h"
#include "thread.h"

/*
 * Follow: the handler runs on the CPU of the thread whose fault it read
 * last, pinned there. A fault puts its thread to sleep and wakes the
 * handler; the scheduler sends that wakeup to an idle CPU when there is
 * one, and waking the other, halted vCPU costs 34-47 us here against 7 us
 * for a handler on the faulting CPU, whose thread has just left it free
 * (ECOSYSTEM.md; `uzswap bench --region --pattern uniform`: fault p50
 * 20.5 us seen by the touching thread, 5.7 us of it in the handler).
 * Every FOLLOW_MS the handler reads where that thread ran
 * (/proc/self/task/TID/stat, field 39: 5-30 us, no allocation) and moves
 * its pin there; none when it cannot tell (the field unreadable, the CPU
 * refused: offline, outside a cpuset), so a pin never outlives its use.
 */
#define FOLLOW_MS 25

/*
 * The starvation guard. A pinned handler cannot leave its CPU, so a task
 * there that does not give the CPU up starves every fault of the region:
 * measured on main be60dd7, bench/run_redis.sh under `chrt -f 10`:
 * redis-benchmark spinning on the handler's CPU kept the handler runnable
 * and not running (its schedstat run time still for 5 s), redis-server at
 * 3% CPU, GET P1 705 ops/s. One watchdog thread per process (started with
 * the first pin, allowed every CPU, stopped and joined by the destroy that
 * finds no handler pinned any more: rg_place_reap) looks
 * every WATCH_MS at each pinned handler; one found runnable ('R') at every
 * look for STARVE_MS with its run time unchanged could have run all that
 * time and did not (a CFS task on a CPU shared with a dozen others waits
 * up to ~20 ms): the watchdog unpins it (from its own thread: the starved
 * one cannot) and says so, and the handler pins nothing for a back-off
 * that doubles each time (PIN_BACKOFF_MS, at most 8x). A handler that
 * runs, or sleeps in poll ('S'), is never touched.
 * Cost: two /proc reads per pinned handler each WATCH_MS. Lock-free: a
 * slot is a pinned handler's thread id (claimed by compare-and-swap, 0
 * when free) and a flag; the watchdog keeps its own last looks.
 */
#define WATCH_MS 10
#define STARVE_MS 50
#define PIN_BACKOFF_MS 1000

static struct pin_watch {
	_Atomic pid_t tid;	/* the pinned handler's, 0: free */
	_Atomic bool unpinned;	/* set by the watchdog, taken by the handler */
	pid_t seen_tid;		/* the watchdog's own: its last look, */
	uint64_t seen_run;	/* the run time then */
	uint64_t since;		/* runnable with that run time since (0: no) */
} pin_watch[UZ_REGMAP_MAX];
/* Starved handlers unpinned in this process (a test hook; hidden). */
_Atomic uint64_t uz_region_unpins;

/* Read /proc/self/task/TID/NAME into buf (NUL-terminated): its length,
 * or -1. */
static ssize_t task_file(pid_t tid, const char *name, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return n;
}

/* Thread tid's state letter ('R': running or runnable) and the CPU it
 * last ran on. 0, or -1 when it cannot be read. */
static int task_stat(pid_t tid, char *state, int *cpu)
{
	char buf[512];
	const char *p;

	if (task_file(tid, "stat", buf, sizeof(buf)) < 0)
		return -1;
	p = strrchr(buf, ')');	/* the name may hold spaces and ')' */
	if (!p || !p[1] || !p[2])
		return -1;
	*state = p[2];
	/* fields 3.. follow: the processor is the 37th of them (39th) */
	for (int f = 2; p && f < 39; f++)
		p = strchr(p + 1, ' ');
	*cpu = p ? atoi(p + 1) : -1;
	return 0;
}

/* Thread tid (0: this one) allowed cpu alone, or every CPU (cpu < 0). */
static int pin_to(pid_t tid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu >= 0 && cpu < CPU_SETSIZE)
		CPU_SET(cpu, &set);
	else
		for (int c = 0; c < CPU_SETSIZE; c++)
			CPU_SET(c, &set);
	return sched_setaffinity(tid, sizeof(set), &set);
}

/* One look at slot w: unpin a handler found runnable, and not run, at
 * every look for STARVE_MS. */
static void watch_one(struct pin_watch *w, uint64_t now)
{
	pid_t tid = atomic_load(&w->tid);
	char buf[96], st;
	uint64_t run;
	int cpu;

	if (!tid || task_stat(tid, &st, &cpu) < 0 ||
	    task_file(tid, "schedstat", buf, sizeof(buf)) < 0) {
		w->seen_tid = 0;
		return;
	}
	run = strtoull(buf, NULL, 10);	/* ns on a CPU */
	if (tid != w->seen_tid || st != 'R' || run != w->seen_run) {
		w->seen_tid = tid;	/* ran, or asleep: looked at afresh */
		w->seen_run = run;
		w->since = st == 'R' ? now : 0;
		return;
	}
	if (w->since && now - w->since >= STARVE_MS * 1000000ull &&
	    pin_to(tid, -1) == 0) {
		atomic_store(&w->unpinned, true);
		atomic_fetch_add(&uz_region_unpins, 1);
		w->seen_tid = 0;
	}
}

static bool watch_any(void)
{
	for (unsigned k = 0; k < UZ_REGMAP_MAX; k++)
		if (atomic_load(&pin_watch[k].tid))
			return true;
	return false;
}

/* The watchdog's life: IDLE (none), RUNNING, STOPPING (a destroy that
 * found no handler pinned is joining it). Each move is one thread's
 * compare-and-swap: the starter's IDLE -> RUNNING, the reaper's RUNNING
 * -> STOPPING, and only the reaper's join ends it: so one watchdog at a
 * time, and the static stack is free again when the next one starts. */
enum { W_IDLE, W_RUNNING, W_STOPPING };
static _Atomic int watch_state;
/* Its stack: static, so that a watchdog gone leaves no mapping behind
 * (glibc keeps the stacks of threads that exited); 2 MiB of BSS, touched
 * only as far as used (the thread's static TLS lives there too: TSan's
 * needs 900 KiB - with 64 KiB pthread_create failed, and every pin). */
static _Alignas(4096) unsigned char watch_stack[2u << 20];
static pthread_t watch_thread;

static void *pin_watchdog(void *arg)
{
	(void)arg;
	(void)pin_to(0, -1);	/* never where it was started from */
	while (atomic_load(&watch_state) == W_RUNNING) {
		uint64_t now = now_ns();

		for (unsigned k = 0; k < UZ_REGMAP_MAX; k++)
			watch_one(&pin_watch[k], now);
		usleep(WATCH_MS * 1000);
	}
	return NULL;
}

static void watch_child(void)	/* a fork child: no handlers, no watchdog */
{
	for (unsigned k = 0; k < UZ_REGMAP_MAX; k++)
		atomic_store(&pin_watch[k].tid, 0);
	atomic_store(&watch_state, W_IDLE);
}

static void watch_atfork(void)
{
	pthread_atfork(NULL, NULL, watch_child);
}

/* The watchdog running (started if it was not; false: it could not be,
 * or a destroy is stopping it - asked again at the next follow). */
static bool watch_start(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int idle = W_IDLE, err;
	pthread_attr_t at;

	pthread_once(&once, watch_atfork);
	if (!atomic_compare_exchange_strong(&watch_state, &idle, W_RUNNING))
		return idle == W_RUNNING;
	err = pthread_attr_init(&at);
	if (!err) {
		err = pthread_attr_setstack(&at, watch_stack,
					    sizeof(watch_stack));
		if (!err)
			err = uz_thread_start_attr(&watch_thread, &at,
						   pin_watchdog, NULL);
		pthread_attr_destroy(&at);
	}
	if (err)
		atomic_store(&watch_state, W_IDLE);
	return !err;
}

/* Destroy, its handler joined: no handler pinned any more, the watchdog
 * is stopped and joined (within WATCH_MS), so that no thread of ours
 * outlives the last region. */
void rg_place_reap(void)
{
	int run = W_RUNNING;

	if (watch_any() ||
	    !atomic_compare_exchange_strong(&watch_state, &run, W_STOPPING))
		return;
	pthread_join(watch_thread, NULL);
	atomic_store(&watch_state, W_IDLE);
}

/* A slot for the handler, claimed before it pins itself, then the
 * watchdog made sure of (in that order: a destroy's reap stops it only
 * while no slot is claimed). */
static bool watch_claim(struct uz_region *r)
{
	for (unsigned k = 0; k < UZ_REGMAP_MAX && r->watch_slot < 0; k++) {
		pid_t none = 0;

		if (atomic_compare_exchange_strong(&pin_watch[k].tid, &none,
						   r->tid)) {
			atomic_store(&pin_watch[k].unpinned, false);
			r->watch_slot = (int)k;
		}
	}
	if (r->watch_slot >= 0 && !watch_start())
		rg_place_release(r);
	return r->watch_slot >= 0;
}

void rg_place_release(struct uz_region *r)
{
	if (r->watch_slot >= 0)
		atomic_store(&pin_watch[r->watch_slot].tid, 0);
	r->watch_slot = -1;
}

/* The watchdog unpinned us: not pinned now, and no pin for the back-off
 * (doubled each time). */
static bool watch_starved(struct uz_region *r, uint64_t now)
{
	const uint64_t max = 8 * PIN_BACKOFF_MS * 1000000ull;

	if (r->watch_slot < 0 ||
	    !atomic_exchange(&pin_watch[r->watch_slot].unpinned, false))
		return false;
	rg_place_release(r);
	r->pin_cpu = -1;
	r->pin_backoff = r->pin_backoff ? 2 * r->pin_backoff :
			 PIN_BACKOFF_MS * 1000000ull;
	r->pin_backoff = r->pin_backoff > max ? max : r->pin_backoff;
	r->follow_at = now + r->pin_backoff;
	return true;
}

void rg_follow_faulter(struct uz_region *r)
{
	uint64_t now = now_ns();
	char st;
	int cpu;

	if (!r->tid)
		r->tid = (pid_t)syscall(SYS_gettid);
	if (watch_starved(r, now))
		return;
	if (r->watch_slot >= 0 && atomic_load(&watch_state) != W_RUNNING)
		(void)watch_start();	/* a reap that raced our claim */
	if (!r->fault_tid || now < r->follow_at)
		return;
	r->follow_at = now + FOLLOW_MS * 1000000ull;
	if (task_stat(r->fault_tid, &st, &cpu) < 0)
		cpu = -1;	/* cannot tell: anywhere */
	r->fault_tid = 0;
	if (cpu == r->pin_cpu)
		return;
	if (cpu >= 0 && !watch_claim(r))
		cpu = -1;	/* no guard: no pin */
	if (pin_to(0, cpu) == 0)
		r->pin_cpu = cpu;
	else if (cpu >= 0 && pin_to(0, -1) == 0)
		r->pin_cpu = -1;	/* refused: unpinned, not left behind */
	if (r->pin_cpu < 0)
		rg_place_release(r);
}
