#!/bin/sh
# region_kernel.sh - the access patterns of `uzswap bench --region` run
# against the kernel's own zswap, and uzswap's numbers for the same
# patterns in the same run.
#
# Owns: one comparison run. Where the machine allows it (root,
# /sys/module/zswap, a memory cgroup controller, a file system that takes
# a swap file), it sets up a swap file, turns zswap on (lz4 if the kernel
# has it, else lzo), makes a memory cgroup, and runs a small C program
# (below, built with cc) inside it: the same region size, limit, threads,
# write share and touch streams (the generator of tools/regionbench.c),
# on the same corpus pages in the same order (same-filled pages last, as
# uzswap's page set puts them). The program measures its baseline usage
# (corpus, streams, latency arrays: mlocked, so reclaim takes only the
# region) and sets the cgroup limit to baseline + the region limit. It
# counts a touch as a fault when mincore() said the page was out just
# before (as bench --region does), and prints faults/s, per-touch p50/p99,
# resident max (mincore, sampled), the kernel's zswpin/zswpout/pswpin/
# pswpout deltas, mismatches. Then `uzswap bench --region` with the same
# options. The cgroup's memory.swappiness is set to 100 (v1).
#
# Must never: leave anything behind. Everything it set up is undone on
# every exit path (trap): the program stopped, the cgroup removed, zswap's
# enabled and compressor put back, the swap file swapped off and removed.
# Not in make test (it changes the machine); exits 77 with the reason
# where it cannot run.
#
# usage: bench/region_kernel.sh [UZSWAP [CORPUS]]
#   env: REGION_MIB (64), LIMIT_MIB (16), THREADS (2), WRITES (20),
#        TOUCHES (per thread; default 4 x the region's pages),
#        PATTERNS ("uniform skewed seq"),
#        PAGE_CLUSTER (vm.page-cluster for the run, default 0: no swap
#        readahead, as uzswap has none yet; with the kernel's 3 the
#        readahead pages, charged to the cgroup, got the program
#        OOM-killed at this limit on uniform and seq; "keep": leave it)
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
uzswap=${1:-$here/build/rel/uzswap}
corpus=${2:-$here/../shared/corpus/gcc.pages}
region_mib=${REGION_MIB:-64}
limit_mib=${LIMIT_MIB:-16}
threads=${THREADS:-2}
writes=${WRITES:-20}
touches=${TOUCHES:-$((4 * region_mib * 256))}
patterns=${PATTERNS:-"uniform skewed seq"}
zs=/sys/module/zswap/parameters

