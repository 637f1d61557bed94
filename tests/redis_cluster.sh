#!/bin/sh
# redis_cluster.sh - run a program against a real Redis Cluster of its own:
# 3 masters + 3 replicas on loopback, on free ports, each node in its own
# directory under one mktemp dir, started by redis-server itself and made a
# cluster by `redis-cli --cluster create --cluster-replicas 1`.
#
# Usage: redis_cluster.sh PROGRAM [ARGS...]
# PROGRAM runs once cluster_state is ok on every node and every master has
# its replica, with UZ_RCLUSTER_SEEDS="127.0.0.1:P1,..." (the masters'
# addresses as given to create) and UZ_RCLUSTER_DIR (the node directories
# n0..n5, each with a log). Its exit status is the script's.
#
# Owns: the servers it starts, which it stops by PID at exit (trap), each
# only when /proc says the PID still runs in that node's directory (a
# program may SIGKILL one; a PID is never taken on trust), with a SIGCONT
# after the SIGTERM in case a program left one stopped. Must never:
# signal any process it did not start. Exit 77 without redis-server,
# redis-cli or python3 (for free ports).
set -u
prog=$1
shift
for t in redis-server redis-cli python3; do
	command -v $t >/dev/null 2>&1 || {
		echo "SKIP: $t not installed (scripts/install-deps.sh)" >&2
		exit 77
	}
done
dir=$(mktemp -d /tmp/uzswap-rcluster-XXXXXX) || exit 1
pids=""

stop_all() {
	for p in $pids; do
		n=${p#*:}
		p=${p%%:*}
		[ "$(readlink /proc/$p/cwd 2>/dev/null)" = "$dir/n$n" ] &&
			kill "$p" 2>/dev/null && kill -CONT "$p" 2>/dev/null
	done
	for p in $pids; do
		p=${p%%:*}
		wait "$p" 2>/dev/null
	done
	pids=""
	rm -rf "$dir"
}
trap 'stop_all' EXIT
trap 'exit 1' INT TERM

# 12 ports free now (client + cluster bus for 6 nodes); all held open
# together so that none is handed out twice.
ports=$(python3 -c '
import socket
s = [socket.socket() for _ in range(12)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))') || exit 1
seeds=""
nodes=""
for n in 0 1 2 3 4 5; do
	port=$(echo $ports | cut -d' ' -f$((2 * n + 1)))
	bus=$(echo $ports | cut -d' ' -f$((2 * n + 2)))
	mkdir "$dir/n$n"
	redis-server --port "$port" --cluster-port "$bus" --bind 127.0.0.1 \
		--cluster-enabled yes --cluster-config-file nodes.conf \
		--cluster-node-timeout 1000 --repl-diskless-sync-delay 0 \
		--save '' --appendonly no --dir "$dir/n$n" \
		--logfile "$dir/n$n/log" --daemonize no &
	pids="$pids $!:$n"
	nodes="$nodes 127.0.0.1:$port"
	[ $n -lt 3 ] && seeds="$seeds${seeds:+,}127.0.0.1:$port"
done

# until_ok SECONDS COMMAND...: poll every 50 ms.
until_ok() {
	tries=$(($1 * 20))
	shift
	while ! "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		[ $tries -gt 0 ] || return 1
		sleep 0.05
	done
}
ping_all() {
	for a in $nodes; do
		[ "$(redis-cli -h 127.0.0.1 -p ${a#*:} PING)" = PONG ] || return 1
	done
}
ready_all() {
	for a in $nodes; do
		p=${a#*:}
		redis-cli -p $p CLUSTER INFO | grep -q '^cluster_state:ok' ||
			return 1
		info=$(redis-cli -p $p INFO replication)
		echo "$info" | grep -q '^role:master' &&
			! echo "$info" | grep -q '^slave0:.*state=online' &&
			return 1
	done
	return 0
}
until_ok 10 ping_all || { echo "redis_cluster: servers did not answer" >&2; exit 1; }
redis-cli --cluster create $nodes --cluster-replicas 1 --cluster-yes \
	>"$dir/create.log" 2>&1 || {
	cat "$dir/create.log" >&2
	exit 1
}
until_ok 30 ready_all || { echo "redis_cluster: cluster not ok in 30 s" >&2; exit 1; }
UZ_RCLUSTER_SEEDS=$seeds UZ_RCLUSTER_DIR=$dir "$prog" "$@"
rc=$?
[ $rc -eq 1 ] && tail -n 5 "$dir"/n*/log >&2
exit $rc
