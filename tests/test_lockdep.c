/*
 * test_lockdep - the lock-order table of src/lockdep.h is enforced:
 * taking a lock of lower rank while holding a higher one aborts, so does
 * "caller holds X" (uz_assert_held, uz_index_assert_locked) when X is not
 * held, or another lock of X's rank is; the legal orders (the table's,
 * ref shards nested ascending) pass, and uz_lock_rank_held() - the I5
 * check writeback relies on in every build - follows acquire and release.
 *
 * And I5 in every build, with or without the checker: writeback and
 * reclaim entered with a context lock held abort (they could need that
 * very lock), and uz_ctx_lock_held() follows the context lock.
 *
 * Each violation runs in a child process that must die of SIGABRT with
 * lockdep's message; the parent checks how it died. Without UZ_LOCKDEP
 * only the I5 part runs, and the test says so (it passes on that part).
 */
#include <signal.h>
#include <sys/wait.h>

#include "helpers.h"
#include "index.h"
#include "instance.h"
#include "lockdep.h"
#include "reclaim.h"
#include "writeback.h"


/* Run fn in a child; true when it was killed by SIGABRT. */
static bool aborts(void (*fn)(void))
{
	pid_t pid = fork();
	int status;

	T_ASSERT(pid >= 0);
	if (pid == 0) {
		fn();
		_exit(0);	/* no abort: the parent reports it */
	}
	T_ASSERT(waitpid(pid, &status, 0) == pid);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}


static void writeback_under_ctx(void)
{
	struct uzswap *uz = t_open_cache(16, NULL);

	(void)uz_ctx_lock(uz->current);
	(void)uz_writeback(uz, 1);	/* I5: must abort */
}

static void shrink_under_ctx(void)
{
	struct uzswap *uz = t_open_cache(16, NULL);

	(void)uz_ctx_lock(uz->current);
	(void)uz_shrink_to(uz, 0);	/* I5: must abort */
}

static void i5_checks(void)
{
	struct uzswap *uz = t_open_cache(16, NULL);
	struct uz_ctx *ctx;

	T_ASSERT(!uz_ctx_lock_held());
	ctx = uz_ctx_lock(uz->current);
	T_ASSERT(uz_ctx_lock_held());
	uz_ctx_unlock(ctx);
	T_ASSERT(!uz_ctx_lock_held());
	T_EQ(uz_writeback(uz, 1), -ENODEV);	/* no lock held: no abort */
	uzswap_close(uz);
	T_ASSERT(aborts(writeback_under_ctx));
	T_ASSERT(aborts(shrink_under_ctx));
}

#ifdef UZ_LOCKDEP
static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t b = PTHREAD_MUTEX_INITIALIZER;

static void ctx_then_stripe(void)
{
	uz_mutex_lock(&a, UZ_LR_CTX);
	uz_mutex_lock(&b, UZ_LR_STRIPE);	/* lower rank: must abort */
}

static void two_stripes(void)
{
	uz_mutex_lock(&a, UZ_LR_STRIPE);
	uz_mutex_lock(&b, UZ_LR_STRIPE);	/* at most one per rank */
}

static void lru_then_hotplug(void)
{
	uz_mutex_lock(&a, UZ_LR_LRU);
	uz_mutex_lock(&b, UZ_LR_HP);
}

static void assert_unheld(void)
{
	uz_assert_held(UZ_LR_CTX, &a);
}

static void assert_other_of_rank(void)
{
	uz_mutex_lock(&a, UZ_LR_STRIPE);
	uz_assert_held(UZ_LR_STRIPE, &b);
}

static void release_unheld(void)
{
	uz_lockdep_release(UZ_LR_LRU, &a);
}

/* The index's own precondition: offset 1's stripe is not offset 0's. */
static void index_wrong_stripe(void)
{
	struct uz_index ix;

	T_ASSERT(uz_index_init(&ix, 1024) == 0);
	if (ix.stripe_mask == 0)
		_exit(0);	/* one stripe: no wrong one to hold */
	uz_index_lock(&ix, 0);
	uz_index_assert_locked(&ix, 1);
}

static void legal_orders(void)
{
	pthread_mutex_t shards[4];
	struct uz_index ix;

	/* The store/load chain: stripe -> ctx -> zalloc -> arena, lru. */
	uz_lockdep_acquire(UZ_LR_STRIPE, &a);
	uz_lockdep_acquire(UZ_LR_CTX, &b);
	T_ASSERT(uz_lock_rank_held(UZ_LR_CTX));
	uz_lockdep_acquire(UZ_LR_ZALLOC, &shards[0]);
	uz_lockdep_acquire(UZ_LR_ARENA, &shards[1]);
	uz_lockdep_release(UZ_LR_ARENA, &shards[1]);
	uz_lockdep_release(UZ_LR_ZALLOC, &shards[0]);
	uz_lockdep_release(UZ_LR_CTX, &b);
	T_ASSERT(!uz_lock_rank_held(UZ_LR_CTX));
	uz_lockdep_acquire(UZ_LR_LRU, &b);
	uz_lockdep_release(UZ_LR_LRU, &b);
	uz_lockdep_release(UZ_LR_STRIPE, &a);
	/* A switch: switch lock, then every ref shard in ascending order. */
	uz_lockdep_acquire(UZ_LR_SWITCH, &a);
	for (int i = 0; i < 4; i++)
		uz_lockdep_acquire(UZ_LR_REF_SHARD, &shards[i]);
	for (int i = 4; i-- > 0;)
		uz_lockdep_release(UZ_LR_REF_SHARD, &shards[i]);
	uz_lockdep_release(UZ_LR_SWITCH, &a);
	/* The index checks the stripe it was asked about. */
	T_ASSERT(uz_index_init(&ix, 1024) == 0);
	uz_index_lock(&ix, 7);
	uz_index_assert_locked(&ix, 7);
	uz_index_assert_locked(&ix, 7 + ix.stripe_mask + 1);	/* same */
	uz_index_unlock(&ix, 7);
	uz_index_destroy(&ix, NULL, NULL);
}

#endif

int main(void)
{
	i5_checks();
#ifndef UZ_LOCKDEP
	printf("lockdep: I5 checked; built without UZ_LOCKDEP, so the order "
	       "checks are compiled out and not tested here\n");
	return T_PASS;
#else
	legal_orders();
	T_ASSERT(!aborts(legal_orders));
	T_ASSERT(aborts(ctx_then_stripe));
	T_ASSERT(aborts(two_stripes));
	T_ASSERT(aborts(lru_then_hotplug));
	T_ASSERT(aborts(assert_unheld));
	T_ASSERT(aborts(assert_other_of_rank));
	T_ASSERT(aborts(release_unheld));
	T_ASSERT(aborts(index_wrong_stripe));
	printf("lockdep: I5 and 7 violations abort, the legal orders pass\n");
	return T_PASS;
#endif
}
