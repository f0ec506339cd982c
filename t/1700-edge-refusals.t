#!/bin/sh
# 1700-edge-refusals: the storage port refuses at the association (issue
# 19), plain and over TLS, to echoscu and storescu: a calling AE title off
# PACS_ALLOWED_AETS, an address off PACS_ALLOWED_HOSTS, a called AE title
# other than PACS_AET (rejected-permanent), free space below
# PACS_DISK_MIN_FREE, no inode left for the association's directory
# (rejected-transient, local limit exceeded).  Each is logged in words
# with the peer and AE titles; nothing is stored or quarantined; the port
# stays open, and an allowed modality is served at once, before and after.
. "${0%/*}/lib.sh"

"$GW_ROOT/t/relay/mkcerts" "$T/pki" all >/dev/null 2>&1 ||
	skip_all "cannot make test certificates"
P=$T/pki
CT=$PYDICOM_FILES/CT_small.dcm
MR=$PYDICOM_FILES/MR_small.dcm
OTHER=$PYDICOM_FILES/rtplan.dcm
export GATEWAY_TLS_CERT=$P/server.pem GATEWAY_TLS_KEY=$P/server.key GATEWAY_TLS_CA=$P/ca.pem

# assoc KIND PROG CALLING CALLED [FILE]: echoscu or storescu from CALLING
# to CALLED, over KIND (plain or tls); its output in $T/out.
assoc() {
	_kind=$1 _prog=$2 _aet=$3 _aec=$4
	shift 4
	if [ "$_kind" = tls ]; then
		set -- +tls "$P/client.key" "$P/client.pem" +cf "$P/ca.pem" \
		    -aet "$_aet" -aec "$_aec" 127.0.0.1 "$PACS_TLS_PORT" "$@"
	else
		set -- -aet "$_aet" -aec "$_aec" 127.0.0.1 "$GW_PORT" "$@"
	fi
	"$_prog" -to 5 -ta 5 "$@" >"$T/out" 2>&1
}
# rejected RESULT SOURCE REASON: what dcmtk printed for the last assoc.
rejected() {
	grep -q "Result: Rejected $1, Source: $2" "$T/out" &&
	    grep -q "Reason: $3" "$T/out"
}
# quickly KIND: an allowed modality is answered within a second.
quickly() {
	_k=$1
	shift
	if [ "$_k" = tls ]; then
		echoscu -to 1 -ta 1 +tls "$P/client.key" "$P/client.pem" +cf "$P/ca.pem" \
		    -aet MAMMO1 -aec SCREENING_PACS 127.0.0.1 "$PACS_TLS_PORT"
	else
		echoscu -to 1 -ta 1 -aet MAMMO1 -aec SCREENING_PACS 127.0.0.1 "$GW_PORT"
	fi
}
instances() { sql "$PACS_DB" 'SELECT count(*) FROM instances' 2>/dev/null; }
indexed() { [ "$(instances)" = "$1" ]; }
nothing_kept() {
	[ "$(count_files "$GATEWAY_DATA_DIR/quarantine")" = 0 ] &&
	    [ "$(count_files "$GATEWAY_DATA_DIR/incoming")" = 0 ]
}
logged() { grep -q "$1" "$T/gatewayd.log"; }

