/*
 * test_backend_uri - the backing_uri parser (src/uri.c): every form of
 * uri.h taken apart right; every malformed URI -EINVAL with a message that
 * names the wrong part; and through uzswap_open(): the same message from
 * uzswap_open_error(), nothing opened, file: as backing_path,
 * redis-cluster:// to no cluster refused, both options set -EINVAL.
 */
#include "helpers.h"
#include "uri.h"
#include "uzswap.h"

static struct uz_uri u;
static char err[256];

static void good(const char *s)
{
	err[0] = 0;
	if (uz_uri_parse(s, &u, err, sizeof(err)) != 0) {
		fprintf(stderr, "refused good URI %s: %s\n", s, err);
		exit(T_FAIL);
	}
}

/* s must be refused, the message naming part. */
static void bad(const char *s, const char *part)
{
	memset(&u, 0x5a, sizeof(u));
	err[0] = 0;
	T_EQ(uz_uri_parse(s, &u, err, sizeof(err)), -EINVAL);
	if (!strstr(err, part)) {
		fprintf(stderr, "URI %s: message \"%s\" does not name \"%s\"\n",
			s, err, part);
		exit(T_FAIL);
	}
}

static void test_good(void)
{
	good("file:/var/tmp/a.swap");
	T_EQ(u.kind, UZ_URI_FILE);
	T_ASSERT(!strcmp(u.path, "/var/tmp/a.swap"));
	good("file:///x");
	T_ASSERT(!strcmp(u.path, "/x"));

	good("redis://127.0.0.1:6379");
	T_EQ(u.kind, UZ_URI_REDIS);
	T_EQ(u.nhosts, 1);
	T_ASSERT(!strcmp(u.host[0].name, "127.0.0.1"));
	T_EQ(u.host[0].port, 6379);
	T_EQ(u.timeout_ms, UZ_URI_TIMEOUT_DEFAULT);
	T_EQ(u.wait, 0);
	T_ASSERT(!u.ns[0] && !u.user[0] && !u.pass[0]);

	good("redis://app:s%40cr%3At@cache-1.local:7000/?ns=vm-42.a_b&"
	     "timeout_ms=50&wait=1");
	T_ASSERT(!strcmp(u.user, "app") && !strcmp(u.pass, "s@cr:t"));
	T_ASSERT(!strcmp(u.host[0].name, "cache-1.local"));
	T_EQ(u.host[0].port, 7000);
	T_ASSERT(!strcmp(u.ns, "vm-42.a_b"));
	T_EQ(u.timeout_ms, 50);
	T_EQ(u.wait, 1);

	good("redis://:only@[::1]:6380?wait=2");
	T_ASSERT(!u.user[0] && !strcmp(u.pass, "only"));
	T_ASSERT(!strcmp(u.host[0].name, "::1"));
	T_EQ(u.host[0].port, 6380);
	T_EQ(u.wait, 2);

	good("redis+unix:///run/redis/r.sock?ns=x");
	T_EQ(u.kind, UZ_URI_REDIS_UNIX);
	T_ASSERT(!strcmp(u.path, "/run/redis/r.sock") && !strcmp(u.ns, "x"));

	good("redis-cluster://a:7000,b:7001,10.0.0.3:7002/?timeout_ms=1000");
	T_EQ(u.kind, UZ_URI_REDIS_CLUSTER);
	T_EQ(u.nhosts, 3);
	T_ASSERT(!strcmp(u.host[2].name, "10.0.0.3"));
	T_EQ(u.host[1].port, 7001);
	T_EQ(u.timeout_ms, 1000);
}

static void test_bad(void)
{
	bad("", "empty");
	bad("memcached://h:1", "scheme");
	bad("redis:/h:1", "scheme");
	bad("file:relative/path", "absolute");
	bad("redis://", "no host");
	bad("redis://host", "no port");
	bad("redis://host:0", "port \"0\"");
	bad("redis://host:65536", "port \"65536\"");
	bad("redis://host:12x", "port \"12x\"");
	bad("redis://ho$t:1", "character '$'");
	bad("redis://[::1:1", "IPv6");
	bad("redis://a:1,b:2", "more than 1 hosts");
	bad("redis://h:1/db0", "path");
	bad("redis://h:1/?nss=x", "unknown key \"nss\"");
	bad("redis://h:1/?ns=", "ns needs a value");
	bad("redis://h:1/?ns=a{b}", "character '{'");
	bad("redis://h:1/?ns=a:b", "character ':'");
	bad("redis://h:1/?ns=0123456789012345678901234567890123456789x",
	    "ns longer");
	bad("redis://h:1/?ns=a&ns=b", "ns given twice");
	bad("redis://h:1/?timeout_ms=0", "timeout_ms \"0\"");
	bad("redis://h:1/?timeout_ms=60001", "timeout_ms \"60001\"");
	bad("redis://h:1/?wait=17", "wait \"17\"");
	bad("redis://h:1/?wait", "wait needs a value");
	bad("redis://u:@h:1", "password");
	bad("redis://u:p%4@h:1", "password");
	bad("redis+unix://relative.sock", "socket path");
	bad("redis-cluster://a:1,,b:2", "host \"\"");
}

/* Through the public API: the message reaches the caller. */
static void test_open(void)
{
	struct uzswap_options o;
	struct uzswap *uz = (struct uzswap *)&o;

	uzswap_options_init(&o);
	o.nr_pages = 64;
	o.backing_uri = "redis://host:99999";
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	T_ASSERT(uz == (struct uzswap *)&o);	/* untouched */
	T_ASSERT(strstr(uzswap_open_error(), "backing_uri") &&
		 strstr(uzswap_open_error(), "port \"99999\""));

	/* No cluster there: refused (without hiredis: not supported). */
	o.backing_uri = "redis-cluster://127.0.0.1:1,127.0.0.1:2";
	{
		int e = uzswap_open(&o, &uz);

		T_ASSERT(e == -ECONNREFUSED || e == -EOPNOTSUPP);
	}
	T_ASSERT(uz == (struct uzswap *)&o);
	T_ASSERT(strstr(uzswap_open_error(), "redis-cluster"));

	o.backing_path = t_swapfile();
	o.backing_uri = "file:/tmp/x";
	T_EQ(uzswap_open(&o, &uz), -EINVAL);
	T_ASSERT(strstr(uzswap_open_error(), "not both"));

	/* file: is backing_path. */
	static char uri[256];
	static unsigned char page[T_PAGE], back[T_PAGE];

	snprintf(uri, sizeof(uri), "file:%s", t_swapfile());
	o.backing_path = NULL;
	o.backing_uri = uri;
	T_EQ(uzswap_open(&o, &uz), 0);
	T_ASSERT(!uzswap_open_error()[0]);
	for (unsigned i = 0; i < T_PAGE; i++)
		page[i] = (unsigned char)"far memory "[i % 11];
	T_EQ(uzswap_write(uz, 3, page), 0);
	T_EQ(uzswap_writeback(uz, 1), 1);	/* now in the file */
	T_EQ(uzswap_read(uz, 3, back), 0);
	T_ASSERT(!memcmp(page, back, T_PAGE));
	uzswap_close(uz);

	T_EQ(uzswap_gc("file:/tmp/x"), 0);
	T_EQ(uzswap_gc("bogus"), -EINVAL);
	T_ASSERT(strstr(uzswap_open_error(), "scheme"));
}

int main(void)
{
	test_good();
	test_bad();
	test_open();
	printf("test_backend_uri: ok\n");
	return T_PASS;
}