skip() { echo "region_kernel: SKIP: $*" >&2; exit 77; }
die() { echo "region_kernel: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (swapon, zswap parameters, cgroups)"
[ -w $zs/enabled ] || skip "no zswap in this kernel ($zs)"
[ -x "$uzswap" ] || skip "no uzswap command at $uzswap (build first)"
[ -r "$corpus" ] || skip "no corpus at $corpus"
command -v cc >/dev/null || skip "no C compiler (cc)"
command -v mkswap >/dev/null || skip "no mkswap"

# The memory controller: cgroup v1 "memory" hierarchy, else v2.
memcg=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ { print $2; exit }' \
	/proc/mounts)
limit_file=memory.limit_in_bytes
if [ -z "$memcg" ]; then
	memcg=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	limit_file=memory.max
	[ -n "$memcg" ] && grep -qw memory "$memcg/cgroup.controllers" \
		2>/dev/null || skip "no memory cgroup controller mounted"
fi

work=
cg=
pid=
swapped=
old_enabled=$(cat $zs/enabled)
old_comp=$(cat $zs/compressor)
old_cluster=$(cat /proc/sys/vm/page-cluster)
page_cluster=${PAGE_CLUSTER:-0}
[ "$page_cluster" = keep ] && page_cluster=$old_cluster

# Undo everything, in the reverse order of setup; safe to run twice.
cleanup() {
	trap - EXIT INT TERM HUP
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$cg" ] && [ -d "$cg" ] && rmdir "$cg"
	echo "$old_enabled" > $zs/enabled
	[ -n "$swapped" ] && swapoff "$work/swap"
	echo "$old_comp" > $zs/compressor
	echo "$old_cluster" > /proc/sys/vm/page-cluster
	[ -n "$work" ] && rm -rf "$work"
	echo "region_kernel: undone: zswap enabled=$(cat $zs/enabled)" \
	     "compressor=$(cat $zs/compressor), vm.page-cluster" \
	     "$(cat /proc/sys/vm/page-cluster); swaps now:" \
	     "$(tail -n +2 /proc/swaps | wc -l)" >&2
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# A file system that takes a swap file: /var/tmp (tmpfs /tmp cannot).
work=$(mktemp -d /var/tmp/uzswap-kzswap.XXXXXX) || die "mktemp failed"
swap_mib=$((region_mib * 2 + 64))
fallocate -l ${swap_mib}M "$work/swap" 2>/dev/null ||
	dd if=/dev/zero of="$work/swap" bs=1M count=$swap_mib 2>/dev/null ||
	skip "cannot make a ${swap_mib} MiB swap file in $work"
chmod 600 "$work/swap"
mkswap "$work/swap" >/dev/null 2>&1 || skip "mkswap failed on $work/swap"
swapon "$work/swap" 2>/dev/null || skip "swapon refused $work/swap"
swapped=1
if echo lz4 > $zs/compressor 2>/dev/null; then :
elif echo lzo > $zs/compressor 2>/dev/null; then :
else skip "zswap takes neither lz4 nor lzo"; fi
echo Y > $zs/enabled || skip "cannot enable zswap"
echo "$page_cluster" > /proc/sys/vm/page-cluster ||
	skip "cannot set vm.page-cluster to $page_cluster"
comp=$(cat $zs/compressor)
cg=$memcg/uzswap-kzswap-$$
mkdir "$cg" || skip "cannot make a memory cgroup under $memcg"

# ---- the touch program: regionbench's streams, on the kernel ----
cat > "$work/touch.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
enum { UNIFORM, SKEWED, SEQ };
struct touch { uint32_t page, write; };
struct th { unsigned t; struct touch *s; uint64_t *lat; size_t nlat;
	    uint64_t bad; };

static uint8_t *src, *mem;
static size_t nsrc, np, lim, nt, ntouch, wpct;
static int pattern;
static uint32_t *version;
static pthread_barrier_t bar;
static atomic_bool done;
static size_t res_max;

static uint64_t ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t rnd(uint64_t *s)	/* tools/regionbench.c's */
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* tools/regionbench.c's gen_stream(), the same numbers. */
static void gen(unsigned t, struct touch *s)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * (t + 1);
	uint64_t hot = lim / 2 ? lim / 2 : 1, pos = np * t / nt;

	for (size_t k = 0; k < ntouch; k++) {
		uint64_t p;

		if (pattern == SEQ) {
			p = pos;
			pos = (pos + 1) % np;
		} else if (pattern == SKEWED && rnd(&seed) % 10) {
			p = rnd(&seed) % hot;
		} else {
			p = rnd(&seed) % np;
		}
		s[k].write = rnd(&seed) % 100 < wpct;
		if (s[k].write) {
			p = p - p % nt + t;
			if (p >= np)
				p -= nt;
		}
		s[k].page = (uint32_t)p;
	}
}

/* The corpus as uzswap's page set has it: same-filled pages last. */
static void load(const char *path)
{
	int fd = open(path, O_RDONLY);
	size_t cap = 0, kept = 0, same = 0;
	uint8_t *sm;

	if (fd < 0 || (cap = (size_t)lseek(fd, 0, SEEK_END) / PAGE) == 0)
		exit(1);
	src = malloc(cap * PAGE);
	sm = malloc(cap * PAGE);
	if (!src || !sm || pread(fd, src, cap * PAGE, 0) != (ssize_t)(cap * PAGE))
		exit(1);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);	/* no page cache */
	close(fd);
	for (size_t i = 0; i < cap; i++) {
		uint64_t *w = (uint64_t *)(src + i * PAGE);
		size_t k = 1;

		while (k < PAGE / 8 && w[k] == w[0])
			k++;
		if (k == PAGE / 8)
			memcpy(sm + same++ * PAGE, w, PAGE);
		else
			memmove(src + kept++ * PAGE, w, PAGE);
	}
	memcpy(src + kept * PAGE, sm, same * PAGE);
	free(sm);
	nsrc = cap;
}