# --- by calling and called AE title ---
export PACS_ALLOWED_AETS="MAMMO1, MAMMO2"
PACS_TLS_PORT=$(free_port)
export PACS_TLS_PORT
start_gateway
n=0
for kind in plain tls; do
	ok "$kind: MAMMO1 (on PACS_ALLOWED_AETS) gets C-ECHO" assoc $kind echoscu MAMMO1 SCREENING_PACS
	n=$((n + 1))
	[ $n = 1 ] && f=$CT || f=$MR
	ok "$kind: ... and stores" assoc $kind storescu MAMMO1 SCREENING_PACS "$f"
	wait_for 30 "$kind: ... and the image is indexed" indexed $n
	not_ok "$kind: storescu as MAMMO3 is refused" assoc $kind storescu MAMMO3 SCREENING_PACS "$OTHER"
	ok "$kind: ... with A-ASSOCIATE-RJ rejected-permanent, calling AE title not recognised" \
	    rejected Permanent "Service User" "Calling AE Title Not Recognized"
	ok "$kind: ... at once followed by an accepted association on the same port" quickly $kind
	not_ok "$kind: echoscu as MAMMO3 is refused the same way" assoc $kind echoscu MAMMO3 SCREENING_PACS
	ok "$kind: ... (calling AE title not recognised)" \
	    rejected Permanent "Service User" "Calling AE Title Not Recognized"
	not_ok "$kind: MAMMO1 calling another AE title than PACS_AET is refused" \
	    assoc $kind storescu MAMMO1 NOT_THE_PACS "$OTHER"
	ok "$kind: ... with rejected-permanent, called AE title not recognised" \
	    rejected Permanent "Service User" "Called AE Title Not Recognized"
	ok "$kind: ... and MAMMO1 is still served at once" quickly $kind
done
wait_for 10 "the refusal is logged in words, with the peer and both AE titles" \
    logged 'msg="association refused" peer=127.0.0.1:[0-9]* calling_aet=MAMMO3 called_aet=SCREENING_PACS result=rejected-permanent reason="calling AE title not recognised" detail="calling AE title \\"MAMMO3\\" is not in PACS_ALLOWED_AETS"'
ok "... and so is the wrong called AE title" \
    logged 'msg="association refused" peer=127.0.0.1:[0-9]* calling_aet=MAMMO1 called_aet=NOT_THE_PACS result=rejected-permanent reason="called AE title not recognised"'
wait_until 20 spool_empty index
is "$(instances)" 2 "nothing refused was indexed"
ok "... stored, or quarantined" nothing_kept
ok "... nor did it reach storescp (it never ran for them)" \
    sh -c "! grep -q 'calling_aet=MAMMO3.*storescp_pid' '$T/gatewayd.log'"
stop_gateway
unset PACS_ALLOWED_AETS

# --- by address: loopback is not 10.0.0.0/8 ---
rm -rf "$T/var"
export PACS_ALLOWED_HOSTS="10.0.0.0/8, fd00::/8"
GW_PORT=$(free_port) PACS_TLS_PORT=$(free_port)
start_gateway
for kind in plain tls; do
	not_ok "$kind: storescu from an address off PACS_ALLOWED_HOSTS is refused" \
	    assoc $kind storescu MAMMO1 SCREENING_PACS "$CT"
	ok "$kind: ... with rejected-permanent, calling AE title not recognised" \
	    rejected Permanent "Service User" "Calling AE Title Not Recognized"
done
wait_for 10 "... logged saying which address" \
    logged 'msg="association refused" peer=127.0.0.1:[0-9]* .*detail="peer address 127.0.0.1 is not in PACS_ALLOWED_HOSTS"'
is "$(instances)" 0 "... and nothing was indexed"
ok "... stored, or quarantined" nothing_kept
stop_gateway

rm -rf "$T/var"
export PACS_ALLOWED_HOSTS="10.0.0.0/8, 127.0.0.0/8"
GW_PORT=$(free_port) PACS_TLS_PORT=$(free_port)
start_gateway
ok "an address inside PACS_ALLOWED_HOSTS stores" assoc plain storescu MAMMO1 SCREENING_PACS "$CT"
wait_for 30 "... and it is indexed" indexed 1
stop_gateway
unset PACS_ALLOWED_HOSTS

