#!/bin/sh
# make install DESTDIR=... lays out what a Debian server needs (programs,
# man pages, the unit, /etc and /var/lib), the unit verifies, make
# uninstall takes the programs away and keeps configuration and data;
# make run needs no npm.
. "${0%/*}/lib.sh"

ROOT=$T/root
# make install builds what is out of date: never in the tree other tests
# are running from.
SAN='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all'
make -q -C "$GW_ROOT" BUILD="$GW_BUILD" OPT='-O1 -g' SAN="$SAN" all 2>/dev/null ||
    skip_all "$GW_BUILD is not up to date (build it first, as make check does)"
ok "make install DESTDIR=... succeeds" sh -c 'make -s -C "$1" BUILD="$2" OPT="-O1 -g" SAN="$5" install DESTDIR="$3" >"$4/install.log" 2>&1' \
    sh "$GW_ROOT" "$GW_BUILD" "$ROOT" "$T" "$SAN"
missing=
for p in gatewayd gatewayctl storescp-hook dcmindex dcmthumb mwlscp mwlsync relaysend relaylisten modality-emu; do
	[ -x "$ROOT/usr/local/bin/$p" ] || missing="$missing $p"
done
is "$missing" "" "every program is installed and executable"
UNIT=$ROOT/usr/local/lib/systemd/system/gatewayd.service
ok "the unit is installed where systemd looks for local units" test -f "$UNIT"
ok "... starting the installed gatewayd" grep -qx 'ExecStart=/usr/local/bin/gatewayd run' "$UNIT"
ok "... as screening-gateway" grep -qx 'User=screening-gateway' "$UNIT"
ok "... reading gateway.env itself, not through systemd" sh -c "! grep -q '^EnvironmentFile=' '$UNIT'"
ok "gateway.env is created from the example" test -f "$ROOT/etc/screening-gateway/gateway.env"
ok "... naming the data directory" grep -qx 'GATEWAY_DATA_DIR=/var/lib/screening-gateway' "$ROOT/etc/screening-gateway/gateway.env"
is "$(stat -c %a "$ROOT/etc/screening-gateway/gateway.env")" 640 "... readable by root and the group only"
is "$(stat -c %a "$ROOT/var/lib/screening-gateway")" 750 "the data directory exists, closed to others"
ok "man pages are installed: gatewayctl(8), gateway.env(5), screening-gateway(7)" \
    sh -c "test -f '$ROOT/usr/local/share/man/man8/gatewayctl.8' && test -f '$ROOT/usr/local/share/man/man5/gateway.env.5' && test -f '$ROOT/usr/local/share/man/man7/screening-gateway.7'"
ok "the DESTDIR install says the user is left to the server" grep -q 'user screening-gateway not created' "$T/install.log"

if command -v systemd-analyze >/dev/null 2>&1; then
	# Verify a copy whose ExecStart points into DESTDIR (the programs are
	# not installed on this machine).
	sed "s|/usr/local/bin/|$ROOT/usr/local/bin/|" "$UNIT" >"$T/gatewayd.service"
	systemd-analyze verify --man=no "$T/gatewayd.service" >"$T/verify.out" 2>&1
	is "$?" 0 "systemd-analyze verify accepts the unit"
	is "$(cat "$T/verify.out")" "" "... without a warning"
else
	skip "systemd-analyze not installed"
	skip "systemd-analyze not installed"
fi

echo "PACS_AET=EDITED" >>"$ROOT/etc/screening-gateway/gateway.env"
ok "a second install succeeds" sh -c 'make -s -C "$1" BUILD="$2" OPT="-O1 -g" SAN="$4" install DESTDIR="$3" >/dev/null 2>&1' \
    sh "$GW_ROOT" "$GW_BUILD" "$ROOT" "$SAN"
ok "... and keeps the edited gateway.env" grep -qx 'PACS_AET=EDITED' "$ROOT/etc/screening-gateway/gateway.env"

ok "make uninstall DESTDIR=... succeeds" sh -c 'make -s -C "$1" BUILD="$2" uninstall DESTDIR="$3" >/dev/null 2>&1' sh "$GW_ROOT" "$GW_BUILD" "$ROOT"
is "$(find "$ROOT/usr" -type f | wc -l | tr -d ' ')" 0 "... removes every installed file"
ok "... keeps the configuration" test -f "$ROOT/etc/screening-gateway/gateway.env"
ok "... and the data directory" test -d "$ROOT/var/lib/screening-gateway"

# make run: Debian packages only.  A fake npm records any call.
mkdir "$T/fakebin"
printf '#!/bin/sh\necho "$@" >>"%s/npm.calls"\n' "$T" >"$T/fakebin/npm"
chmod +x "$T/fakebin/npm"
ok "make run's dependencies are 'tools/deps run'" sh -c "make -n -C '$GW_ROOT' run 2>/dev/null | grep -q 'tools/deps run'"
ok "... never 'tools/deps all'" sh -c "! make -n -C '$GW_ROOT' run 2>/dev/null | grep -q 'tools/deps all'"
PATH=$T/fakebin:$PATH sh "$GW_ROOT/tools/deps" run >/dev/null 2>&1
is "$?" 0 "tools/deps run succeeds here"
ok "... without calling npm" test ! -e "$T/npm.calls"
ok "make check still installs the test peers (tools/deps all)" \
    sh -c "make -n -C '$GW_ROOT' deps 2>/dev/null | grep -q 'tools/deps all'"

done_testing
