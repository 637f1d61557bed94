/*
 * test_zsmalloc.c - the zsmalloc allocator against a reference model.
 *
 * Pins down: invalid sizes are -EINVAL with no handle; every size
 * 1..4096 fits with under 5% overhead; through random alloc/free/write/
 * compact sequences every live object keeps exactly its bytes; a mapped
 * (pinned) object, for reading or writing, does not move under
 * compaction, and once unmapped it does; memory goes back when objects go; a fault at every allocation
 * site of create, malloc and compact is -ENOMEM with nothing lost; and
 * nothing leaks (ASan sees malloc, and this file counts every byte
 * mmap'ed minus munmap'ed, which must be back to zero after destroy).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "fault.h"
#include "helpers.h"
#include "zalloc.h"
#include "zsmalloc/zsmalloc_int.h"	/* uz_zs_set_spares() */

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define __SANITIZE_THREAD__ 1
#endif
#endif

/* This test is single-threaded: TSan checks little here and runs it 2-4x
 * slower than ASan (148 s at load 10, past ctest's 300 s when CI runs it
 * beside other TSan tests on a loaded machine), so a TSan build does a
 * quarter of the random steps and objects. */
#ifdef __SANITIZE_THREAD__
#define SCALE 4
#else
#define SCALE 1
#endif

static atomic_long mapped_bytes;
static long mapped_base;	/* what runtimes mapped before main */

#ifndef __SANITIZE_THREAD__	/* TSan's own mmap must come first */

/* Interposed: counts the mappings fault.c makes for the allocator. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static void *(*real)(void *, size_t, int, int, int, off_t);
	void *p;

	if (!real)
		real = (void *(*)(void *, size_t, int, int, int, off_t))
			dlsym(RTLD_NEXT, "mmap");
	p = real(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED)
		atomic_fetch_add(&mapped_bytes, (long)len);
	return p;
}

int munmap(void *addr, size_t len)
{
	static int (*real)(void *, size_t);
	int r;

	if (!real)
		real = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
	r = real(addr, len);
	if (r == 0)
		atomic_fetch_sub(&mapped_bytes, (long)len);
	return r;
}
#endif

struct obj {
	uz_handle_t h;
	size_t size;
	uint32_t ver;
};

/* Content derived from (handle, version): any stale or torn copy shows. */
static void fill(uint8_t *buf, uz_handle_t h, uint32_t ver, size_t size)
{
	uint64_t s = h * 0x9e3779b97f4a7c15ull + ver + 1;

	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(t_rand(&s) >> 56);
}

static void put(struct uz_zalloc *za, struct obj *o)
{
	uint8_t buf[UZ_ZALLOC_MAX_OBJ];

	fill(buf, o->h, o->ver, o->size);
	uz_zalloc_write(za, o->h, buf, o->size);
}

static void check(struct uz_zalloc *za, const struct obj *o)
{
	uint8_t want[UZ_ZALLOC_MAX_OBJ], tmp[UZ_ZALLOC_MAX_OBJ];
	const void *p;

	fill(want, o->h, o->ver, o->size);
	p = uz_zalloc_map_read(za, o->h, tmp);
	T_ASSERT(p != NULL);
	if (memcmp(p, want, o->size) != 0) {
		fprintf(stderr, "object %llu (size %zu) lost its bytes\n",
			(unsigned long long)o->h, o->size);
		exit(T_FAIL);
	}
	uz_zalloc_unmap_read(za, o->h);
}

static void check_all(struct uz_zalloc *za, const struct obj *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].h)
			check(za, &v[i]);
}

static void alloc_obj(struct uz_zalloc *za, struct obj *o, size_t size)
{
	o->size = size;
	o->ver = 0;
	T_EQ(uz_zalloc_malloc(za, size, &o->h), 0);
	T_ASSERT(o->h != 0);
	put(za, o);
}

