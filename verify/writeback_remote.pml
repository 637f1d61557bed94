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
 * REMOTE g (a record of generation g on the server). A write's key is
 * (O, s), s the backend's own write sequence (64 bits: never reused); the
 * backend keeps per offset the key of its last acknowledged write
 * (last_seq); a read GETs that key and checks that the record's header
 * names the slot's generation (else -EIO). Values are small numbers,
 * 0 = zeros; every write writes a new one.
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
 *   reader     uzswap_read under the stripe lock (GET of last_seq's key),
 *              or a folio read: the generation noted under the lock, the
 *              GET without it, a missing key or another generation re-read
 *              under the lock
 *   unlinker   the obsolete keys' UNLINKs, sent with some later batch
 *
 * A SET has three outcomes: applied and acknowledged; not applied (refused,
 * connection down); applied but not acknowledged (the reply lost, a
 * timeout, WAIT short of replicas) - the case that makes one key per
 * offset unsafe. The backend's write_done: acknowledged -> last_seq := s
 * and the key it replaces is obsolete; failed -> s itself is.
 *
 * Checked (safety, exhaustive): every read returns a value the offset
 * held while the read ran (ghost `cur`, set where a write takes effect:
 * under the stripe lock, or a direct write's acknowledgement) - never
 * older bytes, never zeros for a written page - and the record a REMOTE
 * slot expects is on the server (a read never fails on a server that lost
 * nothing). -DWRAP=n wraps the record generation after n (29 bits in the
 * code): still clean, the keys do not depend on it.
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
 *   -DKEYGEN -DWRAP=2     the key named by the record's generation (the code
 *                         before e5da1ac) and a wrap: a new write comes
 *                         round to an obsolete key whose UNLINK is still
 *                         queued, and the UNLINK deletes the new record
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
#define NK 12		/* keys 1..NK-1 */

#define EMPTY	0
#define ENTRY	1
#define REMOTE	2

byte kind = EMPTY;	/* the slot */
byte sval;		/* ENTRY: its value */
byte seid;		/* ENTRY: its id */
byte sgen;		/* REMOTE: its record's generation */
byte nexteid = 1;
byte nextval = 1;	/* every write a new value */
bit lk;			/* the offset's stripe lock */
bit busy;		/* wb_busy: a writeback of the offset in flight */
byte genctr;		/* uz->backend_gen: the record's generation */
byte seqctr = 1;	/* the backend's write sequence: a write's key */
byte last_seq;		/* backend: the key of the last acknowledged write */
byte cur;		/* ghost: what the offset reads now */
int rdmask;		/* ghost: the values it held since a read began */
#ifdef ONEKEY
byte kgen, kval;	/* the one key (O): its record's generation, value */
#else
byte kval[NK];		/* key (O, k): its record's value, 0 = no key */
byte kgen[NK];		/* and its record's generation */
#endif
chan obs = [8] of { byte };	/* obsolete keys, to UNLINK */
bit seen_applied_unacked, seen_stale, seen_unlink, seen_folio_retry;
bit seen_direct_fail, seen_wrap;

inline lock()   { atomic { lk == 0 -> lk = 1 } }
inline unlock() { lk = 0 }

inline set_cur(v) { cur = v; rdmask = rdmask | (1 << v) }

/* A new record generation in g (29 bits in the code: -DWRAP=n makes it
 * wrap after n, to show what a wrap does). */
inline new_gen(g) {
#ifdef WRAP
	g = genctr % WRAP + 1; seen_wrap = seen_wrap || genctr >= WRAP;
#else
	g = genctr + 1;
#endif
	genctr++
}

/* The key of a write of generation g in k: the backend's own sequence
 * (never reused), or with -DKEYGEN the generation itself (the code before
 * e5da1ac). */
inline new_key(k, g) {
#ifdef KEYGEN
	k = g
#else
	k = seqctr; seqctr++;
	assert(seqctr < NK)	/* the model's bound, not a property */
#endif
}

#ifdef ONEKEY
#define SRV_PUT(k, g, v)	kgen = g; kval = v
#define SRV_OK(k, g)		(kval != 0 && kgen == g)
#define SRV_GET(k)		kval
#define SRV_DEL(k)		kgen = 0; kval = 0
#else
#define SRV_PUT(k, g, v)	kgen[k] = g; kval[k] = v
/* The key is there and its record's header names the generation the
 * slot expects (a mismatch is -EIO, counted, never the bytes). */
#define SRV_OK(k, g)		(kval[k] != 0 && kgen[k] == g)
#define SRV_GET(k)		kval[k]
#define SRV_DEL(k)		kgen[k] = 0; kval[k] = 0
#endif

/* The key a read GETs: the backend's last acknowledged one (key_seq()), or
 * with -DKEYGEN the slot's generation. */
#ifdef KEYGEN
#define READ_KEY	sgen
#else
#define READ_KEY	last_seq
#endif

/* One SET of key k = (g, v), and its reply in ok. lin: the write's
 * linearisation point is its acknowledgement (a direct write: a folio
 * read may GET the new key then, before the slot names it, and the
 * writer, holding the stripe lock, publishes it next); 0 for writeback
 * (the value is the offset's already). */
inline set(k, g, v, ok, lin) {
	if
	:: atomic {
		SRV_PUT(k, g, v); ok = 1;
		if
		:: lin -> set_cur(v)
		:: else -> skip
		fi
	   }
	:: ok = 0
	:: atomic { SRV_PUT(k, g, v); ok = 0; seen_applied_unacked = 1 }
	fi
}

inline obsolete(k) {
	if
	:: nfull(obs) -> obs!k
	:: full(obs) -> skip	/* a leak (gc finds it), never a loss */
	fi
}

/* backend_redis.c write_done(): after the reply, no stripe lock needed
 * (the writes of one offset are serialised by wb_busy). */
inline write_done(k, ok, old) {
#ifndef ONEKEY
	if
	:: !ok -> obsolete(k)
	:: else ->
		atomic { old = last_seq; last_seq = k };
		if
		:: old != 0 && old != k -> obsolete(old)
		:: else -> skip
		fi
	fi
#else
	skip
#endif
}

/* key_seq(forget) + DEL: the last acknowledged write's key. */
inline del_last(old) {
	atomic { old = last_seq; last_seq = 0 };
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
		set_cur(nextval); nextval++; nexteid++
	}
}

