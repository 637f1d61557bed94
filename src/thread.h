/*
 * thread.h - the one way the library starts a thread of its own.
 *
 * Owns: the signal mask of every library thread (shrinkers, hotplug
 * events, folio workers, region handlers, the Redis lease). A library
 * thread blocks every signal, so a signal the program sends to the process
 * (kill, SIGCHLD, a timer) is delivered to one of the program's threads,
 * where its handler expects to run, and never interrupts our syscalls.
 *
 * Must never: start a thread with the caller's mask left open.
 */
#ifndef UZ_THREAD_H
#define UZ_THREAD_H

#include <pthread.h>

/* pthread_create(t, NULL, fn, arg) with every signal blocked in the new
 * thread; the caller's mask is unchanged. Returns pthread_create's
 * result (0 or a positive error number). */
int uz_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/* The same with attributes (a stack of the caller's, say). */
int uz_thread_start_attr(pthread_t *t, const pthread_attr_t *attr,
			 void *(*fn)(void *), void *arg);

#endif
