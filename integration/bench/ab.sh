#!/usr/bin/env bash
# A/B comparison of the generator against Caddy's own `respond "ok"`, for
# two builds at once: the checkout as it is and a git revision (default
# main). Both Caddy processes run side by side; each round loads, in turn,
# respond and the generator of each build, over plain HTTP and over TLS, so
# that load from other work on a shared machine hits both builds alike.
# Prints each round's ratios (generator ÷ respond) and their medians.
#
#   integration/bench/ab.sh              # main against the checkout, 8 rounds of 3 s
#   ROUNDS=12 DURATION=5s integration/bench/ab.sh v1.2.0
#
# Needs wrk, openssl and git; loopback only, bounded in time.
set -euo pipefail
cd "$(dirname "$0")/../.."

REV=${1:-main}
ROUNDS=${ROUNDS:-8}
DURATION=${DURATION:-3s}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl is not installed" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

echo "building $REV and the checkout..." >&2
mkdir "$work/a"
git archive "$REV" | tar -x -C "$work/a"
(cd "$work/a" && go build -o "$work/caddy-a" ./cmd/caddy)
go build -o "$work/caddy-b" ./cmd/caddy
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -days 1 -keyout "$work/tls.key" -out "$work/tls.crt" >/dev/null 2>&1

# start NAME: runs build NAME with a respond site and a generator site, each
# plain and over TLS; sets the URLs ok_NAME, gen_NAME, okt_NAME, gent_NAME.
start() {
	local ok gen okt gent module
	ok=$(freeport); gen=$(freeport); okt=$(freeport); gent=$(freeport)
	module="consoleme_auth {
		jwt_secret bench-secret
		max_pending 10000000
		generator_rate_limit off
		poller_rate_limit off
	}
	respond \"upstream ok\""
	cat >"$work/Caddyfile-$1" <<CADDY
{
	admin off
	default_bind 127.0.0.1
	auto_https off
	log {
		level ERROR
	}
}
http://127.0.0.1:$ok {
	respond "ok"
}
http://127.0.0.1:$gen {
	$module
}
https://127.0.0.1:$okt {
	tls $work/tls.crt $work/tls.key
	respond "ok"
}
https://127.0.0.1:$gent {
	tls $work/tls.crt $work/tls.key
	$module
}
CADDY
	"$work/caddy-$1" run --config "$work/Caddyfile-$1" --adapter caddyfile >"$work/caddy-$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$ok/" >/dev/null 2>&1 && break; sleep 0.1; done
	curl -fs "http://127.0.0.1:$ok/" >/dev/null || { cat "$work/caddy-$1.log" >&2; exit 1; }
	local path=/noauth/v1/challenge_generator/alice@example.com
	printf -v "ok_$1" %s "http://127.0.0.1:$ok/"
	printf -v "gen_$1" %s "http://127.0.0.1:$gen$path"
	printf -v "okt_$1" %s "https://127.0.0.1:$okt/"
	printf -v "gent_$1" %s "https://127.0.0.1:$gent$path"
}
start a
start b

rps() { wrk -t2 -c32 -d"$DURATION" "$1" | awk '/^Requests\/sec:/ {print $2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
for r in $(seq "$ROUNDS"); do
	line="round $r:"
	for v in a b; do
		o=ok_$v g=gen_$v ot=okt_$v gt=gent_$v
		plain=$(ratio "$(rps "${!g}")" "$(rps "${!o}")")
		tls=$(ratio "$(rps "${!gt}")" "$(rps "${!ot}")")
		echo "$v plain $plain" >>"$work/results"
		echo "$v tls $tls" >>"$work/results"
		line="$line  $v: plain $plain tls $tls"
	done
	echo "$line" >&2
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v v="$1" -v k="$2" '$1 == v && $2 == k {print $3}' "$work/results" | median; }
echo
echo "generator req/s ÷ respond \"ok\" req/s, medians of $ROUNDS rounds (wrk -t2 -c32 -d$DURATION, $(nproc) cores)"
printf "%-24s %8s %8s\n" build plain TLS
printf "%-24s %8s %8s\n" "a: $REV" "$(col a plain)" "$(col a tls)"
printf "%-24s %8s %8s\n" "b: the checkout" "$(col b plain)" "$(col b tls)"
