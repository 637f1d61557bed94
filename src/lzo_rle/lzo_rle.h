/*
 * lzo_rle.h - the lzo-rle page codec: LZO1X-1 with zero-run encoding, the
 * bitstream Linux's zram uses by default ("lzo-rle", bitstream version 1).
 *
 * Compressed streams start with the bytes 17, 1 and end with the LZO1X
 * end-of-stream instruction; they decode with the kernel's
 * lzo1x_decompress_safe(). The decompressor also accepts plain LZO1X
 * streams (no version header), such as those of liblzo2's lzo1x_1_compress.
 */
#ifndef UZ_LZO_RLE_H
#define UZ_LZO_RLE_H

#include <stddef.h>

/* Bytes of work memory a compress call needs (dictionary), caller-allocated. */
#define UZ_LZORLE_WRKMEM_SIZE	((size_t)8192)

/*
 * Compress src_len bytes (<= 65536 is enough; pages are 4096) into dst
 * (capacity dst_cap). Returns the compressed length (> 0), or 0 when the
 * output would not fit in dst_cap (never writes past dst + dst_cap).
 * wrkmem: UZ_LZORLE_WRKMEM_SIZE bytes, any content, 2-byte aligned.
 */
size_t uz_lzorle_compress(const void *src, size_t src_len, void *dst,
			  size_t dst_cap, void *wrkmem);

/*
 * Decompress exactly: returns 0 when src decodes to exactly dst_len bytes;
 * -EIO for any malformed, truncated, overlong or trailing-garbage input.
 * Never reads past src + src_len nor writes past dst + dst_len, whatever
 * the input.
 */
int uz_lzorle_decompress(const void *src, size_t src_len, void *dst,
			 size_t dst_len);

#endif
