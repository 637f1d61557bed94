/*
 * uri.h - the backing_uri option, parsed (uri.c):
 *
 *   file:/path                      (also file:///path)
 *   redis://[user:password@]host:port[/][?query]
 *   redis+unix://[user:password@]/path/to.sock[?query]
 *   redis-cluster://[user:password@]host:port,host:port...[/][?query]
 *
 *   query: ns=ID (1..40 of [A-Za-z0-9_.-]: the instance's key namespace,
 *          random at open when absent), timeout_ms=N (1..60000, default
 *          200), wait=R (0..16 replicas that must acknowledge, default 0)
 *
 * host is a name or an IPv4 address, or an IPv6 address in brackets;
 * user and password may hold %XX escapes (an '@' or ':' of a password).
 *
 * Owns: the syntax, the limits and the message naming the part that is
 * wrong. Must never: allocate, do I/O or resolve names.
 */
#ifndef UZ_URI_H
#define UZ_URI_H

enum uz_uri_kind {
	UZ_URI_FILE,
	UZ_URI_REDIS,
	UZ_URI_REDIS_UNIX,
	UZ_URI_REDIS_CLUSTER,
};

#define UZ_URI_MAX_HOSTS 16
#define UZ_URI_NS_MAX 40
#define UZ_URI_TIMEOUT_DEFAULT 200

struct uz_uri_host {
	char name[256];
	int port;
};

struct uz_uri {
	enum uz_uri_kind kind;
	char path[1024];		/* file, or the unix socket */
	int nhosts;			/* redis: 1; cluster: 1.. */
	struct uz_uri_host host[UZ_URI_MAX_HOSTS];
	char user[128], pass[256];	/* "" when absent */
	char ns[UZ_URI_NS_MAX + 1];	/* "" when absent */
	int timeout_ms;
	int wait;
};

/*
 * Parse s into *u. 0, or -EINVAL with err (errlen bytes) naming the part
 * that is wrong (the scheme, a host, a port, a query key or value).
 */
int uz_uri_parse(const char *s, struct uz_uri *u, char *err, unsigned errlen);

#endif
