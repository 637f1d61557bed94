#include <errno.h>
#include <stdio.h>
#include <uzswap.h>

int main(void)
{
	struct uzswap_options o;
	struct uzswap_region_options ro;
	struct uzswap_region_stats st;
	struct uzswap *uz;
	char *mem;
	size_t bad = 0;
	int err;

	uzswap_options_init(&o);
	o.nr_pages = 4096;			/* offsets 0 .. 4095 */
	if ((err = uzswap_open(&o, &uz)) < 0)
		return fprintf(stderr, "open: %s\n", uzswap_strerror(err)), 1;
	uzswap_region_options_init(&ro);
	ro.length = 1024 * UZSWAP_PAGE_SIZE;	/* 4 MiB of memory ... */
	ro.resident_limit = 1 << 20;		/* ... at most 1 MiB in RAM */
	if ((err = uzswap_region_create(uz, &ro, (void **)&mem)) < 0) {
		fprintf(stderr, "region: %s\n", uzswap_strerror(err));
		uzswap_close(uz);
		return err == -EPERM || err == -ENOSYS ? 77 : 1; /* 77: skip */
	}
	for (size_t i = 0; i < ro.length; i++)	/* ordinary memory */
		mem[i] = "uzswap keeps pages compressed. "[i % 31];
	for (size_t i = 0; i < ro.length; i++)
		bad += mem[i] != "uzswap keeps pages compressed. "[i % 31];
	uzswap_region_get_stats(uz, mem, &st);
	printf("4 MiB through a 1 MiB limit: %s; resident max %llu pages, "
	       "%llu evictions\n", bad ? "WRONG BYTES" : "same bytes",
	       (unsigned long long)st.max_resident_pages,
	       (unsigned long long)st.evicted_pages);
	uzswap_region_destroy(uz, mem);
	uzswap_close(uz);
	return bad ? 1 : 0;
}
