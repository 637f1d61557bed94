/*
 * writeback_remote.pml - one offset's page between the pool and a remote
 * store (Redis): the protocol of src/writeback.c (writeback of the coldest
 * entry), src/device.c (uzswap_write of a page the cache refused,
 * uzswap_read), src/frontend.c (uz_offset_drop: a discard),
 * src/backend_read.c (a folio read, unlocked) and src/backend_redis.c (a
 * key per generation, the list of obsolete keys, last_gen, the DEL of a
 * discard). Issue 13; docs/backing.md ("Keys") describes the same.
 *
 * The slot is EMPTY (reads zeros), ENTRY (a pool entry; each entry has an
 * id: a replaced entry is another entry even with the same bytes) or
 * REMOTE g (the record of generation g, under the server key (O, g)).
 * Values are small numbers, 0 = zeros; every write writes a new one.
 *
 * Processes:
 *   writer(s)  the program: uzswap_store (into the pool), uzswap_write of a
 *              page the cache refused (straight to the server, under the
 *              stripe lock, after any writeback of the offset in flight),
 *              uzswap_discard
 *   shrinker   writeback: under the stripe lock take the entry, a new
 *              generation, mark the write in flight (wb_busy); SET with no
 *              lock held; back under the lock: acknowledged and still the
 *              same entry -> REMOTE g, else the write is forgotten
 *   reader     uzswap_read under the stripe lock (GET of the slot's key
 *              then), or a folio read: the generation noted under the lock,
 *              the GET without it, a missing key re-read under the lock
 *   unlinker   the obsolete keys' UNLINKs, sent with some later batch
 *
 * A SET has three outcomes: applied and acknowledged; not applied (refused,
 * connection down); applied but not acknowledged (the reply lost, a
 * timeout, WAIT short of replicas) - the case that makes one key per
 * offset unsafe. The backend's write_done: acknowledged -> last_gen := g
 * and the generation it replaces is obsolete; failed -> g itself is.
 *
 * Checked (safety, exhaustive): every read returns the offset's value at
 * its linearisation point (ghost `cur`, set under the stripe lock where
 * the slot changes) - never older bytes, never zeros for a written page -
 * and the key of a REMOTE slot is always on the server (a read never
 * fails on a server that lost nothing).
 *
 * Variants (must fail):
 *   -DONEKEY              one key per offset, the generation only in the
 *                         record's header: a write applied but not
 *                         acknowledged replaces the acknowledged record,
 *                         whose page then reads -EIO (lost)
 *   -DNAIVE_EARLY         the slot says REMOTE when the SET is sent, before
 *                         the server acknowledged it (against I7)
 *   -DMUT_NO_BUSY         no wb_busy: a direct write does not wait for the
 *                         writeback in flight; an older acknowledgement then
 *                         lands after a newer one and makes the current
 *                         generation obsolete
 *   -DMUT_NO_RECHECK      writeback publishes REMOTE without checking that
 *                         the slot still holds its entry
 *   -DMUT_DISCARD_UNLOCKED  the discard's DEL after the stripe lock is
 *                         dropped (with -DNWRITER=2: a store and a
 *                         writeback get in between)
 *   -DPROBE=n             reachability of the interesting situations
 */

#ifndef NWRITER
#define NWRITER 1
#endif
#ifndef NOPS
#define NOPS 3		/* operations per writer */
#endif
#ifndef NWB
#define NWB 2		/* writebacks the shrinker tries */
#endif
#ifndef NRD
#define NRD 2		/* reads */
#endif
#define NG 12		/* generations 1..NG-1 */

#define EMPTY	0
#define ENTRY	1
#define REMOTE	2

byte kind = EMPTY;	/* the slot */
byte sval;		/* ENTRY: its value */
byte seid;		/* ENTRY: its id */
byte sgen;		/* REMOTE: its generation */
byte nexteid = 1;
byte nextval = 1;	/* every write a new value */
bit lk;			/* the offset's stripe lock */
bit busy;		/* wb_busy: a writeback of the offset in flight */
byte genctr = 1;	/* uz->backend_gen */
byte last_gen;		/* backend: the last acknowledged generation */
byte cur;		/* ghost: what the offset reads now */
#ifdef ONEKEY
byte kgen, kval;	/* the one key (O): its record's generation, value */
#else
byte srv[NG];		/* key (O, g): its record's value, 0 = no key */
#endif
chan obs = [8] of { byte };	/* obsolete generations, to UNLINK */
bit seen_applied_unacked, seen_stale, seen_unlink, seen_folio_retry;
bit seen_direct_fail;

inline lock()   { atomic { lk == 0 -> lk = 1 } }
inline unlock() { lk = 0 }

#ifdef ONEKEY
#define SRV_PUT(g, v)	kgen = g; kval = v
#define SRV_HAS(g)	(kgen == g)
#define SRV_GET(g)	kval
#define SRV_DEL(g)	kgen = 0; kval = 0
#else
#define SRV_PUT(g, v)	srv[g] = v
#define SRV_HAS(g)	(srv[g] != 0)
#define SRV_GET(g)	srv[g]
#define SRV_DEL(g)	srv[g] = 0
#endif

/* One SET of key (O, g) = v, and its reply in ok. */
inline set(g, v, ok) {
	if
	:: atomic { SRV_PUT(g, v); ok = 1 }
	:: ok = 0
	:: atomic { SRV_PUT(g, v); ok = 0; seen_applied_unacked = 1 }
	fi
}

