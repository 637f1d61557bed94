/*
 * test_cpu.c - cpulist parsing and the current CPU.
 *
 * Pins down: uz_cpulist_parse() sets exactly the CPUs a list names (every
 * other bit clear, whatever the bitmap held before) and returns their
 * count; a reversed range, junk, a negative or a CPU >= UZ_MAX_CPUS is -1;
 * uz_cpu_current() is always below uz_cpu_nr_possible() and online; a CPU
 * beyond the possible ones is never online.
 */
#include "helpers.h"

#include "cpu.h"

#define W(c) ((c) / (8 * sizeof(unsigned long)))
#define B(c) (1ul << ((c) % (8 * sizeof(unsigned long))))

static unsigned long bits[UZ_MAX_CPUS / (8 * sizeof(unsigned long))];

static int isset(unsigned c)
{
	return (bits[W(c)] & B(c)) != 0;
}

/* Exactly the CPUs in want[0..n) are set. */
static void expect_only(const unsigned *want, unsigned n)
{
	for (unsigned c = 0; c < UZ_MAX_CPUS; c++) {
		int in = 0;

		for (unsigned i = 0; i < n; i++)
			in |= want[i] == c;
		if (isset(c) != in) {
			fprintf(stderr, "CPU %u: %s\n", c,
				in ? "not set" : "set but not listed");
			exit(T_FAIL);
		}
	}
}

int main(void)
{
	static const unsigned list[] = { 0, 1, 2, 3, 8, 10, 11 };
	char buf[32];

	memset(bits, 0xff, sizeof(bits));	/* garbage before: cleared */
	T_EQ(uz_cpulist_parse("0-3,8,10-11\n", bits), 7);
	expect_only(list, 7);
	T_EQ(uz_cpulist_parse("0", bits), 1);
	expect_only(list, 1);
	snprintf(buf, sizeof(buf), "%d", UZ_MAX_CPUS - 1);
	T_EQ(uz_cpulist_parse(buf, bits), 1);
	T_ASSERT(isset(UZ_MAX_CPUS - 1));
	snprintf(buf, sizeof(buf), "%d", UZ_MAX_CPUS);
	T_EQ(uz_cpulist_parse(buf, bits), -1);
	T_EQ(uz_cpulist_parse("5-2", bits), -1);
	T_EQ(uz_cpulist_parse("1,x", bits), -1);
	T_EQ(uz_cpulist_parse("-1", bits), -1);
	T_EQ(uz_cpulist_parse("99999", bits), -1);

	unsigned n = uz_cpu_nr_possible();
	T_ASSERT(n >= 1 && n <= UZ_MAX_CPUS);
	for (int i = 0; i < 1000; i++)
		T_ASSERT(uz_cpu_current() < n);
	/* The CPU we run on is online (the kernel runs nothing elsewhere). */
	T_ASSERT(uz_cpu_online(uz_cpu_current()));
	T_ASSERT(!uz_cpu_online(n));	/* beyond possible: never online */
	return T_PASS;
}
