/*
 * uzswap_test.h - test-only hooks. NOT part of uzswap's API or ABI.
 *
 * Not installed, and not exported by libuzswap.so (src/uzswap.map lists
 * the ABI; test_install checks it): these functions are reachable only from
 * programs linked with the static library built in this tree - the tests
 * and the uzswap command's `torture`. They may change or go away in any
 * release. (Fault injection, the other test hook, is internal: src/fault.h,
 * uz_fault_arm().)
 */
#ifndef UZSWAP_TEST_H
#define UZSWAP_TEST_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Simulate a CPU hotplug event, through exactly the path the kernel's
 * CPU uevents take: online runs every pool's prepare step for cpu,
 * offline frees nothing (I2). Process-wide. Returns 0 (also when cpu
 * already has that state) or -EINVAL for a CPU beyond the possible range.
 */
int uzswap_hotplug_inject(unsigned cpu, bool online);

#ifdef __cplusplus
}
#endif

#endif /* UZSWAP_TEST_H */
