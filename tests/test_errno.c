/*
 * test_errno - header and code agree on errors: every error a public call
 * is made to return here is one its declaration in include/uzswap.h lists
 * (its own comment, or the comment of a call it refers to: "as
 * uzswap_load()"), and each listed errno of every call that can be
 * provoked without special privileges is provoked once. A call that starts
 * returning an errno its comment does not name - or a comment that stops
 * naming one the call returns - fails here, with both named.
 */
#include <limits.h>
#include <sys/resource.h>

#include "checksum.h"
#include "fault.h"
#include "helpers.h"
#include "uzswap.h"

/* ---- the header: each call's comment block ---- */

#define MAXFN 64
static struct { char name[64]; char *doc; } fns[MAXFN];
static int nfns;

static void header_parse(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512], *doc = NULL, *cur = NULL;
	size_t dlen = 0, clen = 0;
	int in_comment = 0;

	if (!f)
		t_skip("cannot read %s", path);
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "/*");

		if (!in_comment && p) {
			in_comment = 1;
			free(cur);
			cur = NULL;
			clen = 0;
		}
		if (in_comment) {
			size_t n = strlen(line);

			cur = realloc(cur, clen + n + 1);
			T_ASSERT(cur);
			memcpy(cur + clen, line, n + 1);
			clen += n;
			if (strstr(line, "*/")) {
				in_comment = 0;
				free(doc);
				doc = cur;	/* the last block before a decl */
				dlen = clen;
				cur = NULL;
			}
			continue;
		}
		if ((p = strstr(line, "UZSWAP_API")) && (p = strstr(p, "uzswap_"))) {
			size_t n = strcspn(p, "(");

			T_ASSERT(nfns < MAXFN && n < sizeof(fns[0].name));
			memcpy(fns[nfns].name, p, n);
			fns[nfns].name[n] = 0;
			/* Consecutive declarations share the block above. */
			fns[nfns].doc = strdup(doc ? doc : "");
			nfns++;
		}
	}
	(void)dlen;
	free(doc);
	free(cur);
	fclose(f);
}

static const char *doc_of(const char *fn)
{
	for (int i = 0; i < nfns; i++)
		if (!strcmp(fns[i].name, fn))
			return fns[i].doc;
	return NULL;
}

/* errno token ("-EINVAL") named in fn's block, or in the block of a call
 * that block refers to ("uzswap_store()'s errnos", "it is uzswap_load()"). */
static bool documented(const char *fn, const char *tok, int depth)
{
	const char *d = doc_of(fn), *p;
	size_t tl = strlen(tok);

	if (!d || depth > 2)
		return false;
	for (p = d; (p = strstr(p, tok)); p += tl)
		if (!((p[tl] >= 'A' && p[tl] <= 'Z') || (p[tl] >= '0' && p[tl] <= '9')))
			return true;
	for (p = d; (p = strstr(p, "uzswap_")); p++) {
		char ref[64];
		size_t n = strcspn(p, "(");

		if (n >= sizeof(ref) || p[n] != '(')
			continue;
		memcpy(ref, p, n);
		ref[n] = 0;
		if (strcmp(ref, fn) && documented(ref, tok, depth + 1))
			return true;
	}
	return false;
}

/* ---- the calls, made to fail ---- */

static uint8_t page[T_PAGE], noise[T_PAGE], buf[T_PAGE];
static struct uzswap *plain;	/* no backing store */

static struct uzswap *open_opts(struct uzswap_options *o, int *err)
{
	struct uzswap *uz = NULL;

	*err = uzswap_open(o, &uz);
	return uz;
}

static struct uzswap_options defaults(void)
{
	struct uzswap_options o;

	uzswap_options_init(&o);
	o.nr_pages = 64;
	return o;
}

static const char *tok_of(int err)
{
	switch (err) {
	case -EINVAL: return "-EINVAL";
	case -ENOENT: return "-ENOENT";
	case -E2BIG: return "-E2BIG";
	case -ENOSPC: return "-ENOSPC";
	case -ENOMEM: return "-ENOMEM";
	case -EIO: return "-EIO";
	case -EBUSY: return "-EBUSY";
	case -EEXIST: return "-EEXIST";
	case -EPROTO: return "-EPROTO";
	case -ENODEV: return "-ENODEV";
	case -EPERM: return "-EPERM";
	case -ENOSYS: return "-ENOSYS";
	case -EMFILE: return "-EMFILE";
	}
	return "?";
}