/* device.c file_write: the cache refused the page. */
inline direct(g, k, ok, old) {
#ifdef MUT_NO_BUSY
	lock();
#else
	atomic { lk == 0 && busy == 0 -> lk = 1 }	/* wait_idle */
#endif
	new_gen(g); new_key(k, g);
	set(k, g, nextval, ok, 1);
	write_done(k, ok, old);
	if
	:: ok -> kind = REMOTE; sgen = g
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
		kind = EMPTY; set_cur(0);
#ifdef MUT_DISCARD_UNLOCKED
		unlock();
		del_last(old)
#else
		del_last(old);
		unlock()
#endif
	:: else ->
		kind = EMPTY; set_cur(0);
		unlock()
	fi
}

proctype writer() {
	byte i, g, k, old;
	bit ok;

	do
	:: i < NOPS ->
		i++;
		if
		:: store()
		:: direct(g, k, ok, old)
		:: discard(old)
		fi
	:: else -> break
	od
}

active proctype shrinker() {
	byte n, v, e, g, k, old;
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
			v = sval; e = seid;
			new_gen(g);
			busy = 1;
#ifdef NAIVE_EARLY
			kind = REMOTE; sgen = g;	/* before the ack */
#endif
			unlock();
			new_key(k, g);		/* redis_write: no lock held */
			set(k, g, v, ok, 0);
			write_done(k, ok, old);
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

/* The slot's value, under the stripe lock: a REMOTE slot's record must be
 * there (else -EIO: the page lost). */
inline read_locked(val) {
	if
	:: kind == EMPTY -> val = 0
	:: kind == ENTRY -> val = sval
	:: kind == REMOTE ->
		assert(SRV_OK(READ_KEY, sgen));
		val = SRV_GET(READ_KEY)
	fi;
	assert(val == cur)
}

active proctype reader() {
	byte n, g, k, val;

	do
	:: n < NRD ->
		n++;
		lock();
		if
		:: atomic {	/* uzswap_read: the GET under the lock (one
				 * step: the slot cannot change meanwhile, and
				 * the one GET is the only other read) */
			read_locked(val);
			unlock()
		   }
		:: kind == REMOTE ->	/* a folio read: GET unlocked */
			atomic { g = sgen; rdmask = 1 << cur; unlock() };
			k = READ_KEY;	/* key_seq() when the batch is sent */
			if
			:: atomic { SRV_OK(k, g) -> val = SRV_GET(k) };
				/* a value the offset held during the read */
				assert(rdmask & (1 << val))
			:: atomic { !SRV_OK(k, g) -> seen_folio_retry = 1 };
				lock();		/* re-read alone, locked */
				atomic { read_locked(val); unlock() }
			fi
		fi
	:: else -> break
	od
}

active proctype unlinker() {
	byte g;

end:	do
	:: obs?g ->
		/* It may drop the key the backend's last_seq still names
		 * while a writer holds the stripe lock and is about to make
		 * the slot name the newer one: no reader sees it between. */
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
#elif PROBE == 5
	seen_wrap && kind == REMOTE -> assert(false)
#endif
}
#endif
