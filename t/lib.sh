# t/lib.sh: the tiny TAP library every shell test sources.
#
#   . "${0%/*}/lib.sh"
#   plan 3                      (or done_testing at the end)
#   ok "title" test -f x        run a command; pass when it exits 0
#   is "$got" "$want" "title"   compare two strings
#   wait_for 10 "title" cmd...  run cmd until it succeeds or 10 s pass
#   free_port                   print a TCP port nobody listens on
#   bg NAME cmd...              start a process, remembered for cleanup
#   on_exit 'cmd'               run cmd at exit (e.g. umount)
#   $T                          this test's own temporary directory
#   have_corpus                 the shared corpus (../shared/corpus) is there
#                               (tests that need it skip those checks without)
#
# Every test gets a fresh $T (removed at exit unless TEST_KEEP=1) and every
# process started with bg is killed at exit, even when the test fails.

set -u
GW_ROOT=${GW_ROOT:-$(cd "${0%/*}/.." && pwd)}
GW_BUILD=${GW_BUILD:-$GW_ROOT/build/check}
GW_BIN=$GW_BUILD/bin
SHARED=${SHARED:-$GW_ROOT/../shared}
CORPUS=$SHARED/corpus/files
PYDICOM_FILES=/usr/lib/python3/dist-packages/pydicom/data/test_files
PATH=$GW_BIN:$PATH
export GW_ROOT GW_BUILD GW_BIN PATH
export TCP_NODELAY=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

T=$(mktemp -d "${TMPDIR:-/tmp}/gwtest.XXXXXX")
# free_port: a TCP port on 127.0.0.1 that nothing listens on now, and
# that no other test running beside this one (prove -j) was given.  A
# port the kernel picks for bind(0) is not enough: it comes from the
# ephemeral range, where another test's bind(0) or an outgoing
# connection may take it before our server listens (and a gatewayd that
# finds one of its ports taken refuses to start).  So ports come from
# below that range, each reserved by a directory made with mkdir (which
# is atomic) in $GW_PORTS, naming its owner.  A test's reservations go
# at its exit; those of a test that was killed, once its owner is gone.
GW_PORTS=${GW_PORTS:-${TMPDIR:-/tmp}/gwtest-ports}
free_port() {
	/usr/bin/python3 - "$GW_PORTS" "$$" "$T/.ports" <<'EOF'
import os, random, socket, sys
base, owner, mine = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(base, exist_ok=True)
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        top = min(int(f.read().split()[0]), 32768)
except (OSError, ValueError, IndexError):
    top = 32768             # Linux's default low end
for _ in range(2000):
    port = random.randrange(10000, top)
    res = os.path.join(base, str(port))
    try:
        os.mkdir(res)
    except FileExistsError:
        try:
            with open(os.path.join(res, "owner")) as f:
                os.kill(int(f.read()), 0)
        except ProcessLookupError:
            try:                # its owner is gone: free it for later
                gone = "%s.gone.%d" % (res, os.getpid())
                os.rename(res, gone)
                os.unlink(os.path.join(gone, "owner"))
                os.rmdir(gone)
            except OSError:
                pass
        except (OSError, ValueError):
            pass                # being made by its owner just now
        continue
    with open(os.path.join(res, "owner"), "w") as f:
        f.write(owner)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        taken = False
    except OSError:
        taken = True            # in use by something else on this machine
    s.close()
    if taken:
        os.unlink(os.path.join(res, "owner"))
        os.rmdir(res)
        continue
    with open(mine, "a") as f:
        f.write("%d\n" % port)
    print(port)
    sys.exit(0)
sys.exit("free_port: no free port left in " + base)
EOF
}

# Our servers listen on loopback only, on ports of their own, so that
# tests run in parallel (prove -j) never meet.
WORKLIST_BIND=127.0.0.1
WORKLIST_PORT=$(free_port)
QR_BIND=127.0.0.1
QR_PORT=$(free_port)
PACS_BIND=127.0.0.1
export WORKLIST_BIND WORKLIST_PORT QR_BIND QR_PORT PACS_BIND
# No test reaches a real cloud identity: nothing from the caller's
# environment chooses a credential, and the managed identity's metadata
# service is a closed loopback port unless a test starts t/relay/entra
# (on a cloud VM 169.254.169.254 answers).
unset ENVIRONMENT IDENTITY_ENDPOINT AZURE_TENANT_ID AZURE_CLIENT_ID \
	AZURE_CLIENT_SECRET AZURE_CLIENT_CERTIFICATE_PATH CLOUD_API_RESOURCE
export AZURE_IMDS_ENDPOINT=http://127.0.0.1:1
_tap_n=0
_tap_failed=0
_tap_planned=0
_bg_pids=""
_on_exit=""

# have_corpus: the shared corpus of real files is beside the checkout.
# Without it make check still passes: what needs it is skipped, saying so.
have_corpus() {
	[ -d "$CORPUS" ]
}

# on_exit CMD: run CMD (a string for sh) at exit, before $T is removed.
on_exit() {
	_on_exit="$_on_exit
$1"
}