inline obsolete(g) {
	if
	:: nfull(obs) -> obs!g
	:: full(obs) -> skip	/* a leak (gc finds it), never a loss */
	fi
}

/* backend_redis.c write_done(): after the reply, no stripe lock needed
 * (the writes of one offset are serialised by wb_busy). */
inline write_done(g, ok, old) {
#ifndef ONEKEY
	if
	:: !ok -> obsolete(g)
	:: else ->
		atomic { old = last_gen; last_gen = g };
		if
		:: old != 0 && old != g -> obsolete(old)
		:: else -> skip
		fi
	fi
#else
	skip
#endif
}

/* discard_gen() + DEL: the last acknowledged generation's key. */
inline del_last(old) {
	atomic { old = last_gen; last_gen = 0 };
	if
	:: old != 0 -> SRV_DEL(old)
	:: else -> skip
	fi
}

/* uzswap_store: the pool took the page. An old REMOTE key is left for
 * the next acknowledged write of the offset (or close, or gc). */
inline store() {
	atomic {	/* all under the lock, nothing else touched: one step */
		lk == 0 -> kind = ENTRY; sval = nextval; seid = nexteid;
		cur = nextval; nextval++; nexteid++
	}
}

/* device.c file_write: the cache refused the page. */
inline direct(g, ok, old) {
#ifdef MUT_NO_BUSY
	lock();
#else
	atomic { lk == 0 && busy == 0 -> lk = 1 }	/* wait_idle */
#endif
	g = genctr; genctr++;
	set(g, nextval, ok);
	write_done(g, ok, old);
	if
	:: ok -> kind = REMOTE; sgen = g; cur = nextval
	:: else -> seen_direct_fail = 1	/* -EIO, the old page stays */
	fi;
	nextval++;
	unlock()
}

/* frontend.c uz_offset_drop. */
inline discard(old) {
	lock();
	if
	:: kind == REMOTE ->
		kind = EMPTY; cur = 0;
#ifdef MUT_DISCARD_UNLOCKED
		unlock();
		del_last(old)
#else
		del_last(old);
		unlock()
#endif
	:: else ->
		kind = EMPTY; cur = 0;
		unlock()
	fi
}

proctype writer() {
	byte i, g, old;
	bit ok;

	do
	:: i < NOPS ->
		i++;
		if
		:: store()
		:: direct(g, ok, old)
		:: discard(old)
		fi
	:: else -> break
	od
}

active proctype shrinker() {
	byte n, v, e, g, old;
	bit ok;

	do
	:: n < NWB ->
		n++;
		lock();
		if
#ifdef MUT_NO_BUSY
		:: kind == ENTRY ->
#else
		:: kind == ENTRY && busy == 0 ->
#endif
			v = sval; e = seid; g = genctr; genctr++;
			busy = 1;
#ifdef NAIVE_EARLY
			kind = REMOTE; sgen = g;	/* before the ack */
#endif
			unlock();
			set(g, v, ok);		/* no lock held */
			write_done(g, ok, old);
			lock();
			busy = 0;
			if
#ifdef MUT_NO_RECHECK
			:: ok -> kind = REMOTE; sgen = g
#else
			:: ok && kind == ENTRY && seid == e ->
				assert(cur == v);
				kind = REMOTE; sgen = g
#endif
			:: else -> seen_stale = !ok || kind != ENTRY || seid != e
			fi;
			unlock()
		:: else -> unlock()
		fi
	:: else -> break
	od
}

active proctype reader() {
	byte n, g, val, want;

	do
	:: n < NRD ->
		n++;
		lock();
		if
		:: atomic {	/* uzswap_read: the GET under the lock (one
				 * step: the slot cannot change meanwhile, and
				 * the one GET is the only other read) */
			if
			:: kind == EMPTY -> val = 0
			:: kind == ENTRY -> val = sval
			:: kind == REMOTE ->
				assert(SRV_HAS(sgen));	/* else -EIO: lost */
				val = SRV_GET(sgen)
			fi;
			assert(val == cur);
			unlock()
		   }
		:: kind == REMOTE ->	/* a folio read: GET unlocked */
			g = sgen; want = cur;
			unlock();
			if
			:: atomic { SRV_HAS(g) -> val = SRV_GET(g) };
				assert(val == want)
			:: atomic { !SRV_HAS(g) -> seen_folio_retry = 1 };
				lock();		/* re-read alone, locked */
				if
				:: kind == EMPTY -> val = 0
				:: kind == ENTRY -> val = sval
				:: kind == REMOTE ->
					assert(SRV_HAS(sgen));
					val = SRV_GET(sgen)
				fi;
				assert(val == cur);
				unlock()
			fi
		fi
	:: else -> break
	od
}

active proctype unlinker() {
	byte g;

end:	do
	:: obs?g ->
		/* It may drop the key a REMOTE slot still names while a
		 * writer holds the stripe lock and is about to name the newer
		 * one: no reader sees the slot in between. */
		atomic { SRV_DEL(g); seen_unlink = 1 }
	od
}

init {
	byte w;

	atomic {
		do
		:: w < NWRITER -> run writer(); w++
		:: else -> break
		od
	}
}

#ifdef PROBE
/* Each must be reachable (the run "fails" when it is). */
active proctype probe() {
end:
#if PROBE == 1
	seen_applied_unacked && seen_direct_fail -> assert(false)
#elif PROBE == 2
	seen_stale -> assert(false)
#elif PROBE == 3
	seen_unlink && kind == REMOTE -> assert(false)
#elif PROBE == 4
	seen_folio_retry -> assert(false)
#endif
}
#endif
