/*
 * thread.c - library threads start with every signal blocked (thread.h).
 *
 * Must never: depend on another src/ module (a leaf: everything that
 * starts a thread calls down to it).
 */
#include <signal.h>

#include "thread.h"

int uz_thread_start_attr(pthread_t *t, const pthread_attr_t *attr,
			 void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int err;

	/* The new thread inherits the mask in force at pthread_create. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(t, attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

int uz_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	return uz_thread_start_attr(t, NULL, fn, arg);
}
