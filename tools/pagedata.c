/*
 * pagedata.c - real pages as test data: see pagedata.h.
 */
#include "pagedata.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG UZ_PAGEDATA_PAGE

long uz_pagedata_read_file(const char *path, size_t max, uint8_t **pages,
			   size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t add, len, done = 0;
	uint8_t *buf, *dst;
	int err = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	add = ((size_t)st.st_size + PG - 1) / PG;
	if (max && add > max)
		add = max;
	len = (size_t)st.st_size < add * PG ? (size_t)st.st_size : add * PG;
	if (add == 0) {
		close(fd);
		return 0;
	}
	buf = realloc(*pages, (*n + add) * PG);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	*pages = buf;
	dst = buf + *n * PG;
	memset(dst + (add - 1) * PG, 0, PG);	/* the padded tail */
	while (done < len) {
		ssize_t r = read(fd, dst + done, len - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)r;
	}
	close(fd);
	if (err)
		return err;
	*n += add;
	return (long)add;
}

void uz_pagedata_make(uint8_t *p, const uint8_t *src, size_t nr_src,
		      uint64_t off, uint64_t ver)
{
	/* Both factors below 2^32 after the reduction: no overflow. */
	uint64_t k = 2654435761u % nr_src, v = 40503u % nr_src;
	size_t i = (size_t)(((off % nr_src) * k + (ver % nr_src) * v) %
			    nr_src);

	memcpy(p, src + i * PG, PG);
	memcpy(p, &off, 8);
	memcpy(p + 8, &ver, 8);
}

uint64_t uz_pagedata_version(const uint8_t *p)
{
	uint64_t ver;

	memcpy(&ver, p + 8, 8);
	return ver;
}
