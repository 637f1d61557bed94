/*
 * test_run_ranges.c - the address-range allocator of uzswap run's preload
 * (tools/run/ranges.c), against a model.
 *
 * Pins down: every range handed out lies inside the reserve, is aligned
 * as asked and overlaps no other live range; giving back merges (after
 * all is given back the whole reserve is one range again), counts only
 * the bytes that were handed out (giving back a free part changes
 * nothing), and a take of a range that is not all free changes nothing;
 * used() always equals the model's count. Then 4 threads allocating and
 * giving back at once, each page's owner checked (run it under TSan).
 * The op sequence comes from a fixed-seed generator: the allocator sees
 * addresses, not page contents. Exit 0 pass, 1 fail.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranges.h"

#define PG 4096u
#define NPG 4096u		/* 16 MiB of address space, never touched */
#define BASE ((uintptr_t)1 << 40)

static unsigned char owner[NPG];	/* model: 0 free, else 1 */
static size_t owned;			/* pages with owner[i] set */
static int bad;

#define CHECK(c, ...) do { if (!(c)) { printf("FAIL %s:%d: ", __FILE__, \
	__LINE__); printf(__VA_ARGS__); printf("\n"); bad = 1; return; } } \
	while (0)

static size_t model_used(void)
{
	return owned * PG;
}

static void one_alloc(size_t pages, size_t align)
{
	uintptr_t a = uzr_ranges_alloc(pages * PG, align);
	size_t first;

	if (!a)
		return;		/* full or fragmented: allowed */
	CHECK(a >= BASE && a + pages * PG <= BASE + NPG * PG,
	      "range %#lx+%zu outside", (unsigned long)a, pages);
	CHECK(a % align == 0, "%#lx not aligned to %zu", (unsigned long)a,
	      align);
	first = (a - BASE) / PG;
	for (size_t i = first; i < first + pages; i++) {
		CHECK(!owner[i], "page %zu handed out twice", i);
		owner[i] = 1;
		owned++;
	}
}

static void one_give(size_t first, size_t pages)
{
	size_t want = 0, got;

	for (size_t i = first; i < first + pages && i < NPG; i++) {
		want += owner[i];
		owner[i] = 0;
	}
	owned -= want;
	got = uzr_ranges_give(BASE + first * PG, pages * PG);
	CHECK(got == want * PG, "give %zu+%zu freed %zu, model %zu", first,
	      pages, got / PG, want);
}

static void one_take(size_t first, size_t pages)
{
	int all_free = 1, rc;

	for (size_t i = first; i < first + pages; i++)
		all_free &= !owner[i];
	rc = uzr_ranges_take(BASE + first * PG, pages * PG);
	CHECK((rc == 0) == all_free, "take %zu+%zu: %d, all free %d", first,
	      pages, rc, all_free);
	if (rc == 0) {
		memset(owner + first, 1, pages);
		owned += pages;
	}
}

static void model_run(void)
{
	unsigned seed = 1;

	uzr_ranges_init(BASE, NPG * PG);
	for (int op = 0; op < 50000 && !bad; op++) {
		unsigned r = rand_r(&seed);
		size_t pages = 1 + r % 64, first = (r >> 8) % (NPG - 64);

		if (r % 3 == 0)
			one_alloc(pages, (r >> 20) % 4 ? PG : 32 * PG);
		else if (r % 3 == 1)
			one_give(first, pages);
		else
			one_take(first, pages);
		if (!bad && uzr_ranges_used() != model_used()) {
			printf("FAIL: used %zu, model %zu after op %d\n",
			       uzr_ranges_used() / PG, model_used() / PG, op);
			bad = 1;
		}
	}
	one_give(0, NPG);	/* all back: one interval again */
	if (!bad && uzr_ranges_alloc(NPG * PG, PG) != BASE) {
		printf("FAIL: the whole reserve is not one range after all "
		       "was given back\n");
		bad = 1;
	}
}

static _Atomic int pg_owner[NPG];

static void *worker(void *arg)
{
	int me = (int)(intptr_t)arg;
	unsigned seed = (unsigned)me;

	for (int op = 0; op < 20000; op++) {
		size_t pages = 1 + rand_r(&seed) % 16, first;
		uintptr_t a = uzr_ranges_alloc(pages * PG, PG);

		if (!a)
			continue;
		first = (a - BASE) / PG;
		for (size_t i = first; i < first + pages; i++) {
			int zero = 0;

			if (!atomic_compare_exchange_strong(&pg_owner[i], &zero,
							    me)) {
				printf("FAIL: page %zu of thread %d handed to "
				       "thread %d\n", i, zero, me);
				exit(1);
			}
		}
		for (size_t i = first; i < first + pages; i++)
			atomic_store(&pg_owner[i], 0);
		uzr_ranges_give(a, pages * PG);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[4];

	model_run();
	if (bad)
		return 1;
	uzr_ranges_init(BASE, NPG * PG);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, worker, (void *)(intptr_t)(i + 1));
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	if (uzr_ranges_used() != 0) {
		printf("FAIL: %zu bytes still used after the threads\n",
		       uzr_ranges_used());
		return 1;
	}
	printf("PASS\n");
	return 0;
}
