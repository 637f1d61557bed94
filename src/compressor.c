/*
 * compressor.c - codec glue and registry.
 *
 * Owns: one struct uz_codec per codec, mapping uzswap's interface onto
 * liblz4, libzstd, liblzo2, libdeflate and our own lzo-rle. Each codec's
 * per-slot state holds everything a compress or decompress call needs, so
 * the hot path never allocates (I2, I5).
 *
 * Must never: allocate or block inside compress/decompress; trust the
 * bytes it decompresses (every decoder here is a bounds-checked one).
 */
#define ZSTD_STATIC_LINKING_ONLY
#include "compressor.h"

#include <errno.h>
#include <libdeflate.h>
#include <lz4.h>
#include <lz4hc.h>
#include <lzo/lzo1x.h>
#include <pthread.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "fault.h"
#include "lzo_rle/lzo_rle.h"
#include "page.h"

/*
 * ---- lz4: level = acceleration (1 fastest-densest .. 64) ----
 *
 * LZ4_compress_fast_extState() clears its 16 KiB table on every call.
 * Under callgrind that looks like a third of a store (valgrind counts
 * each byte of the rep stosb as one instruction); natively it is a few
 * hundred cycles. The streaming way round it (LZ4_resetStream_fast() +
 * LZ4_compress_fast_continue(), as lz4hc below) was measured and is not
 * used: it must take lz4's 32-bit table, and the stale indexes it then
 * skips cost branch mispredicts (cachegrind: 950 against 420 a page on
 * sqlite.pages): 0.95x the time on gcc.pages, 1.38-1.56x on sqlite.pages
 * (README, "Measured"). extState's 16-bit table, cleared, is the faster.
 */

static void *lz4_state_new(int level)
{
	(void)level;
	return uz_malloc((size_t)LZ4_sizeofState());
}

static int lz4_compress(void *state, const void *src, size_t len, void *dst,
			size_t cap, int level)
{
	int n = LZ4_compress_fast_extState(state, src, dst, (int)len,
					   (int)cap, level);
	return n > 0 ? n : 0;
}

static int lz4_decompress(void *state, const void *src, size_t slen,
			  void *dst, size_t dlen)
{
	(void)state;
	int n = LZ4_decompress_safe(src, dst, (int)slen, (int)dlen);
	return n == (int)dlen ? 0 : -EIO;
}

/*
 * ---- lz4hc: one state per slot, cleared once ----
 *
 * LZ4_compress_HC_extStateHC() clears its whole ~256 KiB state on every
 * call. Here the state is cleared once, when the slot is prepared (I2),
 * and each page is a stream of its own: LZ4_resetStreamHC_fast() starts it
 * 64 KiB past every index the tables hold, which the match finder then
 * never follows, and LZ4_compress_HC_continue() compresses the page as one
 * block that LZ4_decompress_safe() reads alone: the same bytes as
 * extStateHC (tests/test_codecs.c), in 0.91-0.95x its time (medians,
 * level 9, gcc and sqlite pages). The state clears itself in full after
 * a block that did not fit (lz4 marks it dirty) and once its offsets pass
 * 1 GiB (~68 KiB a page: every ~15,000 pages); no other renormalisation.
 */

static void *lz4hc_state_new(int level)
{
	void *mem = uz_malloc(sizeof(LZ4_streamHC_t));
	(void)level;
	if (mem && !LZ4_initStreamHC(mem, sizeof(LZ4_streamHC_t))) {
		uz_free(mem);
		return NULL;
	}
	return mem;
}

static int lz4hc_compress(void *state, const void *src, size_t len,
			  void *dst, size_t cap, int level)
{
	LZ4_resetStreamHC_fast(state, level);
	int n = LZ4_compress_HC_continue(state, src, dst, (int)len, (int)cap);
	return n > 0 ? n : 0;
}

/* ---- zstd: static contexts, magicless frames without content size ---- */

struct zstd_state {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	/* workspaces follow */
};