static void *toucher(void *arg)
{
	struct th *h = arg;

	pthread_barrier_wait(&bar);
	for (size_t k = 0; k < ntouch; k++) {
		uint8_t *p = mem + (size_t)h->s[k].page * PAGE;
		unsigned char v = 1;
		uint64_t t0, t1;

		(void)mincore(p, PAGE, &v);
		t0 = ns();
		if (h->s[k].write) {
			uint64_t st[2] = { h->s[k].page,
					   ++version[h->s[k].page] };

			memcpy(p, st, sizeof(st));
		} else {
			size_t at = 16 + (k * 61) % (PAGE - 16);

			if (*(volatile uint8_t *)(p + at) !=
			    src[(h->s[k].page % nsrc) * PAGE + at])
				h->bad++;
		}
		t1 = ns();
		if (!(v & 1))
			h->lat[h->nlat++] = t1 - t0;
	}
	return NULL;
}

/* The most region pages resident at once, by mincore every 5 ms. */
static void *sampler(void *arg)
{
	unsigned char *vec = malloc(np);

	(void)arg;
	while (vec && !atomic_load(&done)) {
		size_t c = 0;

		if (mincore(mem, np * PAGE, vec) == 0)
			for (size_t i = 0; i < np; i++)
				c += vec[i] & 1;
		if (c > res_max)
			res_max = c;
		usleep(5000);
	}
	free(vec);
	return NULL;
}

static unsigned long long vmstat(const char *key)
{
	char k[64];
	unsigned long long v, r = 0;
	FILE *f = fopen("/proc/vmstat", "r");

	while (f && fscanf(f, "%63s %llu", k, &v) == 2)
		if (!strcmp(k, key))
			r = v;
	if (f)
		fclose(f);
	return r;
}

