/*
 * pages.c - the page set a command works on, and where it comes from.
 *
 * Owns: reading files as 4 KiB pages (a short tail zero-padded), counting
 * zero- and same-filled pages and moving the same-filled ones last (so
 * that the timed pages are one contiguous run: uzswap stores same-filled
 * pages without compressing, and timing them against the raw codec would
 * flatter it), and input_load(): --input files, --pid, or the default
 * program (spawn.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pagedata.h"
#include "tool.h"

uint8_t *pageset_grow(struct pageset *ps, size_t n)
{
	if (ps->n + n > ps->cap) {
		size_t cap = ps->cap ? ps->cap : 256;
		uint8_t *d;

		while (cap < ps->n + n)
			cap *= 2;
		d = realloc(ps->data, cap * PAGE);
		if (!d)
			return NULL;
		ps->data = d;
		ps->cap = cap;
	}
	return ps->data + ps->n * PAGE;
}

void pageset_free(struct pageset *ps)
{
	free(ps->data);
	memset(ps, 0, sizeof(*ps));
}

int pageset_add_file(struct pageset *ps, const char *path, size_t max_pages,
		     char *err, size_t errlen)
{
	long r;

	/* Read at most what is asked for: a huge sparse file costs no more
	 * than its first max_pages pages (0 to read would mean "all"). */
	if (ps->n >= max_pages)
		return 0;
	r = uz_pagedata_read_file(path, max_pages - ps->n, &ps->data, &ps->n);

	ps->cap = ps->n;	/* what is allocated now, at least */
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, r == -EIO ?
			 "file shrank while read" : strerror((int)-r));
		return EXIT_FAIL;
	}
	return 0;
}

/*
 * In place: compact the pages that are not same-filled to the front,
 * remember the words of the others and write them back at the end.
 */
void pageset_partition(struct pageset *ps)
{
	uint64_t *words = malloc((ps->n + 1) * sizeof(*words)), w;
	size_t kept = 0, same = 0;

	if (!words) {
		fprintf(stderr, "uzswap: out of memory for %zu pages\n", ps->n);
		exit(EXIT_FAIL);
	}
	ps->zero = 0;
	for (size_t i = 0; i < ps->n; i++) {
		uint8_t *p = ps->data + i * PAGE;

		if (uzswap_page_same_filled(p, &w) == 1) {	/* the cache's own test */
			ps->zero += w == 0;
			words[same++] = w;
			continue;
		}
		if (kept != i)
			memmove(ps->data + kept * PAGE, p, PAGE);
		kept++;
	}
	for (size_t i = 0; i < same; i++) {
		uint64_t *dst = (uint64_t *)(void *)(ps->data +
						     (kept + i) * PAGE);

		for (unsigned k = 0; k < PAGE / 8; k++)
			dst[k] = words[i];
	}
	free(words);
	ps->same = same;
	ps->n_timed = kept;
}

static int load_files(const char *cmd, const struct input_opts *in,
		      struct pageset *ps)
{
	char err[512];
	size_t len = 0;

	for (int i = 0; i < in->nr_files; i++) {
		if (pageset_add_file(ps, in->files[i], in->max_pages, err,
				     sizeof(err))) {
			fprintf(stderr, "%s: %s\n", cmd, err);
			return EXIT_FAIL;
		}
		len += (size_t)snprintf(ps->source + len,
					len < sizeof(ps->source) ?
					sizeof(ps->source) - len : 0,
					"%s%s", i ? ", " : "", in->files[i]);
		if (len >= sizeof(ps->source))
			len = sizeof(ps->source) - 1;
	}
	if (ps->n > in->max_pages)
		ps->n = in->max_pages;	/* the first --max-mib of them */
	return 0;
}

static int load_pid(const char *cmd, const struct input_opts *in,
		    struct pageset *ps)
{
	struct snap_info si;
	char err[512];

	if (snapshot_pid(in->pid, in->max_pages, ps, &si, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", cmd, err);
		return EXIT_FAIL;
	}
	snprintf(ps->source, sizeof(ps->source),
		 "process %d (%s): %zu of %zu resident anonymous pages",
		 (int)in->pid, si.comm, si.read_pages, si.resident_pages);
	return 0;
}

int input_load(const char *cmd, const struct input_opts *in,
	       struct pageset *ps)
{
	char err[512];
	int rc;

	memset(ps, 0, sizeof(*ps));
	if (in->nr_files)
		rc = load_files(cmd, in, ps);
	else if (in->pid)
		rc = load_pid(cmd, in, ps);
	else if ((rc = default_input(ps, in->max_pages, !in->quiet, err,
				     sizeof(err))))
		fprintf(stderr, "%s: default input: %s\n", cmd, err);
	if (rc)
		return rc;
	if (ps->n == 0) {
		fprintf(stderr, "%s: no pages in the input (%s)\n", cmd,
			ps->source);
		return EXIT_FAIL;
	}
	pageset_partition(ps);
	return 0;
}
