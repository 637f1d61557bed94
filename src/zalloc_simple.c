/*
 * zalloc_simple.c - the simplest allocator behind zalloc.h: one malloc()
 * per object. A reference implementation and a fallback; zsmalloc.c is
 * the dense one.
 *
 * Owns: a list of its live objects (so destroy frees them all) and a
 * count of the bytes glibc really gives it (usable size + chunk header).
 * Must never: call back into the cache (I5) - its one lock is a leaf.
 */
#include "zalloc.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "fault.h"
#include "lockdep.h"

struct zobj {
	struct zobj *prev, *next;	/* live list, under za->lock */
	unsigned char data[];
};

struct uz_zalloc {
	pthread_mutex_t lock;	/* guards the live list only; a leaf */
	struct zobj head;
	atomic_size_t total;
};

static size_t footprint(struct zobj *o)
{
	return malloc_usable_size(o) + sizeof(size_t);
}

struct uz_zalloc *uz_zalloc_create(void)
{
	struct uz_zalloc *za = uz_calloc(1, sizeof(*za));

	if (!za)
		return NULL;
	pthread_mutex_init(&za->lock, NULL);
	za->head.prev = za->head.next = &za->head;
	atomic_init(&za->total, footprint((struct zobj *)(void *)za));
	return za;
}

void uz_zalloc_set_lazy_free(struct uz_zalloc *za, bool on)
{
	(void)za;
	(void)on;	/* glibc decides */
}

size_t uz_zalloc_huge_size(struct uz_zalloc *za)
{
	(void)za;
	/* glibc rounds a chunk to 16 bytes plus an 8-byte header. */
	return UZ_ZALLOC_MAX_OBJ - sizeof(struct zobj) - 16;
}

void uz_zalloc_destroy(struct uz_zalloc *za)
{
	if (!za)
		return;
	while (za->head.next != &za->head) {
		struct zobj *o = za->head.next;

		za->head.next = o->next;
		uz_free(o);
	}
	pthread_mutex_destroy(&za->lock);
	uz_free(za);
}

int uz_zalloc_malloc(struct uz_zalloc *za, size_t size, uz_handle_t *handle)
{
	struct zobj *o;

	if (size == 0 || size > UZ_ZALLOC_MAX_OBJ)
		return -EINVAL;
	o = uz_malloc(sizeof(*o) + size);
	if (!o)
		return -ENOMEM;
	uz_mutex_lock(&za->lock, UZ_LR_ZALLOC);
	o->next = za->head.next;
	o->prev = &za->head;
	o->next->prev = o;
	za->head.next = o;
	uz_mutex_unlock(&za->lock, UZ_LR_ZALLOC);
	atomic_fetch_add_explicit(&za->total, footprint(o),
				  memory_order_relaxed);
	*handle = (uz_handle_t)(uintptr_t)o;
	return 0;
}

void uz_zalloc_free(struct uz_zalloc *za, uz_handle_t handle)
{
	struct zobj *o = (struct zobj *)(uintptr_t)handle;

	if (!o)
		return;
	atomic_fetch_sub_explicit(&za->total, footprint(o),
				  memory_order_relaxed);
	uz_mutex_lock(&za->lock, UZ_LR_ZALLOC);
	o->prev->next = o->next;
	o->next->prev = o->prev;
	uz_mutex_unlock(&za->lock, UZ_LR_ZALLOC);
	uz_free(o);
}

void uz_zalloc_write(struct uz_zalloc *za, uz_handle_t handle,
		     const void *src, size_t len)
{
	(void)za;
	memcpy(((struct zobj *)(uintptr_t)handle)->data, src, len);
}

void *uz_zalloc_map_write(struct uz_zalloc *za, uz_handle_t handle)
{
	(void)za;
	return ((struct zobj *)(uintptr_t)handle)->data;
}

void uz_zalloc_unmap_write(struct uz_zalloc *za, uz_handle_t handle)
{
	(void)za;
	(void)handle;
}

const void *uz_zalloc_map_read(struct uz_zalloc *za, uz_handle_t handle,
			       void *buf)
{
	(void)za;
	(void)buf;
	return ((struct zobj *)(uintptr_t)handle)->data;
}

void uz_zalloc_unmap_read(struct uz_zalloc *za, uz_handle_t handle)
{
	(void)za;
	(void)handle;
}

size_t uz_zalloc_compact(struct uz_zalloc *za)
{
	(void)za;
	return 0;	/* objects never move here */
}

size_t uz_zalloc_total_bytes(struct uz_zalloc *za)
{
	return atomic_load_explicit(&za->total, memory_order_relaxed);
}

/* One malloc per object: nothing to keep warm. */
void uz_zalloc_set_reserve(struct uz_zalloc *za, size_t bytes)
{
	(void)za;
	(void)bytes;
}

size_t uz_zalloc_reserve_bytes(struct uz_zalloc *za)
{
	(void)za;
	return 0;
}

void uz_zalloc_tick(struct uz_zalloc *za)
{
	(void)za;
}
