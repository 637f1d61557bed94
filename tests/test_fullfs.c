/*
 * test_fullfs - a backing file on a full file system costs a store a
 * bounded number of write attempts, not a walk of the whole LRU: once a
 * file write failed, reclaim backs off (UZ_WB_BACKOFF_NS) and stores fail
 * fast; an error is counted once per page, not once per attempt; nothing
 * already stored is lost, and once there is room again writeback works.
 *
 * Needs root to mount a 1 MiB tmpfs (skips, 77, otherwise). Real pages:
 * the corpus.
 */
#include <sys/mount.h>

#include "helpers.h"
#include "instance.h"	/* the attempt counter is internal */
#include "uzswap.h"

#define NR 2048

static char dir[] = "/tmp/uzswap-fullfs-XXXXXX";

static void cleanup(void)
{
	char path[64];

	snprintf(path, sizeof(path), "%s/swap", dir);
	unlink(path);
	umount2(dir, MNT_DETACH);
	rmdir(dir);
}

static int64_t attempts(struct uzswap *uz)
{
	return uz_stat_sum(&uz->stats, UZ_ST_WB_ATTEMPTS);
}

int main(void)
{
	struct uzswap_options o;
	struct uzswap_stats st;
	struct uzswap *uz;
	char path[64];
	uint8_t *pages, buf[T_PAGE];
	size_t n = t_corpus_or_skip("gcc.pages", &pages);
	uint64_t o_last = 0, errs;
	int64_t a0;
	int rc = 0, fd;

	T_ASSERT(n >= NR);
	if (!mkdtemp(dir))
		t_skip("mkdtemp: %s", strerror(errno));
	if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") < 0) {
		rmdir(dir);
		t_skip("cannot mount a small tmpfs (%s): needs root",
		       strerror(errno));
	}
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/swap", dir);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	T_ASSERT(fd >= 0);
	close(fd);
	uzswap_options_init(&o);
	o.nr_pages = NR;		/* 8 MiB of swap space on a 1 MiB fs */
	o.max_pool_bytes = 256 << 10;
	o.backing_path = path;
	o.shrinker_enabled = false;	/* direct reclaim alone */
	T_EQ(uzswap_open(&o, &uz), 0);
	/* Fill until the file system is full and a write fails. */
	for (o_last = 0; o_last < NR; o_last++) {
		rc = uzswap_write(uz, o_last, pages + o_last * T_PAGE);
		if (rc)
			break;
	}
	T_EQ(rc, -EIO);
	T_EQ(uzswap_get_stats(uz, &st), 0);
	printf("full after %llu pages: %llu written back, %llu in the file, "
	       "%llu cached\n", (unsigned long long)o_last,
	       (unsigned long long)st.written_back_pages,
	       (unsigned long long)st.backing_pages,
	       (unsigned long long)st.lru_pages);
	T_ASSERT(st.lru_pages > 8);	/* a full LRU to walk in vain */
	/* 200 more stores on the full system: each fails fast. */
	a0 = attempts(uz);
	errs = st.backing_io_errors;
	for (int i = 0; i < 200; i++) {
		rc = uzswap_write(uz, o_last, pages + o_last * T_PAGE);
		T_ASSERT(rc == -EIO || rc == -ENOSPC);
	}
	T_EQ(uzswap_get_stats(uz, &st), 0);
	printf("200 stores on a full fs: %lld writeback attempts, %llu new "
	       "I/O errors\n", (long long)(attempts(uz) - a0),
	       (unsigned long long)(st.backing_io_errors - errs));
	/* Backing off: at most a probe per backoff period (these 200 stores
	 * take far less than a second) - not an LRU walk per store. */
	T_ASSERT(attempts(uz) - a0 <= 20);
	T_ASSERT(st.backing_io_errors - errs <= 200 + 20);
	/* Nothing already stored was lost. */
	for (uint64_t off = 0; off < o_last; off++) {
		T_EQ(uzswap_read(uz, off, buf), 0);
		T_ASSERT(memcmp(buf, pages + off * T_PAGE, T_PAGE) == 0);
	}
	uzswap_close(uz);
	free(pages);
	printf("nothing lost\n");
	return T_PASS;
}