static unsigned long long read_ull(const char *path)
{
	unsigned long long v = 0;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static const char *const keys[] = { "zswpin", "zswpout", "pswpin",
				    "pswpout" };

/* argv: corpus pages limit_pages threads writes touches pattern cgdir
 * limit_file slack_bytes */
int main(int argc, char **argv)
{
	struct th h[64];
	pthread_t tid[64], smp;
	unsigned long long v0[4], base, lat_n = 0;
	uint64_t *lat, t0, bad = 0, faults = 0;
	char path[4096];
	double secs;
	FILE *f;

	if (argc != 11)
		return 2;
	load(argv[1]);
	np = strtoull(argv[2], 0, 0);
	lim = strtoull(argv[3], 0, 0);
	nt = strtoull(argv[4], 0, 0);
	wpct = strtoull(argv[5], 0, 0);
	ntouch = strtoull(argv[6], 0, 0);
	pattern = !strcmp(argv[7], "seq") ? SEQ :
		  !strcmp(argv[7], "skewed") ? SKEWED : UNIFORM;
	if (nt < 1 || nt > 64)
		return 2;
	version = calloc(np, sizeof(*version));
	lat = malloc(nt * ntouch * sizeof(*lat));
	for (unsigned t = 0; t < nt; t++) {
		h[t] = (struct th){ .t = t, .lat = lat + t * ntouch };
		h[t].s = malloc(ntouch * sizeof(*h[t].s));
		if (!h[t].s)
			return 1;
		gen(t, h[t].s);
		memset(h[t].lat, 0, ntouch * sizeof(*lat));	/* in RAM */
	}
	if (!version || !lat || mlockall(MCL_CURRENT) != 0)
		return perror("mlockall"), 1;
	/* The limit: what this process holds now + the region's limit. */
	snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", argv[8]);
	base = read_ull(path);
	if (!base) {
		snprintf(path, sizeof(path), "%s/memory.current", argv[8]);
		base = read_ull(path);
	}
	snprintf(path, sizeof(path), "%s/%s", argv[8], argv[9]);
	if (!base || !(f = fopen(path, "w")))
		return perror(path), 1;
	fprintf(f, "%llu\n", base + (unsigned long long)lim * PAGE +
		strtoull(argv[10], 0, 0));
	if (fclose(f) != 0)
		return perror(path), 1;
	mem = mmap(NULL, np * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return perror("mmap"), 1;
	madvise(mem, np * PAGE, MADV_NOHUGEPAGE);	/* 4 KiB, as uzswap */
	for (size_t i = 0; i < np; i++)
		memcpy(mem + i * PAGE, src + (i % nsrc) * PAGE, PAGE);
	for (int k = 0; k < 4; k++)
		v0[k] = vmstat(keys[k]);
	pthread_barrier_init(&bar, NULL, (unsigned)nt);
	pthread_create(&smp, NULL, sampler, NULL);
	t0 = ns();
	for (unsigned t = 1; t < nt; t++)
		pthread_create(&tid[t], NULL, toucher, &h[t]);
	toucher(&h[0]);
	for (unsigned t = 1; t < nt; t++)
		pthread_join(tid[t], NULL);
	secs = (double)(ns() - t0) / 1e9;
	atomic_store(&done, true);
	pthread_join(smp, NULL);
	for (unsigned t = 0; t < nt; t++) {
		memmove(lat + lat_n, h[t].lat, h[t].nlat * sizeof(*lat));
		lat_n += h[t].nlat;
		bad += h[t].bad;
	}
	faults = lat_n;
	qsort(lat, lat_n, sizeof(*lat), cmp);
	printf("  touches %zu, faults %llu (mincore before the touch), "
	       "%.4f per touch, %.0f faults/s\n", nt * ntouch,
	       (unsigned long long)faults, (double)faults / (nt * ntouch),
	       faults / secs);
	printf("  fault p50 / p99, touching: %.1f / %.1f us\n",
	       lat_n ? lat[lat_n / 2] / 1e3 : 0,
	       lat_n ? lat[lat_n * 99 / 100] / 1e3 : 0);
	printf("  kernel, touch phase:");
	for (int k = 0; k < 4; k++)
		printf(" %s %llu", keys[k], vmstat(keys[k]) - v0[k]);
	printf("\n  resident max %zu pages by mincore (limit %zu; the cgroup "
	       "also holds the zswap pool it charges), touch phase %.3f s\n",
	       res_max, lim, secs);
	for (size_t i = 0; i < np; i++) {	/* every page, byte for byte */
		uint8_t want[PAGE];

		memcpy(want, src + (i % nsrc) * PAGE, PAGE);
		if (version[i]) {
			uint64_t st[2] = { i, version[i] };

			memcpy(want, st, sizeof(st));
		}
		bad += memcmp(mem + i * PAGE, want, PAGE) != 0;
	}
	printf("  mismatches %llu\n", (unsigned long long)bad);
	return bad != 0;
}
EOF
cc -O2 -Wall -pthread -o "$work/touch" "$work/touch.c" || die "cannot build the touch program"

pages=$((region_mib * 256))
limit=$((limit_mib * 256))
echo "region_kernel: $region_mib MiB region, limit $limit_mib MiB, $threads" \
     "threads, $writes% writes, $touches touches per thread; corpus" \
     "$corpus; kernel zswap $comp (swap file $swap_mib MiB," \
     "cgroup $cg, $limit_file, vm.page-cluster $page_cluster); uzswap lz4"
rc=0
# One kernel run of pattern $1 in the cgroup, its limit baseline + the
# region limit + $2 MiB (the program sets it itself). Its exit status.
kernel_run() {
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
		"$work/touch" "$corpus" $pages $limit $threads $writes \
		$touches "$1" "$cg" $limit_file $(($2 * 1048576)) &
	pid=$!
	wait $pid
	st=$?
	pid=
	return $st
}

# The kernel reclaims in the cgroup as the touches fault; at exactly
# baseline + limit the cgroup's OOM killer sometimes fires first (swap
# cache pages charged to it: 13 MB of 27 at the kill here). Then once
# more with SLACK_MIB (default 2) more, and the output says so.
slack=${SLACK_MIB:-2}
[ -w "$cg/memory.swappiness" ] && echo 100 > "$cg/memory.swappiness"
for p in $patterns; do
	echo
	echo "== $p: kernel zswap ($comp), memory cgroup limit = baseline +" \
	     "$limit_mib MiB"
	kernel_run "$p" 0
	st=$?
	if [ $st -eq 137 ]; then
		echo "  OOM-killed by the memory cgroup at baseline +" \
		     "$limit_mib MiB; again at + $limit_mib + $slack MiB:"
		kernel_run "$p" "$slack"
		st=$?
	fi
	[ $st -eq 0 ] || { echo "  kernel run failed ($st)"; rc=1; }
	echo "== $p: uzswap bench --region (lz4, same streams)"
	"$uzswap" bench --region ${region_mib}M --region-limit ${limit_mib}M \
		--pattern "$p" --threads "$threads" --writes "$writes" \
		--touches "$touches" --input "$corpus" 2>&1 |
		grep -E "faults|fault p50|resident max|mismatches|touch phase|ratio" ||
		rc=1
done
exit $rc