static size_t zstd_cctx_size(int level)
{
	ZSTD_compressionParameters cp = ZSTD_getCParams(level, UZ_PAGE, 0);
	return ZSTD_estimateCCtxSize_usingCParams(cp);
}

static int zstd_configure(struct zstd_state *z, int level)
{
	/* Magicless frames without content size, checksum or dictionary
	 * id: the entry already knows all that; saves ~6 bytes a page. */
	static const struct { ZSTD_cParameter p; int v; } cparams[] = {
		{ ZSTD_c_format, ZSTD_f_zstd1_magicless },
		{ ZSTD_c_contentSizeFlag, 0 },
		{ ZSTD_c_checksumFlag, 0 },
		{ ZSTD_c_dictIDFlag, 0 },
	};

	if (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx,
						ZSTD_c_compressionLevel,
						level)))
		return -EIO;
	for (size_t i = 0; i < sizeof(cparams) / sizeof(cparams[0]); i++)
		if (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, cparams[i].p,
							cparams[i].v)))
			return -EIO;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_format,
						ZSTD_f_zstd1_magicless)))
		return -EIO;
	return 0;
}

static void *zstd_state_new(int level)
{
	/* Each workspace 64-byte aligned: zstd wants 8 at least. */
	size_t csize = (zstd_cctx_size(level) + 63) & ~(size_t)63;
	size_t dsize = ZSTD_estimateDCtxSize();
	size_t head = (sizeof(struct zstd_state) + 63) & ~(size_t)63;
	struct zstd_state *z = uz_aligned_alloc(64, head + csize + dsize);

	if (!z)
		return NULL;
	z->cctx = ZSTD_initStaticCCtx((char *)z + head, csize);
	z->dctx = ZSTD_initStaticDCtx((char *)z + head + csize, dsize);
	if (!z->cctx || !z->dctx || zstd_configure(z, level) < 0) {
		uz_free(z);
		return NULL;
	}
	return z;
}

static int zstd_compress(void *state, const void *src, size_t len, void *dst,
			 size_t cap, int level)
{
	struct zstd_state *z = state;
	(void)level;	/* fixed in the context at state_new */
	size_t n = ZSTD_compress2(z->cctx, dst, cap, src, len);

	if (ZSTD_isError(n))
		return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ?
			0 : -EIO;
	return (int)n;
}

static int zstd_decompress(void *state, const void *src, size_t slen,
			   void *dst, size_t dlen)
{
	struct zstd_state *z = state;
	size_t n = ZSTD_decompressDCtx(z->dctx, dst, dlen, src, slen);

	return !ZSTD_isError(n) && n == dlen ? 0 : -EIO;
}

/* ---- lzo (lzo1x-1): work memory only; output unbounded by cap ---- */

static pthread_once_t lzo_once = PTHREAD_ONCE_INIT;
static int lzo_ready;

static void lzo_global_init(void)
{
	lzo_ready = lzo_init() == LZO_E_OK;
}

static void *lzo_state_new(int level)
{
	(void)level;
	pthread_once(&lzo_once, lzo_global_init);
	return lzo_ready ? uz_malloc(LZO1X_1_MEM_COMPRESS) : NULL;
}

static int lzo_compress(void *state, const void *src, size_t len, void *dst,
			size_t cap, int level)
{
	lzo_uint out = 0;
	(void)level;
	/* lzo1x_1 cannot stop at cap: dst has UZ_CODEC_DST_SIZE bytes. */
	if (lzo1x_1_compress(src, len, dst, &out, state) != LZO_E_OK)
		return -EIO;
	return out <= cap ? (int)out : 0;
}

static int lzo_decompress(void *state, const void *src, size_t slen,
			  void *dst, size_t dlen)
{
	lzo_uint out = dlen;
	(void)state;
	int r = lzo1x_decompress_safe(src, slen, dst, &out, NULL);
	return r == LZO_E_OK && out == dlen ? 0 : -EIO;
}

/* ---- lzo-rle: our own, kernel-compatible (src/lzo_rle/) ---- */

static void *lzorle_state_new(int level)
{
	(void)level;
	return uz_malloc(UZ_LZORLE_WRKMEM_SIZE);
}

