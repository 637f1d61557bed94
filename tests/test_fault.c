/*
 * test_fault.c - make the n-th allocation fail, for n = 1, 2, ... until
 * the operation succeeds, for open (every codec), store, folio store and
 * compressor switch.
 *
 * Pins down: each failure is -ENOMEM and clean: a failed open hands out
 * no handle, a failed store leaves no page at its offset (the old one
 * dropped), a failed folio store leaves none of its pages, a failed
 * switch keeps the old compressor with its pages readable; the success
 * that ends each walk did not swallow the injected fault and has every
 * page (the folio's 32 included) byte for byte; open has more than 3
 * allocation sites for every codec; under ASan, nothing leaked.
 */
#include "helpers.h"

#include "fault.h"
#include "uzswap.h"

static uint8_t *corpus;
static uint8_t out[T_PAGE];

/*
 * Run op with the n-th fault point failing, n = 1, 2, ..., until op
 * succeeds. A failure must be -ENOMEM (then on_fail checks that nothing
 * changed); a success must not have swallowed the injected fault.
 */
#define WALK(n, r, op, on_fail)                                              \
	for (long n = 1;; n++) {                                               \
		uz_fault_arm(n);                                               \
		r = (op);                                                      \
		long passed_ = uz_fault_disarm();                              \
		if (r == 0) {                                                  \
			T_ASSERT(passed_ < n);                                 \
			break;                                                 \
		}                                                              \
		T_EQ(r, -ENOMEM);                                              \
		on_fail;                                                       \
		T_ASSERT(n < 100000);                                          \
	}

static struct uzswap *open_codec(const char *codec, long *steps)
{
	struct uzswap_options o;
	struct uzswap *uz = NULL;
	int r;

	uzswap_options_init(&o);
	o.compressor = codec;
	o.nr_pages = 4096;
	*steps = 0;
	WALK(n, r, uzswap_open(&o, &uz), ({
		T_ASSERT(uz == NULL);	/* a failed open hands out nothing */
		(*steps)++;
	}))
	return uz;
}

static void check_store(struct uzswap *uz)
{
	struct uzswap_stats st;
	int r;

	T_EQ(uzswap_store(uz, 1, corpus + 5 * T_PAGE), 0);
	WALK(n, r, uzswap_store(uz, 1, corpus + 9 * T_PAGE), ({
		T_EQ(uzswap_load(uz, 1, out), -ENOENT);
		T_EQ(uzswap_store(uz, 1, corpus + 5 * T_PAGE), 0);
	}))
	T_EQ(uzswap_load(uz, 1, out), 0);
	T_ASSERT(memcmp(out, corpus + 9 * T_PAGE, T_PAGE) == 0);
	WALK(n, r, uzswap_store_folio(uz, 64, corpus + 64 * T_PAGE, 32), ({
		for (unsigned i = 0; i < 32; i++)
			T_EQ(uzswap_load(uz, 64 + i, out), -ENOENT);
	}))
	for (unsigned i = 0; i < 32; i++) {	/* it succeeded: all there */
		T_EQ(uzswap_load(uz, 64 + i, out), 0);
		T_ASSERT(memcmp(out, corpus + (64 + i) * T_PAGE, T_PAGE) == 0);
	}
	T_EQ(uzswap_get_stats(uz, &st), 0);
	T_ASSERT(st.reject_alloc_fail > 0);
}

static void check_switch(struct uzswap *uz)
{
	int r;

	WALK(n, r, uzswap_set_compressor(uz, "zstd", 3), ({
		int lv;
		T_ASSERT(strcmp(uzswap_get_compressor(uz, &lv), "lz4") == 0);
		T_EQ(uzswap_load(uz, 1, out), 0);
		T_ASSERT(memcmp(out, corpus + 9 * T_PAGE, T_PAGE) == 0);
	}))
	T_ASSERT(strcmp(uzswap_get_compressor(uz, NULL), "zstd") == 0);
	T_EQ(uzswap_load(uz, 1, out), 0);
	T_ASSERT(memcmp(out, corpus + 9 * T_PAGE, T_PAGE) == 0);
}

int main(void)
{
	const char *const *codecs = uzswap_compressors();
	long steps;

	t_corpus_or_skip("gcc.pages", &corpus);
	for (int k = 0; codecs[k]; k++) {
		struct uzswap *uz = open_codec(codecs[k], &steps);

		printf("open %-8s: %ld allocation sites failed cleanly\n",
		       codecs[k], steps);
		T_ASSERT(steps > 3);
		uzswap_close(uz);
	}
	struct uzswap *uz = open_codec("lz4", &steps);
	check_store(uz);
	check_switch(uz);
	uzswap_close(uz);
	free(corpus);
	return T_PASS;
}
