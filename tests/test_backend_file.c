/*
 * test_backend_file - the file backend through the backend interface, on
 * real pages (the corpus, each stamped with its offset and a version):
 *
 *  - written-back pages are records of the pool's compressed bytes in
 *    4 KiB slots (the slot starts with the record header, the offset and
 *    the payload length of a compressed page), raw pages that did not
 *    compress are whole 4 KiB slots; all read back exact
 *  - I6: pages written back under lz4 read back after switching to zstd
 *    and then deflate (a record names its codec), and new ones too
 *  - a stale slot (the older record of the same offset put back in the
 *    file) and another offset's record: -EIO, backing_corrupt, never the
 *    old bytes
 */
#include <glob.h>

#include "helpers.h"
#include "uzswap.h"

static uint8_t *corpus;
static size_t ncorpus;

static void make_page(uint8_t *p, uint64_t off, uint32_t ver)
{
	memcpy(p, corpus + (off * 7 % ncorpus) * T_PAGE, T_PAGE);
	memcpy(p, &off, 8);
	memcpy(p + 8, &ver, 4);
}

static struct uzswap_stats stats(struct uzswap *uz)
{
	struct uzswap_stats st;

	T_EQ(uzswap_get_stats(uz, &st), 0);
	return st;
}

static void expect(struct uzswap *uz, uint64_t off, uint32_t ver)
{
	uint8_t got[T_PAGE], exp[T_PAGE];

	make_page(exp, off, ver);
	T_EQ(uzswap_read(uz, off, got), 0);
	T_ASSERT(memcmp(got, exp, T_PAGE) == 0);
}

static void slot_io(const char *path, uint64_t off, void *buf, int wr)
{
	int fd = open(path, O_RDWR);

	T_ASSERT(fd >= 0);
	if (wr)
		T_EQ(pwrite(fd, buf, T_PAGE, (off_t)(off + 1) * T_PAGE), T_PAGE);
	else
		T_EQ(pread(fd, buf, T_PAGE, (off_t)(off + 1) * T_PAGE), T_PAGE);
	close(fd);
}

#define NR 256

static void test_records_and_codecs(const char *path, struct uzswap *uz)
{
	uint8_t slot[T_PAGE], page[T_PAGE];
	uint64_t off;
	uint16_t len;

	for (uint64_t o = 0; o < NR; o++) {
		make_page(page, o, 1);
		T_EQ(uzswap_write(uz, o, page), 0);
	}
	T_EQ(uzswap_writeback(uz, NR), (long)(NR - stats(uz).same_filled_pages));
	/* A record, not a raw page: "UZ", version 1, its offset. */
	slot_io(path, 3, slot, 0);
	T_ASSERT(slot[0] == 'U' && slot[1] == 'Z' && slot[2] == 1);
	memcpy(&len, slot + 6, 2);
	memcpy(&off, slot + 16, 8);
	T_EQ(off, 3);
	T_ASSERT(len > 0 && len < T_PAGE - 24);
	printf("offset 3: a %u-byte lz4 record in its slot\n", len + 24);

	T_EQ(uzswap_set_compressor(uz, "zstd", 0), 0);	/* I6 */
	for (uint64_t o = 0; o < NR; o++)
		expect(uz, o, 1);
	for (uint64_t o = 0; o < NR; o += 2) {
		make_page(page, o, 2);
		T_EQ(uzswap_write(uz, o, page), 0);
	}
	T_ASSERT(uzswap_writeback(uz, NR) > 0);
	T_EQ(uzswap_set_compressor(uz, "deflate", 0), 0);
	for (uint64_t o = 0; o < NR; o++)
		expect(uz, o, o % 2 ? 1 : 2);
	T_EQ(stats(uz).backing_corrupt, 0);
}