static void test_invalid(void)
{
	struct uz_zalloc *za = uz_zalloc_create();
	uz_handle_t h = 0;

	T_ASSERT(za);
	T_EQ(uz_zalloc_malloc(za, 0, &h), -EINVAL);
	T_EQ(uz_zalloc_malloc(za, UZ_ZALLOC_MAX_OBJ + 1, &h), -EINVAL);
	T_EQ(uz_zalloc_malloc(za, (size_t)-1, &h), -EINVAL);
	T_EQ(h, 0);
	uz_zalloc_free(za, 0);
	uz_zalloc_destroy(za);
	uz_zalloc_destroy(NULL);
}

/* Every size from 1 to a page; half freed; compacted; all freed. */
static void test_every_size(void)
{
	struct uz_zalloc *za = uz_zalloc_create();
	struct obj *v = calloc(UZ_ZALLOC_MAX_OBJ + 1, sizeof(*v));
	size_t empty = uz_zalloc_total_bytes(za), sum = 0;

	T_ASSERT(za && v);
	for (size_t s = 1; s <= UZ_ZALLOC_MAX_OBJ; s++) {
		alloc_obj(za, &v[s], s);
		sum += s;
	}
	check_all(za, v, UZ_ZALLOC_MAX_OBJ + 1);
#ifndef __SANITIZE_THREAD__
	T_ASSERT(atomic_load(&mapped_bytes) - mapped_base >= (long)sum);
#endif
	T_ASSERT(uz_zalloc_total_bytes(za) >= sum);
	T_ASSERT(uz_zalloc_total_bytes(za) < sum + sum / 20 + 128 * 1024);
	for (size_t s = 1; s <= UZ_ZALLOC_MAX_OBJ; s += 2) {
		uz_zalloc_free(za, v[s].h);
		v[s].h = 0;
	}
	uz_zalloc_compact(za);
	check_all(za, v, UZ_ZALLOC_MAX_OBJ + 1);
	for (size_t s = 2; s <= UZ_ZALLOC_MAX_OBJ; s += 2)
		uz_zalloc_free(za, v[s].h);
	/* Only the handle table and a few pages per open span remain. */
	T_ASSERT(uz_zalloc_total_bytes(za) <=
		 empty + (UZ_ZALLOC_MAX_OBJ / 511 + 2) * 4096 +
			 sysconf(_SC_NPROCESSORS_CONF) * 4 * 4096L);
	uz_zalloc_destroy(za);
	free(v);
}

static size_t rand_size(uint64_t *rs)
{
	uint64_t r = t_rand(rs);

	switch (r % 4) {
	case 0:
		return 1 + (r >> 8) % 64;		/* tiny */
	case 1:
		return 1 + (r >> 8) % UZ_ZALLOC_MAX_OBJ;
	default:
		return 200 + (r >> 8) % 2900;	/* like compressed pages */
	}
}

/* Random alloc/free/write/compact against the model in v[]. */
static void test_model(uint64_t seed, size_t slots, long steps)
{
	struct uz_zalloc *za = uz_zalloc_create();
	struct obj *v = calloc(slots, sizeof(*v));
	size_t empty = uz_zalloc_total_bytes(za);

	T_ASSERT(za && v);
	for (long i = 0; i < steps; i++) {
		uint64_t r = t_rand(&seed);
		struct obj *o = &v[r % slots];

		if (!o->h) {
			alloc_obj(za, o, rand_size(&seed));
		} else if ((r >> 32) % 8 < 5) {
			check(za, o);
			uz_zalloc_free(za, o->h);
			o->h = 0;
		} else {
			o->ver++;
			put(za, o);
		}
		if ((r >> 40) % (steps / 20) == 0) {
			uz_zalloc_compact(za);
			check_all(za, v, slots);
		}
	}
	check_all(za, v, slots);
	uz_zalloc_compact(za);
	check_all(za, v, slots);
	for (size_t i = 0; i < slots; i++)
		uz_zalloc_free(za, v[i].h);
	uz_zalloc_compact(za);
	T_ASSERT(uz_zalloc_total_bytes(za) <=
		 empty + (slots / 511 + 2) * 4096 +
			 sysconf(_SC_NPROCESSORS_CONF) * 4 * 4096L);
	uz_zalloc_destroy(za);
	free(v);
}