static int lzorle_compress(void *state, const void *src, size_t len,
			   void *dst, size_t cap, int level)
{
	(void)level;
	return (int)uz_lzorle_compress(src, len, dst, cap, state);
}

static int lzorle_decompress(void *state, const void *src, size_t slen,
			     void *dst, size_t dlen)
{
	(void)state;
	return uz_lzorle_decompress(src, slen, dst, dlen) ? -EIO : 0;
}

/* ---- deflate (libdeflate, raw deflate) ---- */

struct deflate_state {
	struct libdeflate_compressor *c;
	struct libdeflate_decompressor *d;
};

static void deflate_state_free(void *state)
{
	struct deflate_state *s = state;

	if (!s)
		return;
	libdeflate_free_compressor(s->c);
	libdeflate_free_decompressor(s->d);
	uz_free(s);
}

static void *deflate_state_new(int level)
{
	struct deflate_state *s = uz_calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	/* libdeflate allocates itself: give fault injection its turn. */
	if (!uz_fault_hit())
		s->c = libdeflate_alloc_compressor(level);
	if (!uz_fault_hit())
		s->d = libdeflate_alloc_decompressor();
	if (!s->c || !s->d) {
		deflate_state_free(s);
		return NULL;
	}
	return s;
}

static int deflate_compress(void *state, const void *src, size_t len,
			    void *dst, size_t cap, int level)
{
	struct deflate_state *s = state;
	(void)level;
	/* Returns 0 when the output does not fit in cap. */
	return (int)libdeflate_deflate_compress(s->c, src, len, dst, cap);
}

static int deflate_decompress(void *state, const void *src, size_t slen,
			      void *dst, size_t dlen)
{
	struct deflate_state *s = state;
	enum libdeflate_result r;

	r = libdeflate_deflate_decompress(s->d, src, slen, dst, dlen, NULL);
	return r == LIBDEFLATE_SUCCESS ? 0 : -EIO;
}

/* ---- registry ---- */

static const struct uz_codec codecs[] = {
	{ "lz4", 1, 64, 1, lz4_state_new, uz_free, lz4_compress,
	  lz4_decompress },
	{ "lz4hc", LZ4HC_CLEVEL_MIN, LZ4HC_CLEVEL_MAX, LZ4HC_CLEVEL_DEFAULT,
	  lz4hc_state_new, uz_free, lz4hc_compress, lz4_decompress },
	{ "zstd", -7, 22, 1, zstd_state_new, uz_free, zstd_compress,
	  zstd_decompress },
	{ "lzo", 0, 0, 0, lzo_state_new, uz_free, lzo_compress,
	  lzo_decompress },
	{ "lzo-rle", 0, 0, 0, lzorle_state_new, uz_free, lzorle_compress,
	  lzorle_decompress },
	{ "deflate", 1, 12, 6, deflate_state_new, deflate_state_free,
	  deflate_compress, deflate_decompress },
};

#define NR_CODECS (sizeof(codecs) / sizeof(codecs[0]))

static const char *const codec_names[NR_CODECS + 1] = {
	"lz4", "lz4hc", "zstd", "lzo", "lzo-rle", "deflate", NULL,
};

const struct uz_codec *uz_codec_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < NR_CODECS; i++)
		if (strcmp(codecs[i].name, name) == 0)
			return &codecs[i];
	return NULL;
}

int uz_codec_level(const struct uz_codec *c, int level, int *out)
{
	if (level == 0)
		level = c->default_level;
	if (level < c->min_level || level > c->max_level)
		return -EINVAL;
	*out = level;
	return 0;
}

int uz_codec_lookup(const char *name, int *level, const struct uz_codec **out)
{
	const struct uz_codec *c;

	if (!name)
		return -EINVAL;
	c = uz_codec_find(name);
	if (!c)
		return -ENOENT;
	if (uz_codec_level(c, *level, level) < 0)
		return -EINVAL;
	*out = c;
	return 0;
}

const char *const *uz_codec_names(void)
{
	return codec_names;
}
