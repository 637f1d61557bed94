/* test_cpu.c - cpulist parsing and the current CPU. */
#include "helpers.h"

#include "cpu.h"

#define W(c) ((c) / (8 * sizeof(unsigned long)))
#define B(c) (1ul << ((c) % (8 * sizeof(unsigned long))))

static unsigned long bits[UZ_MAX_CPUS / (8 * sizeof(unsigned long))];

static int isset(unsigned c)
{
	return (bits[W(c)] & B(c)) != 0;
}

int main(void)
{
	T_EQ(uz_cpulist_parse("0-3,8,10-11\n", bits), 7);
	T_ASSERT(isset(0) && isset(3) && isset(8) && isset(11));
	T_ASSERT(!isset(4) && !isset(9) && !isset(12));
	T_EQ(uz_cpulist_parse("0", bits), 1);
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