/* A mapped object stays put through compaction; it moves once unmapped
 * (it sits in the sparse first span). Mapped for writing: the bytes
 * written through the mapping, after compaction ran, are the object's. */
static void test_pinned(bool for_write)
{
	struct uz_zalloc *za = uz_zalloc_create();
	struct obj v[400];
	uint8_t tmp[UZ_ZALLOC_MAX_OBJ];
	const void *p, *q;

	T_ASSERT(za);
	for (int i = 0; i < 400; i++)
		alloc_obj(za, &v[i], 1000);
	for (int i = 0; i < 400; i++) {
		if (i % 10) {
			uz_zalloc_free(za, v[i].h);
			v[i].h = 0;
		}
	}
	p = for_write ? uz_zalloc_map_write(za, v[0].h) :
			uz_zalloc_map_read(za, v[0].h, tmp);
	T_ASSERT(uz_zalloc_compact(za) > 0);
	q = uz_zalloc_map_read(za, v[0].h, tmp);	/* second pin is fine */
	T_ASSERT(p == q);
	uz_zalloc_unmap_read(za, v[0].h);
	if (for_write) {
		fill((uint8_t *)p, v[0].h, ++v[0].ver, v[0].size);
		uz_zalloc_unmap_write(za, v[0].h);
	} else {
		uz_zalloc_unmap_read(za, v[0].h);
	}
	check_all(za, v, 400);
	/* Unpinned, the object in the sparse first span moves too. */
	T_ASSERT(uz_zalloc_compact(za) > 0);
	q = uz_zalloc_map_read(za, v[0].h, tmp);
	uz_zalloc_unmap_read(za, v[0].h);
	T_ASSERT(p != q);
	check_all(za, v, 400);
	uz_zalloc_destroy(za);
}

static void test_fault_create(void)
{
	for (long n = 1;; n++) {
		struct uz_zalloc *za;

		uz_fault_arm(n);
		za = uz_zalloc_create();
		uz_fault_disarm();
		if (za) {
			T_ASSERT(n > 1);
			uz_zalloc_destroy(za);
			return;
		}
	}
}

/*
 * Walk n = 1, 2, ... over one malloc: every failure is -ENOMEM, leaves
 * the allocator as it was, and a later try succeeds.
 */
static void malloc_with_faults(struct uz_zalloc *za, struct obj *o,
			       size_t size, const struct obj *v, size_t n)
{
	for (long nth = 1;; nth++) {
		size_t before = uz_zalloc_total_bytes(za);
		int r;

		uz_fault_arm(nth);
		r = uz_zalloc_malloc(za, size, &o->h);
		uz_fault_disarm();
		if (r == 0)
			break;
		T_EQ(r, -ENOMEM);
		/* A new handle-table page may stay (its entries are free). */
		T_ASSERT(uz_zalloc_total_bytes(za) <= before + 2 * 4096);
		check_all(za, v, n);
	}
	o->size = size;
	o->ver = 0;
	put(za, o);
}

/* Objects of 1500..2999 bytes; then two in three freed at random. */
static struct uz_zalloc *fragmented(struct obj *v, size_t n, bool faults)
{
	struct uz_zalloc *za = uz_zalloc_create();
	uint64_t seed = 7;

