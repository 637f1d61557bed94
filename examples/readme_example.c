/* readme_example.c - the example in README.md, verbatim. */
#include <stdio.h>
#include <string.h>
#include <uzswap.h>

int main(void)
{
	struct uzswap_options opts;
	struct uzswap *uz;
	static char page[UZSWAP_PAGE_SIZE], back[UZSWAP_PAGE_SIZE];
	int err;

	uzswap_options_init(&opts);
	opts.nr_pages = 1 << 20;		/* offsets 0 .. 2^20-1 */
	opts.compressor = "zstd";
	if ((err = uzswap_open(&opts, &uz)) < 0) {
		fprintf(stderr, "open: %s\n", uzswap_strerror(err));
		return 1;
	}
	for (unsigned i = 0; i < UZSWAP_PAGE_SIZE; i++) /* text */
		page[i] = "uzswap keeps pages compressed. "[i % 31];
	err = uzswap_store(uz, 42, page);	/* 0: held compressed */
	if (err == 0)
		err = uzswap_load(uz, 42, back);
	printf("store+load: %s, same bytes: %s\n", uzswap_strerror(err),
	       memcmp(page, back, sizeof(page)) ? "no" : "yes");
	uzswap_close(uz);
	return err == 0 ? 0 : 1;
}
