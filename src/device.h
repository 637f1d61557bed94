/*
 * device.h - what device.c offers the rest of src/ (the device-level API
 * itself is public: uzswap.h): a read that says where the page came from
 * (the region's fault counters), and a backing file put back as it was
 * when uzswap_open() fails after the backend extended or stamped it.
 *
 * Must never: touch a file another instance holds (its lock), or change
 * a file the failed open did not change.
 */
#ifndef UZ_DEVICE_H
#define UZ_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "page.h"

struct uzswap;

/* uzswap_read() into a page that is not region memory (no bounce), and
 * *from_store: true when the page was read from the backing store, false
 * when the pool (or zeros) served it. */
int uz_device_read(struct uzswap *uz, uint64_t offset, void *page,
		   bool *from_store);

/* A regular backing file as it was before the open: its size and first
 * page (the one the header goes in), and a descriptor of our own. */
struct uz_file_undo {
	int fd;			/* -1: nothing to put back */
	off_t size;
	ssize_t head_len;	/* bytes of head the file had */
	unsigned char head[UZ_PAGE];
};

/* Before the backend opens: note the file at path (NULL, or not a
 * regular file: fd -1, the others do nothing). Never fails. */
void uz_file_undo_begin(const char *path, struct uz_file_undo *u);
/* The open failed: put size and first page back if they changed. held:
 * the backend of this open holds the file's lock (it opened); else the
 * file is put back only if no other instance took it meanwhile. */
void uz_file_undo_apply(struct uz_file_undo *u, bool held);
/* Close the descriptor (after apply, or when the open succeeded). */
void uz_file_undo_end(struct uz_file_undo *u);

#endif
