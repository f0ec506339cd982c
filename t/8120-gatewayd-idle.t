#!/bin/sh
# 8120-gatewayd-idle: an idle gateway is few processes (issue 17: at most
# 20; it was 33), their memory (PSS, from /proc/PID/smaps_rollup) is
# printed; and no child outlives a gatewayd killed outright (SIGKILL: no
# trap runs, each child gets SIGTERM from the kernel, PR_SET_PDEATHSIG).
. "${0%/*}/lib.sh"
[ -r /proc/self/smaps_rollup ] || skip_all "no /proc/PID/smaps_rollup here"

unset CLOUD_API_ENDPOINT AZURE_RELAY_NAMESPACE AZURE_RELAY_HYBRID_CONNECTION \
	AZURE_RELAY_EVENTS_HYBRID_CONNECTION
start_gateway || { echo "Bail out! gatewayd did not start"; cat "$T/gatewayd.log"; exit 1; }
idle() { grep -q 'prog=gatewayd msg=running' "$T/gatewayd.log" && test -s "$T/var/run/sweep.state" &&
	grep -q '^state=waiting' "$T/var/run/sweep.state"; }
wait_for 20 "the gateway is up and idle (the first sweep done)" idle

# tree: gatewayd and every process descending from it (children lead
# sessions of their own, so the process group would miss them).
tree() {
	ps -eo pid=,ppid= | awk -v root="$GATEWAYD_PID" '
		{ parent[$1] = $2 }
		END { for (p in parent) { q = p
			while (q in parent && q != root && q > 1) q = parent[q]
			if (q == root) print p } }'
}
tree >"$T/tree"
n=$(wc -l <"$T/tree" | tr -d ' ')
pss=0
for p in $(cat "$T/tree"); do
	k=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
	pss=$((pss + ${k:-0}))
done
diag "idle gateway: $n processes, PSS $((pss / 1024)) MB in all (this build: $GW_BUILD)"
ps -o pid=,comm= -p "$(tr '\n' ',' <"$T/tree" | sed 's/,$//')" >"$T/ps.out" 2>/dev/null
diag "$(tr '\n' ' ' <"$T/ps.out" | tr -s ' ')"
ok "an idle gateway is at most 20 processes ($n)" test "$n" -le 20
ok "... gatewayd itself among them" grep -qx "$GATEWAYD_PID" "$T/tree"

# SIGKILL: nothing of it is left.
children=$(sed -n 's/^pid=\([0-9][0-9]*\)$/\1/p' "$T"/var/run/*.state | tr '\n' ' ')
ok "its children are recorded with their pids" test -n "$children"
kill -KILL "$GATEWAYD_PID"
none_left() {
	for p in $children; do
		[ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && return 1
	done
	return 0
}
wait_for 15 "no child outlives a gatewayd killed with SIGKILL" none_left
not_ok "... and the storage port is closed" port_open "$GW_PORT"

done_testing