static void test_stale(const char *path, struct uzswap *uz)
{
	uint8_t old[T_PAGE], other[T_PAGE], page[T_PAGE];
	uint64_t corrupt;

	make_page(page, 300, 1);
	T_EQ(uzswap_write(uz, 300, page), 0);
	T_EQ(uzswap_writeback(uz, 10), 1);
	slot_io(path, 300, old, 0);
	slot_io(path, 5, other, 0);
	make_page(page, 300, 2);
	T_EQ(uzswap_write(uz, 300, page), 0);
	T_EQ(uzswap_writeback(uz, 10), 1);
	corrupt = stats(uz).backing_corrupt;

	slot_io(path, 300, old, 1);		/* the older record */
	T_EQ(uzswap_read(uz, 300, page), -EIO);
	slot_io(path, 300, other, 1);		/* offset 5's record */
	T_EQ(uzswap_read(uz, 300, page), -EIO);
	T_EQ(stats(uz).backing_corrupt, corrupt + 2);
	expect(uz, 5, 1);			/* the others are right */
}

/*
 * Each field of the header checked on its own: the current record of an
 * offset with one field changed (everything else, payload included, as
 * written) is -EIO; put back unchanged it reads right. Same bytes under
 * an older generation are a stale value too.
 */
static void test_header_fields(const char *path, struct uzswap *uz)
{
	static const struct { unsigned at, size; const char *what; } f[] = {
		{ 0, 1, "magic" }, { 2, 1, "version" }, { 3, 1, "codec" },
		{ 4, 1, "flags" }, { 5, 1, "pad" }, { 6, 2, "length" },
		{ 8, 4, "checksum" }, { 12, 4, "generation" },
		{ 16, 8, "offset" }, { 24, 1, "payload" },
	};
	uint8_t cur[T_PAGE], forged[T_PAGE], page[T_PAGE], old[T_PAGE];

	make_page(page, 310, 1);
	T_EQ(uzswap_write(uz, 310, page), 0);
	T_EQ(uzswap_writeback(uz, 10), 1);
	slot_io(path, 310, old, 0);
	T_EQ(uzswap_write(uz, 310, page), 0);	/* the same bytes again */
	T_EQ(uzswap_writeback(uz, 10), 1);
	slot_io(path, 310, cur, 0);
	for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		memcpy(forged, cur, T_PAGE);
		forged[f[i].at] ^= 1;	/* the field's low bit */
		slot_io(path, 310, forged, 1);
		if (uzswap_read(uz, 310, page) != -EIO) {
			fprintf(stderr, "record with a changed %s read as "
				"data\n", f[i].what);
			exit(T_FAIL);
		}
	}
	slot_io(path, 310, old, 1);	/* same bytes, older generation */
	T_EQ(uzswap_read(uz, 310, page), -EIO);
	slot_io(path, 310, cur, 1);
	expect(uz, 310, 1);
}

/* A page that does not compress (4 KiB from the middle of a real gzip
 * file) goes to the file raw. */
static void test_raw(struct uzswap *uz)
{
	uint8_t page[T_PAGE], got[T_PAGE];
	glob_t g;
	int fd = -1;

	if (glob("/usr/share/doc/*/changelog*.gz", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc && fd < 0; i++) {
			struct stat sb;

			fd = open(g.gl_pathv[i], O_RDONLY);
			if (fd >= 0 && (fstat(fd, &sb) < 0 ||
					sb.st_size < 3 * T_PAGE)) {
				close(fd);
				fd = -1;
			}
		}
		globfree(&g);
	}
	if (fd < 0) {
		printf("no gzip file of 12 KiB in /usr/share/doc: raw case "
		       "not run\n");
		return;
	}
	T_EQ(pread(fd, page, T_PAGE, T_PAGE), T_PAGE);
	close(fd);
	T_EQ(uzswap_write(uz, 400, page), 0);
	T_EQ(stats(uz).backing_writes, 1);
	T_EQ(uzswap_read(uz, 400, got), 0);
	T_ASSERT(memcmp(got, page, T_PAGE) == 0);
}

int main(void)
{
	struct uzswap_options o;
	struct uzswap *uz;
	const char *path = t_swapfile();

	ncorpus = t_corpus_or_skip("gcc.pages", &corpus);
	uzswap_options_init(&o);
	o.nr_pages = 512;
	o.backing_path = path;
	o.shrinker_enabled = false;
	T_EQ(uzswap_open(&o, &uz), 0);
	test_records_and_codecs(path, uz);
	test_stale(path, uz);
	test_header_fields(path, uz);
	test_raw(uz);
	uzswap_close(uz);
	printf("test_backend_file: ok\n");
	return T_PASS;
}