_cleanup() {
	if [ "$_tap_failed" != 0 ] && [ -s "$T/gatewayd.log" ]; then
		echo "# ${0##*/}: the last lines gatewayd logged:" >&2
		tail -n 15 "$T/gatewayd.log" | sed 's/^/#   /' >&2
	fi
	for _p in $_bg_pids; do
		kill -TERM "$_p" 2>/dev/null
	done
	for _p in $_bg_pids; do
		_i=0
		while kill -0 "$_p" 2>/dev/null && [ $_i -lt 50 ]; do
			sleep 0.1; _i=$((_i + 1))
		done
		kill -KILL "$_p" 2>/dev/null
	done
	[ -n "$_on_exit" ] && eval "$_on_exit"
	[ -f "$T/.ports" ] && while read -r _p; do
		rm -f "$GW_PORTS/$_p/owner"; rmdir "$GW_PORTS/$_p" 2>/dev/null
	done <"$T/.ports"
	if [ "${TEST_KEEP:-0}" = 1 ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
}
trap '_cleanup' EXIT
trap 'exit 130' INT TERM

plan() {
	echo "1..$1"
	_tap_planned=1
}

done_testing() {
	[ $_tap_planned = 1 ] || echo "1..$_tap_n"
	[ $_tap_failed = 0 ]
}

skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

diag() {
	printf '# %s\n' "$*" | sed '2,$s/^/# /'
}

pass() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - $1"
}

# A failure is told on stderr as well: prove shows stderr without -v, so
# a CI log names what failed (and, at exit, what gatewayd said).
fail() {
	_tap_n=$((_tap_n + 1))
	_tap_failed=$((_tap_failed + 1))
	echo "not ok $_tap_n - $1"
	echo "# ${0##*/}: not ok $_tap_n - $1" >&2
}

skip() {
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - # SKIP $1"
}

# ok TITLE CMD...: pass when CMD exits 0; its output is shown on failure.
ok() {
	_title=$1; shift
	if _out=$("$@" 2>&1); then
		pass "$_title"
	else
		fail "$_title"
		diag "command: $*"
		[ -n "$_out" ] && diag "$_out"
	fi
	return 0
}

# not_ok TITLE CMD...: pass when CMD exits non-zero.
not_ok() {
	_title=$1; shift
	if _out=$("$@" 2>&1); then
		fail "$_title"
		diag "command unexpectedly succeeded: $*"
	else
		pass "$_title"
	fi
	return 0
}

is() {
	if [ "$1" = "$2" ]; then
		pass "$3"
	else
		fail "$3"
		diag "   got: '$1'"
		diag "  want: '$2'"
	fi
	return 0
}

# wait_for SECONDS TITLE CMD...: poll CMD every 0.1 s until it succeeds.
# Prints nothing and returns 1 on timeout (use it inside ok or if).
wait_until() {
	_secs=$1; shift
	_end=$(( $(date +%s) + _secs ))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(date +%s)" -ge "$_end" ] && return 1
		sleep 0.1
	done
}

wait_for() {
	_secs=$1; _title=$2; shift 2
	if wait_until "$_secs" "$@"; then
		pass "$_title"
	else
		fail "$_title (not within ${_secs}s)"
		diag "condition: $*"
	fi
	return 0
}

# bg NAME CMD...: start CMD in the background, stderr to $T/NAME.log; the
# pid is in $BG_PID and in $T/NAME.pid, and it is killed at exit.
bg() {
	_name=$1; shift
	"$@" >"$T/$_name.out" 2>"$T/$_name.log" &
	BG_PID=$!
	echo "$BG_PID" >"$T/$_name.pid"
	_bg_pids="$_bg_pids $BG_PID"
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	/usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' "$1" 2>/dev/null
}

# sql DB QUERY: one sqlite3 query, list mode, no header.
sql() {
	sqlite3 -batch -noheader "$1" "$2"
}

# count_files DIR: regular files in DIR and below, not dot files (an
# association directory's .sender in incoming/).
count_files() {
	find "$1" -type f ! -name ".*" 2>/dev/null | wc -l | tr -d ' '
}

# start_gateway: run gatewayd on a free port with its data in $T/var.
# Sets GW_PORT, GATEWAY_DATA_DIR, PACS_DB; waits until storescp-front
# listens (a C-ECHO might be refused: PACS_ALLOWED_AETS, the disk floor).
start_gateway() {
	GW_PORT=${GW_PORT:-$(free_port)}
	GATEWAY_DATA_DIR=$T/var
	PACS_PORT=$GW_PORT
	PACS_DB=$GATEWAY_DATA_DIR/pacs.db
	GATEWAY_ENV_FILE=/dev/null
	export GATEWAY_DATA_DIR PACS_PORT GATEWAY_ENV_FILE
	bg gatewayd sh "$GW_ROOT/pipeline/gatewayd" run
	GATEWAYD_PID=$BG_PID
	wait_until 30 grep -q 'prog=storescp-front msg=listening' "$T/gatewayd.log"
}

stop_gateway() {
	kill -TERM "$GATEWAYD_PID" 2>/dev/null
	wait_until 30 sh -c "! kill -0 $GATEWAYD_PID 2>/dev/null"
}

# spool_empty STAGE: nothing waits or is claimed in var/spool/STAGE.
spool_empty() {
	[ "$(count_files "$GATEWAY_DATA_DIR/spool/$1/new")" = 0 ] &&
	[ "$(count_files "$GATEWAY_DATA_DIR/spool/$1/cur")" = 0 ]
}

# store_verified DIR: every object's SHA-256 equals its name.
store_verified() {
	find "$1" -name '*.dcm' -type f | while read -r f; do
		h=$(sha256sum "$f" | cut -d' ' -f1)
		[ "${f##*/}" = "$h.dcm" ] || { echo "bad object $f"; exit 1; }
	done
}

# dcm_value FILE TAG: a value as dcmdump prints it (raw text, no brackets).
dcm_value() {
	dcmdump -q +P "$2" "$1" 2>/dev/null | head -n 1 |
	sed -n 's/^([0-9a-fA-F,]*) [A-Z][A-Z] \[\(.*\)\] *#.*/\1/p; s/^([0-9a-fA-F,]*) [A-Z][A-Z] \([^[(=].*[^ ]\) *#.*/\1/p'
}