	T_ASSERT(za);
	/* No spare spans: every new span is an mmap, a fault point. */
	uz_zs_set_spares(za, 0);
	for (size_t i = 0; i < n; i++) {
		if (faults)
			malloc_with_faults(za, &v[i], 1500 + i % 1500, v, i);
		else
			alloc_obj(za, &v[i], 1500 + i % 1500);
	}
	check_all(za, v, n);
	for (size_t i = 0; i < n; i++) {
		if (t_rand(&seed) % 3) {
			uz_zalloc_free(za, v[i].h);
			v[i].h = 0;
		}
	}
	return za;
}

static void test_fault_malloc_compact(void)
{
	size_t n = 1200;	/* crosses span and handle-page boundaries */
	struct obj *v = calloc(n, sizeof(*v));
	struct uz_zalloc *za;
	long nth;

	T_ASSERT(v);
	uz_zalloc_destroy(fragmented(v, n, true));
	for (nth = 1;; nth++) {
		za = fragmented(v, n, false);
		uz_fault_arm(nth);
		uz_zalloc_compact(za);
		if (uz_fault_disarm() < nth)
			break;		/* compaction ran without a failure */
		check_all(za, v, n);
		uz_zalloc_compact(za);
		check_all(za, v, n);
		uz_zalloc_destroy(za);
	}
	T_ASSERT(nth > 1);
	check_all(za, v, n);
	uz_zalloc_destroy(za);
	free(v);
	T_EQ(atomic_load(&mapped_bytes), mapped_base);
}

/* Past 16 handle pages the directory is mapped: a fault point too. */
static void test_fault_handles(void)
{
	size_t n = 9000;
	struct obj *v = calloc(n, sizeof(*v));
	struct uz_zalloc *za = uz_zalloc_create();

	T_ASSERT(v && za);
	for (size_t i = 0; i < n; i++)
		malloc_with_faults(za, &v[i], 1 + i % 40, v, i);
	check_all(za, v, n);
	for (size_t i = 0; i < n; i++)
		uz_zalloc_free(za, v[i].h);
	uz_zalloc_destroy(za);
	free(v);
}

/*
 * Many 2 MiB regions of spans (the arena's address table grows, and
 * shrinks by backward-shift deletion): fill about 100 MiB, free in a
 * random order with checks, fill again, free all: every byte mapped is
 * unmapped and the objects keep their bytes throughout.
 */
static void test_many_regions(void)
{
	size_t n = 32768 / SCALE;
	struct obj *v = calloc(n, sizeof(*v));
	struct uz_zalloc *za = uz_zalloc_create();
	uint64_t seed = 99;
	size_t *order = malloc(n * sizeof(*order));

	T_ASSERT(v && za && order);
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < n; i++)
			alloc_obj(za, &v[i], 2048 + t_rand(&seed) % 2048);
		T_ASSERT(uz_zalloc_total_bytes(za) > (size_t)n * 2048);
		for (size_t i = 0; i < n; i++)
			order[i] = i;
		t_shuffle(order, n, &seed);
		for (size_t k = 0; k < n; k++) {
			struct obj *o = &v[order[k]];

			if (k % 4096 == 0)
				check_all(za, v, n);
			uz_zalloc_free(za, o->h);
			o->h = 0;
		}
	}
	uz_zalloc_destroy(za);
	free(order);
	free(v);
}

int main(void)
{
	mapped_base = atomic_load(&mapped_bytes);
	test_invalid();
	test_every_size();
	test_pinned(false);
	test_pinned(true);
	test_model(1, 64, 20000 / SCALE);
	test_model(2, 3000, 200000 / SCALE);
	test_model(3, 20000 / SCALE, 300000 / SCALE);
	T_EQ(atomic_load(&mapped_bytes), mapped_base);
	test_many_regions();
	T_EQ(atomic_load(&mapped_bytes), mapped_base);
	test_fault_create();
	T_EQ(atomic_load(&mapped_bytes), mapped_base);
	test_fault_malloc_compact();
	test_fault_handles();
	T_EQ(atomic_load(&mapped_bytes), mapped_base);
	printf("test_zsmalloc: ok\n");
	return T_PASS;
}