static int checked;

/* uzswap_region_create with no file descriptor to be had (RLIMIT_NOFILE
 * at the lowest free one): its userfaultfd cannot open. */
static int create_no_fd(const struct uzswap_region_options *ro)
{
	struct rlimit was, lim;
	int low = dup(0), err;
	void *a;

	T_ASSERT(low >= 0 && getrlimit(RLIMIT_NOFILE, &was) == 0);
	close(low);
	lim = was;
	lim.rlim_cur = (rlim_t)low;
	T_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
	err = uzswap_region_create(plain, ro, &a);
	T_EQ(setrlimit(RLIMIT_NOFILE, &was), 0);
	if (err == 0)
		uzswap_region_destroy(plain, a);
	return err;
}

/* The call fn returned got; it was made to return want. */
static void expect(const char *fn, long got, int want)
{
	if (got != want) {
		fprintf(stderr, "%s returned %ld, made to return %s\n", fn,
			got, tok_of(want));
		exit(T_FAIL);
	}
	if (!documented(fn, tok_of(want), 0)) {
		fprintf(stderr, "%s returns %s, which its comment in "
			"uzswap.h does not name\n", fn, tok_of(want));
		exit(T_FAIL);
	}
	checked++;
}

static void open_errors(void)
{
	struct uzswap_options o = defaults();
	struct uzswap *uz;
	int err;

	o.nr_pages = 0;
	uz = open_opts(&o, &err);
	expect("uzswap_open", err, -EINVAL);
	o = defaults();
	o.compressor = "nope";
	uz = open_opts(&o, &err);
	expect("uzswap_open", err, -ENOENT);
	o = defaults();
	o.size = 8192;
	uz = open_opts(&o, &err);
	expect("uzswap_open", err, -E2BIG);
	o = defaults();
	o.backing_path = "/nonexistent/uzswap/file";
	uz = open_opts(&o, &err);
	expect("uzswap_open", err, -ENOENT);
	o = defaults();
	o.backing_path = t_swapfile();
	uz = open_opts(&o, &err);
	T_EQ(err, 0);
	(void)open_opts(&o, &err);
	expect("uzswap_open", err, -EBUSY);
	uzswap_close(uz);
	/* Somebody's data in the file: refused. */
	int fd = open(o.backing_path, O_WRONLY | O_TRUNC);
	T_ASSERT(fd >= 0 && write(fd, noise, T_PAGE) == T_PAGE);
	close(fd);
	(void)open_opts(&o, &err);
	expect("uzswap_open", err, -EEXIST);
	/* A uzswap header of another version (valid checksum): refused. */
	uint8_t hdr[T_PAGE] = { 0 };
	uint32_t v = 99, c;
	memcpy(hdr, "UZSWAPBK", 8);
	memcpy(hdr + 8, &v, 4);
	c = uz_checksum_generic(hdr, 40);
	memcpy(hdr + 40, &c, 4);
	fd = open(o.backing_path, O_WRONLY | O_TRUNC);
	T_ASSERT(fd >= 0 && write(fd, hdr, T_PAGE) == T_PAGE);
	close(fd);
	(void)open_opts(&o, &err);
	expect("uzswap_open", err, -EPROTO);
	o = defaults();
	uz_fault_arm(1);
	uz = open_opts(&o, &err);
	uz_fault_disarm();
	expect("uzswap_open", err, -ENOMEM);
	expect("uzswap_options_init_sized",
	       uzswap_options_init_sized(&o, 8), -EINVAL);
	expect("uzswap_options_init_sized",
	       uzswap_options_init_sized(&o, 8192), -E2BIG);
}

