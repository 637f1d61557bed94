/*
 * pagedata.h - test data made of real pages, shared by the tests, the
 * uzswap command and bench/ (a small static library, uz_pagedata, never
 * installed).
 *
 * Owns: reading a file as 4 KiB pages, and the page for (offset, version)
 * that every checking workload writes and expects back: a real page of a
 * source set chosen by both, stamped with them in its first 16 bytes, so
 * that a load tells a whole, right page from a torn, stale or misplaced
 * one, and the data still compresses like the memory of real programs.
 */
#ifndef UZ_PAGEDATA_H
#define UZ_PAGEDATA_H

#include <stddef.h>
#include <stdint.h>

#define UZ_PAGEDATA_PAGE 4096

/*
 * Append the file at path, read as 4 KiB pages with a short tail
 * zero-padded, to the malloc'ed array *pages of *n pages (NULL and 0 to
 * start one); max > 0 appends at most max pages. Returns the number of
 * pages appended (0 for an empty file), or -errno: the open or read
 * error, -ENOMEM, -EIO when the file shrank while read. On error *n is
 * unchanged (*pages may have moved).
 */
long uz_pagedata_read_file(const char *path, size_t max, uint8_t **pages,
			   size_t *n);

/*
 * The page for (off, ver) made from nr_src >= 1 pages at src: source page
 * (off * K + ver * V) mod nr_src, K prime, so that for one version the
 * offsets 0 .. nr_src-1 use every source page once; bytes 0-7 hold off
 * and bytes 8-15 ver (native byte order).
 */
void uz_pagedata_make(uint8_t *p, const uint8_t *src, size_t nr_src,
		      uint64_t off, uint64_t ver);

/* The version a page made by uz_pagedata_make() claims (bytes 8-15). */
uint64_t uz_pagedata_version(const uint8_t *p);

#endif
