/*
 * backend_file.h - the file backend (backend_file.c; the format is drawn
 * at the top of that file).
 *
 * Must never: be called but through backend.h's operations, once open.
 */
#ifndef UZ_BACKEND_FILE_H
#define UZ_BACKEND_FILE_H

#include <stdint.h>

#include "backend.h"

/*
 * Open path read-write, lock it for this instance alone (an exclusive
 * open-file-description lock: -EBUSY when another instance holds it), make
 * sure it holds nr_pages pages (a regular file is extended and its blocks
 * allocated - sparse when the file system has not the room to spare or
 * cannot allocate; a block device must be big enough: -ENOSPC), and probe
 * O_DIRECT. Returns 0, -EBUSY, -EEXIST or -EPROTO (not a file of ours:
 * backend_file.c), -EINVAL (neither a file nor a block device), -ENOSPC,
 * -EIO, -ENOMEM, or the errno of open/ftruncate.
 */
int uz_backend_file_open(const char *path, uint64_t nr_pages,
			 struct uz_backend **out);

#endif