static void store_load_errors(void)
{
	struct uzswap_options o = defaults();
	struct uzswap *small;
	int err;

	expect("uzswap_store", uzswap_store(plain, 64, page), -EINVAL);
	expect("uzswap_store", uzswap_store(plain, 1, noise), -E2BIG);
	uz_fault_arm(1);
	err = uzswap_store(plain, 2, page);
	uz_fault_disarm();
	expect("uzswap_store", err, -ENOMEM);
	o.max_pool_bytes = 1;	/* full at once */
	small = open_opts(&o, &err);
	T_EQ(err, 0);
	expect("uzswap_store", uzswap_store(small, 0, page), -ENOSPC);
	expect("uzswap_store_folio", uzswap_store_folio(small, 0, page, 1),
	       -ENOSPC);
	uzswap_close(small);
	expect("uzswap_store_folio", uzswap_store_folio(plain, 0, page, 0),
	       -EINVAL);
	expect("uzswap_store_folio", uzswap_store_folio(plain, 60, page, 8),
	       -EINVAL);
	expect("uzswap_load", uzswap_load(plain, 5, buf), -ENOENT);
	expect("uzswap_load", uzswap_load(plain, 64, buf), -EINVAL);
	expect("uzswap_invalidate", uzswap_invalidate(plain, 64), -EINVAL);
	expect("uzswap_invalidate", uzswap_invalidate(NULL, 0), -EINVAL);
}

static void device_errors(void)
{
	struct uzswap_options o = defaults();
	struct uzswap *uz;
	int err;

	expect("uzswap_write", uzswap_write(plain, 64, page), -EINVAL);
	expect("uzswap_read", uzswap_read(plain, 64, buf), -EINVAL);
	expect("uzswap_read", uzswap_read(plain, 9, buf), -ENOENT);
	expect("uzswap_discard", uzswap_discard(plain, 64), -EINVAL);
	expect("uzswap_writeback", uzswap_writeback(plain, 1), -ENODEV);
	expect("uzswap_writeback", uzswap_writeback(plain, -1), -EINVAL);
	o.backing_path = t_swapfile();
	uz = open_opts(&o, &err);
	T_EQ(err, 0);
	expect("uzswap_writeback", uzswap_writeback(uz, 1), -ENOENT);
	/* Fail each fault point of a write the cache refuses in turn: one of
	 * them is the file write, -EIO; the others are allocations. */
	for (long n = 1;; n++) {
		uz_fault_arm(n);
		err = uzswap_write(uz, 3, noise);
		if (uz_fault_disarm() < n || err == -EIO)
			break;
		T_ASSERT(err == 0 || err == -ENOMEM);
	}
	expect("uzswap_write", err, -EIO);
	uzswap_close(uz);
}

static void control_errors(void)
{
	uint64_t v;
	int lo;

	expect("uzswap_set_param", uzswap_set_param(plain,
	       UZSWAP_PARAM_MAX_POOL_PERCENT, 101), -EINVAL);
	expect("uzswap_set_param", uzswap_set_param(plain,
	       UZSWAP_PARAM_SHRINKER_ENABLED, 1), -EINVAL);
	expect("uzswap_get_param", uzswap_get_param(plain,
	       (enum uzswap_param)99, &v), -EINVAL);
	expect("uzswap_set_compressor", uzswap_set_compressor(plain, "nope",
	       0), -ENOENT);
	expect("uzswap_set_compressor", uzswap_set_compressor(plain, "zstd",
	       99), -EINVAL);
	expect("uzswap_compressor_levels", uzswap_compressor_levels("nope",
	       &lo, NULL, NULL), -ENOENT);
	expect("uzswap_compressor_levels", uzswap_compressor_levels(NULL,
	       &lo, NULL, NULL), -EINVAL);
	expect("uzswap_compact", uzswap_compact(NULL, NULL), -EINVAL);
	expect("uzswap_recompress", uzswap_recompress(plain,
	       UZSWAP_RECOMPRESS_COLD), -ENODEV);
	expect("uzswap_recompress", uzswap_recompress(NULL, 0), -EINVAL);
	expect("uzswap_get_stats_sized", uzswap_get_stats_sized(plain, NULL,
	       256), -EINVAL);
	expect("uzswap_stats_json", uzswap_stats_json(NULL, NULL, 0),
	       -EINVAL);
	expect("uzswap_page_same_filled", uzswap_page_same_filled(NULL, NULL),
	       -EINVAL);
}