# --- the disk floor: a small file system, refused for now, then served ---
rm -rf "$T/var"
mkdir -p "$T/var"
if mount -t tmpfs -o size=24m tmpfs "$T/var" 2>/dev/null; then
	on_exit "umount -l '$T/var' 2>/dev/null"
	export PACS_DISK_MIN_FREE=12MiB GATEWAY_DISK_CHECK_SECONDS=1
	GW_PORT=$(free_port) PACS_TLS_PORT=$(free_port)
	start_gateway
	avail=$(df -Pk "$T/var" | awk 'NR == 2 { print $4 }')
	dd if=/dev/zero of="$T/var/filler" bs=1k count=$((avail - 6 * 1024)) 2>/dev/null
	for kind in plain tls; do
		not_ok "$kind: below PACS_DISK_MIN_FREE storescu is refused" \
		    assoc $kind storescu MAMMO1 SCREENING_PACS "$CT"
		ok "$kind: ... with rejected-transient, local limit exceeded (modalities retry)" \
		    rejected Transient "Service Provider (Presentation Related)" "Local Limit Exceeded"
	done
	ok "... the port stays open" port_open "$GW_PORT"
	ok "... logged with the free space and the floor" \
	    logged 'msg="association refused" .*result=rejected-transient reason="local limit exceeded" detail="free space below PACS_DISK_MIN_FREE on .*: [0-9]* bytes free, floor 12582912"'
	sh "$GW_ROOT/pipeline/gatewayd" status >"$T/status.out" 2>&1
	ok "gatewayd status says storage refuses new associations" \
	    grep -q '^storage: *refusing new associations: free space below PACS_DISK_MIN_FREE' "$T/status.out"
	ok "nothing refused was kept" nothing_kept
	rm -f "$T/var/filler"
	ok "with space back the next association is served at once, no restart" quickly plain
	ok "... and the image goes in" assoc tls storescu MAMMO1 SCREENING_PACS "$CT"
	wait_for 30 "... and is indexed" indexed 1
	sh "$GW_ROOT/pipeline/gatewayd" status >"$T/status.out" 2>&1
	ok "gatewayd status says storage accepts images again" \
	    grep -q '^storage: *accepting images' "$T/status.out"
	stop_gateway
else
	skip "the disk floor needs a small tmpfs (root)"
fi

# --- no inode left: space is free, but the association's directory in
# incoming/ cannot be made (storescp-front refuses for now, saying why) ---
umount -l "$T/var" 2>/dev/null
rm -rf "$T/var"
mkdir -p "$T/var"
if mount -t tmpfs -o size=24m,nr_inodes=2000 tmpfs "$T/var" 2>/dev/null; then
	on_exit "umount -l '$T/var' 2>/dev/null"
	GW_PORT=$(free_port) PACS_TLS_PORT=$(free_port)
	start_gateway
	ok "a gateway on a small file system stores" assoc plain storescu MAMMO1 SCREENING_PACS "$CT"
	wait_for 30 "... and indexes" indexed 1
	# Take every inode left, in one process.
	/usr/bin/python3 -c '
import os, sys
os.mkdir(sys.argv[1])
try:
    for i in range(100000):
        open(os.path.join(sys.argv[1], str(i)), "w").close()
except OSError:
    pass' "$T/var/inodes"
	for kind in plain tls; do
		not_ok "$kind: with no inode left storescu is refused" \
		    assoc $kind storescu MAMMO1 SCREENING_PACS "$MR"
		ok "$kind: ... with rejected-transient, local limit exceeded" \
		    rejected Transient "Service Provider (Presentation Related)" "Local Limit Exceeded"
	done
	ok "... logged, saying why" \
	    logged 'msg="association refused" .*result=rejected-transient reason="local limit exceeded" detail="cannot make the association.s directory in incoming/: .*No space left on device'
	ok "... the port stays open" port_open "$GW_PORT"
	ok "nothing refused was kept" nothing_kept
	rm -rf "$T/var/inodes"
	ok "with inodes back the next association is served at once" quickly plain
	ok "... and the image goes in" assoc tls storescu MAMMO1 SCREENING_PACS "$MR"
	wait_for 30 "... and is indexed" indexed 2
	stop_gateway
else
	skip "inode exhaustion needs a small tmpfs (root)"
fi
done_testing
