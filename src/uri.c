/*
 * uri.c - the backing_uri parser (uri.h has the grammar).
 *
 * Owns: turning the option's text into struct uz_uri, or a message that
 * names the part that is wrong. A URI is taken whole or not at all.
 * Must never: allocate, do I/O, or accept a part it does not understand
 * (an unknown query key is an error, never ignored).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uri.h"

static int bad(char *err, unsigned errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* s[0..n) into dst (cap bytes), %XX decoded when esc. false: too long,
 * or a bad escape. */
static bool copy_part(char *dst, size_t cap, const char *s, size_t n, bool esc)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (esc && c == '%') {
			char hex[3] = { 0 };
			char *end;

			if (i + 2 >= n)
				return false;
			memcpy(hex, s + i + 1, 2);
			c = (char)strtol(hex, &end, 16);
			if (end != hex + 2 || c == 0)
				return false;
			i += 2;
		}
		if (o + 1 >= cap)
			return false;
		dst[o++] = c;
	}
	dst[o] = 0;
	return true;
}

/* A decimal in [lo, hi], the whole of s[0..n). */
static bool number(const char *s, size_t n, long lo, long hi, long *out)
{
	long v = 0;

	if (n == 0 || n > 9)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return v >= lo && v <= hi;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* One "host:port" (s[0..n)) into h. */
static int parse_host(const char *s, size_t n, struct uz_uri_host *h,
		      char *err, unsigned errlen)
{
	const char *colon = NULL, *name = s;
	size_t nlen;
	long port;

	if (n && s[0] == '[') {		/* [v6]:port */
		const char *rb = memchr(s, ']', n);

		if (!rb || rb + 1 >= s + n || rb[1] != ':')
			return bad(err, errlen, "host \"%.*s\": an IPv6 "
				   "address is [addr]:port", (int)n, s);
		name = s + 1;
		nlen = (size_t)(rb - name);
		colon = rb + 1;
		for (size_t i = 0; i < nlen; i++)
			if (!strchr("0123456789abcdefABCDEF:.", name[i]))
				return bad(err, errlen, "host \"%.*s\": not "
					   "an IPv6 address", (int)n, s);
	} else {
		for (size_t i = 0; i < n; i++)
			if (s[i] == ':')
				colon = s + i;
		if (!colon)
			return bad(err, errlen, "host \"%.*s\": no port "
				   "(host:port)", (int)n, s);
		nlen = (size_t)(colon - s);
		for (size_t i = 0; i < nlen; i++)
			if (!host_char(s[i]))
				return bad(err, errlen, "host \"%.*s\": "
					   "character '%c' not allowed",
					   (int)n, s, s[i]);
	}
	if (nlen == 0 || nlen >= sizeof(h->name))
		return bad(err, errlen, "host \"%.*s\": empty or too long "
			   "name", (int)n, s);
	if (!number(colon + 1, (size_t)(s + n - colon - 1), 1, 65535, &port))
		return bad(err, errlen, "host \"%.*s\": port \"%.*s\" is not "
			   "a number in 1..65535", (int)n, s,
			   (int)(s + n - colon - 1), colon + 1);
	memcpy(h->name, name, nlen);
	h->name[nlen] = 0;
	h->port = (int)port;
	return 0;
}

/* "h:p,h:p" (s[0..n)) into u->host[]. */
static int parse_hosts(const char *s, size_t n, struct uz_uri *u, int max,
		       char *err, unsigned errlen)
{
	const char *end = s + n;

	if (n == 0)
		return bad(err, errlen, "no host:port after the scheme");
	while (s <= end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *e = comma ? comma : end;
		int rc;

		if (u->nhosts == max)
			return bad(err, errlen, "more than %d hosts", max);
		rc = parse_host(s, (size_t)(e - s), &u->host[u->nhosts],
				err, errlen);
		if (rc)
			return rc;
		u->nhosts++;
		if (!comma)
			break;
		s = comma + 1;
	}
	return 0;
}

/* One "key=value" of the query. seen: bit per key, for duplicates. */
static int parse_param(const char *s, size_t n, struct uz_uri *u,
		       unsigned *seen, char *err, unsigned errlen)
{
	static const char *const keys[] = { "ns", "timeout_ms", "wait" };
	const char *eq = memchr(s, '=', n);
	size_t klen = eq ? (size_t)(eq - s) : n, vlen;
	const char *v = eq ? eq + 1 : NULL;
	unsigned k;
	long num;

	for (k = 0; k < 3; k++)
		if (strlen(keys[k]) == klen && !memcmp(keys[k], s, klen))
			break;
	if (k == 3)
		return bad(err, errlen, "query: unknown key \"%.*s\" (ns, "
			   "timeout_ms, wait)", (int)klen, s);
	if (*seen & (1u << k))
		return bad(err, errlen, "query: %s given twice", keys[k]);
	*seen |= 1u << k;
	vlen = v ? n - klen - 1 : 0;
	if (!v || !vlen)
		return bad(err, errlen, "query: %s needs a value", keys[k]);
	if (k == 0) {
		for (size_t i = 0; i < vlen; i++)
			if (!host_char(v[i]))
				return bad(err, errlen, "query: ns \"%.*s\": "
					   "character '%c' not allowed "
					   "([A-Za-z0-9_.-])", (int)vlen, v,
					   v[i]);
		if (vlen > UZ_URI_NS_MAX)
			return bad(err, errlen, "query: ns longer than %d",
				   UZ_URI_NS_MAX);
		memcpy(u->ns, v, vlen);
		u->ns[vlen] = 0;
		return 0;
	}
	if (!number(v, vlen, k == 1 ? 1 : 0, k == 1 ? 60000 : 16, &num))
		return bad(err, errlen, "query: %s \"%.*s\" is not a number "
			   "in %s", keys[k], (int)vlen, v,
			   k == 1 ? "1..60000" : "0..16");
	if (k == 1)
		u->timeout_ms = (int)num;
	else
		u->wait = (int)num;
	return 0;
}

static int parse_query(const char *q, struct uz_uri *u, char *err,
		       unsigned errlen)
{
	unsigned seen = 0;

	while (*q) {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		int rc = parse_param(q, n, u, &seen, err, errlen);

		if (rc)
			return rc;
		q += n + (amp != NULL);
	}
	return 0;
}

/* "user:password@" at the start of s (up to end), if any; *rest after. */
static int parse_auth(const char *s, const char *end, struct uz_uri *u,
		      const char **rest, char *err, unsigned errlen)
{
	const char *at = memchr(s, '@', (size_t)(end - s));
	const char *colon;

	*rest = s;
	if (!at)
		return 0;
	colon = memchr(s, ':', (size_t)(at - s));
	if (!colon)	/* a password alone: AUTH password */
		colon = s - 1;
	if (colon >= s && !copy_part(u->user, sizeof(u->user), s,
				     (size_t)(colon - s), true))
		return bad(err, errlen, "user: too long or a bad %%-escape");
	if (!copy_part(u->pass, sizeof(u->pass), colon + 1,
		       (size_t)(at - colon - 1), true) || !u->pass[0])
		return bad(err, errlen, "password: empty, too long or a bad "
			   "%%-escape");
	*rest = at + 1;
	return 0;
}

/* The part after "scheme://": authority (or socket path) and query. */
static int parse_redis(const char *s, struct uz_uri *u, char *err,
		       unsigned errlen)
{
	const char *q = strchr(s, '?'), *end = q ? q : s + strlen(s);
	const char *rest;
	int rc = parse_auth(s, end, u, &rest, err, errlen);

	if (rc)
		return rc;
	if (u->kind == UZ_URI_REDIS_UNIX) {
		if (*rest != '/' || rest + 1 >= end)
			return bad(err, errlen, "socket path: redis+unix:// "
				   "needs an absolute path");
		if (!copy_part(u->path, sizeof(u->path), rest,
			       (size_t)(end - rest), false))
			return bad(err, errlen, "socket path: too long");
	} else {
		if (end > rest && end[-1] == '/')
			end--;	/* the optional "/" before the query */
		if (memchr(rest, '/', (size_t)(end - rest)))
			return bad(err, errlen, "path: none allowed after "
				   "the hosts (the query starts with \"?\")");
		rc = parse_hosts(rest, (size_t)(end - rest), u,
				 u->kind == UZ_URI_REDIS ? 1 : UZ_URI_MAX_HOSTS,
				 err, errlen);
		if (rc)
			return rc;
	}
	return q ? parse_query(q + 1, u, err, errlen) : 0;
}

int uz_uri_parse(const char *s, struct uz_uri *u, char *err, unsigned errlen)
{
	static const struct { const char *p; enum uz_uri_kind k; } sch[] = {
		{ "redis://", UZ_URI_REDIS },
		{ "redis+unix://", UZ_URI_REDIS_UNIX },
		{ "redis-cluster://", UZ_URI_REDIS_CLUSTER },
	};
	struct uz_uri t = { .timeout_ms = UZ_URI_TIMEOUT_DEFAULT };
	int rc = -EINVAL;

	if (!s || !*s)
		return bad(err, errlen, "empty URI");
	if (!strncmp(s, "file:", 5)) {
		const char *p = s + 5;

		t.kind = UZ_URI_FILE;
		if (!strncmp(p, "//", 2))	/* file:///path: empty host */
			p += 2;
		if (*p != '/')
			return bad(err, errlen, "file: needs an absolute "
				   "path (file:/path)");
		if (!copy_part(t.path, sizeof(t.path), p, strlen(p), false))
			return bad(err, errlen, "file: path too long");
		rc = 0;
	}
	for (unsigned i = 0; rc && i < sizeof(sch) / sizeof(sch[0]); i++) {
		if (strncmp(s, sch[i].p, strlen(sch[i].p)))
			continue;
		t.kind = sch[i].k;
		rc = parse_redis(s + strlen(sch[i].p), &t, err, errlen);
		if (rc)
			return rc;
	}
	if (rc)
		return bad(err, errlen, "scheme: \"%.*s\" is none of file:, "
			   "redis://, redis+unix://, redis-cluster://",
			   (int)strcspn(s, ":"), s);
	*u = t;
	return 0;
}