static void codec_errors(void)
{
	struct uzswap_codec *c;
	uint8_t dst[UZSWAP_CODEC_DST_SIZE];

	expect("uzswap_codec_open", uzswap_codec_open("nope", 0, &c), -ENOENT);
	expect("uzswap_codec_open", uzswap_codec_open("zstd", 99, &c),
	       -EINVAL);
	T_EQ(uzswap_codec_open("lz4", 0, &c), 0);
	expect("uzswap_codec_compress", uzswap_codec_compress(c, page, dst, 0),
	       -EINVAL);
	expect("uzswap_codec_decompress", uzswap_codec_decompress(c, noise,
	       100, buf), -EIO);
	expect("uzswap_codec_decompress", uzswap_codec_decompress(c, noise,
	       0, buf), -EINVAL);
	uzswap_codec_close(c);
}

static void region_errors(void)
{
	struct uzswap_region_options ro;
	struct uzswap_region_stats st;
	void *a;
	int err;

	expect("uzswap_region_options_init_sized",
	       uzswap_region_options_init_sized(&ro, 8), -EINVAL);
	expect("uzswap_region_options_init_sized",
	       uzswap_region_options_init_sized(&ro, 8192), -E2BIG);
	uzswap_region_options_init(&ro);
	expect("uzswap_region_create", uzswap_region_create(plain, &ro, &a),
	       -EINVAL);	/* length 0 */
	ro.length = 65 * T_PAGE;	/* past nr_pages */
	expect("uzswap_region_create", uzswap_region_create(plain, &ro, &a),
	       -EINVAL);
	ro.length = T_PAGE;
	ro.size = 8192;
	expect("uzswap_region_create", uzswap_region_create(plain, &ro, &a),
	       -E2BIG);
	expect("uzswap_region_destroy", uzswap_region_destroy(plain, page),
	       -EINVAL);
	expect("uzswap_region_set_limit", uzswap_region_set_limit(plain, page,
	       T_PAGE), -EINVAL);
	expect("uzswap_region_discard", uzswap_region_discard(plain, page,
	       T_PAGE), -EINVAL);
	expect("uzswap_region_get_stats_sized",
	       uzswap_region_get_stats(plain, page, &st), -EINVAL);
	/* Where userfaultfd is not ours (not root): -EPERM (-ENOSYS where
	 * the kernel has none), documented. */
	ro.size = sizeof(ro);
	err = uzswap_region_create(plain, &ro, &a);
	if (err == 0) {
		T_EQ(uzswap_region_destroy(plain, a), 0);
		ro.length = 2 * T_PAGE;	/* offsets 0..1: used by a */
		T_EQ(uzswap_region_create(plain, &ro, &a), 0);
		void *b;
		expect("uzswap_region_create",
		       uzswap_region_create(plain, &ro, &b), -EBUSY);
		T_EQ(uzswap_region_destroy(plain, a), 0);
		expect("uzswap_region_create", create_no_fd(&ro), -EMFILE);
	} else {	/* -ENOSYS: no userfaultfd in this kernel at all */
		expect("uzswap_region_create", err,
		       err == -ENOSYS ? -ENOSYS : -EPERM);
	}
}

int main(void)
{
	struct uzswap_options o = defaults();
	uint8_t *pages;
	int err;

	header_parse(UZ_SOURCE_DIR "/include/uzswap.h");
	T_ASSERT(nfns > 20);
	T_ASSERT(t_corpus_or_skip("gcc.pages", &pages) > 1);
	memcpy(page, pages, T_PAGE);	/* a real page that compresses */
	free(pages);
	t_noise(noise, T_PAGE, 1);	/* and one that does not */
	plain = open_opts(&o, &err);
	T_EQ(err, 0);
	open_errors();
	store_load_errors();
	device_errors();
	control_errors();
	codec_errors();
	region_errors();
	uzswap_close(plain);
	printf("test_errno: %d errors provoked, each one its declaration "
	       "names (%d calls parsed)\n", checked, nfns);
	return T_PASS;
}
