#!/usr/bin/env bash
# Load comparison of consoleme_auth against plain Caddy, side by side in one
# Caddy process and one run, on loopback only, bounded in time.
#
#   integration/bench/run.sh            # 5 rounds of 5 s per case
#   ROUNDS=3 DURATION=3s integration/bench/run.sh
#
# REDIS_POOL sets the Redis store's pool_size (default: the store's own).
# Needs wrk (apt-get install wrk); redis-server is optional (the Redis row
# is skipped without it), and so is openssl (it makes the certificate of
# the TLS rows: the generator and `respond "ok"` again, over TLS). Prints
# medians over the rounds and the ratios the performance targets are
# stated in. A/B cases alternate within each round so that drift on a
# shared machine hits both sides alike. (ab.sh compares two builds.)
#
# The peer: when the real ConsoleMe is installed (scripts/test-deps; the
# launcher is $REAL_CONSOLEME_DIR, default integration/realconsoleme), the
# same run also loads ConsoleMe's own challenge routes
# (generator, pending poll) with the same wrk settings, and prints the
# module's rate over ConsoleMe's. REAL_CONSOLEME=0 leaves it out.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cm_launcher="${REAL_CONSOLEME_DIR:-$(pwd)/integration/realconsoleme}"
cm_started=""
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -z "$cm_started" ] || bash "$cm_launcher/stop.sh" "$work/consoleme" >/dev/null 2>&1 || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
	echo $((20000 + RANDOM % 20000)); }

echo "building cmd/caddy..." >&2
go build -o "$work/caddy" ./cmd/caddy
"$work/caddy" consoleme-auth sp-keypair --cert "$work/sp.crt" --key "$work/sp.key" >/dev/null

P_UP=$(freeport); P_PLAIN=$(freeport); P_MOD=$(freeport); P_OK=$(freeport); P_REDIS=$(freeport); P_RS=$(freeport)
P_CM=$(freeport); P_CMRS=$(freeport); P_OKTLS=$(freeport); P_MODTLS=$(freeport); P_WL=$(freeport)

# A session cookie as the module mints it after a sign-in (HS256 over the
# sites' secret, with auth_method, auth_time and a session id), for the
# rows that send one on every request.
TOKEN=$(python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
p = b64(json.dumps({"nbf": now - 5, "iat": now - 5, "exp": now + 3600, "email": "alice@example.com",
                    "groups": ["engineering", "consoleme-admins"], "auth_method": "idp", "auth_time": now,
                    "sid": b64(os.urandom(16))}, separators=(",", ":")).encode())
sig = b64(hmac.new(b"bench-secret", (h + "." + p).encode(), hashlib.sha256).digest())
print(h + "." + p + "." + sig)
PY
)

# The real ConsoleMe with its own Redis, its challenge routes enabled (the
# launcher's config), when it is installed.
if [ "${REAL_CONSOLEME:-1}" != 0 ] && [ -f "$cm_launcher/start.sh" ]; then
	if bash "$cm_launcher/start.sh" "$P_CM" "$P_CMRS" bench-secret "$work/consoleme" >"$work/consoleme-start.log" 2>&1; then
		cm_started=1
	else
		echo "the real ConsoleMe did not start (run scripts/test-deps first); leaving it out:" >&2
		tail -5 "$work/consoleme-start.log" >&2
	fi
fi

redis_site=""
pool="key_prefix bench:"
[ -n "${REDIS_POOL:-}" ] && pool="pool_size $REDIS_POOL"
if command -v redis-server >/dev/null; then
	redis-server --port "$P_RS" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
	pids+=($!)
	redis_site="http://127.0.0.1:$P_REDIS {
	consoleme_auth {
		jwt_secret bench-secret
		store redis redis://127.0.0.1:$P_RS/0 {
			$pool
		}
		generator_rate_limit off
		poller_rate_limit off
	}
	reverse_proxy 127.0.0.1:$P_UP
}"
fi

# The TLS rows: the same two answers over TLS (a self-signed certificate
# for 127.0.0.1; wrk does not verify it), when openssl is there.
tls_sites=""
if command -v openssl >/dev/null &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -days 1 -keyout "$work/tls.key" -out "$work/tls.crt" >/dev/null 2>&1; then
	tls_sites="https://127.0.0.1:$P_OKTLS {
	tls $work/tls.crt $work/tls.key
	respond \"ok\"
}
https://127.0.0.1:$P_MODTLS {
	tls $work/tls.crt $work/tls.key
	consoleme_auth {
		jwt_secret bench-secret
		max_pending 10000000
		generator_rate_limit off
		poller_rate_limit off
	}
	reverse_proxy 127.0.0.1:$P_UP
}"
fi

cat >"$work/Caddyfile" <<CADDY
{
	admin off
	default_bind 127.0.0.1
	auto_https off
	log {
		level ERROR
	}
}
# The stand-in upstream: a tiny static answer.
http://127.0.0.1:$P_UP {
	respond "upstream ok"
}
# A: plain reverse_proxy.
http://127.0.0.1:$P_PLAIN {
	reverse_proxy 127.0.0.1:$P_UP
}
# B: the same with consoleme_auth in front (memory store).
http://127.0.0.1:$P_MOD {
	consoleme_auth {
		jwt_secret bench-secret
		max_pending 10000000
		generator_rate_limit off
		poller_rate_limit off
	}
	reverse_proxy 127.0.0.1:$P_UP
}
# D: web_login in front of the same upstream: every page needs a session
# (the OpenID provider is never reached: each request carries one).
http://127.0.0.1:$P_WL {
	consoleme_auth {
		jwt_secret bench-secret
		oidc {
			issuer http://127.0.0.1:1
			client_id bench
			client_secret bench
		}
		web_login
	}
	reverse_proxy 127.0.0.1:$P_UP
}
# C: Caddy answering by itself, the yardstick for the module's own routes.
http://127.0.0.1:$P_OK {
	respond "ok"
}
$redis_site
$tls_sites
CADDY

"$work/caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$P_OK/" >/dev/null 2>&1 && break; sleep 0.1; done
# pending BASE: the token of a fresh challenge at BASE (the module's or
# ConsoleMe's), which polls answer "pending" for the next two minutes.
pending() {
	local tok
	tok=$(curl -fs "$1/noauth/v1/challenge_generator/bench-poll@example.com" | sed 's/.*challenge_poller\///; s/".*//')
	[ -n "$tok" ] || { echo "the generator at $1 did not answer" >&2; exit 1; }
	echo "$tok"
}
pending "http://127.0.0.1:$P_MOD" >/dev/null || { cat "$work/caddy.log" >&2; exit 1; }

# run NAME URL: one wrk run; appends "NAME rps p99_ms" to results. A NAME
# ending in _cookie sends the session cookie with every request.
run() {
	local out rps p99 n2 hdr=()
	case "$1" in *_cookie) hdr=(-H "Cookie: consoleme_auth=$TOKEN") ;; esac
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${hdr[@]}" "$2")
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000} print v}' <<<"$out")
	n2=$(awk '/^ *Non-2xx/ {print $5}' <<<"$out")
	[ -z "$n2" ] || echo "warning: $1: $n2 answers were not 2xx" >&2
	echo "$1 $rps $p99" >>"$work/results"
}

# Challenges expire after two minutes, so each round polls fresh ones.
for r in $(seq "$ROUNDS"); do
	echo "round $r/$ROUNDS" >&2
	cases=(
		"plain_proxy http://127.0.0.1:$P_PLAIN/api/v2/get_roles"
		"module_proxy http://127.0.0.1:$P_MOD/api/v2/get_roles"
		"plain_proxy_cookie http://127.0.0.1:$P_PLAIN/api/v2/get_roles"
		"module_proxy_cookie http://127.0.0.1:$P_MOD/api/v2/get_roles"
		"weblogin_page_cookie http://127.0.0.1:$P_WL/policies"
		"respond_ok http://127.0.0.1:$P_OK/"
		"generator http://127.0.0.1:$P_MOD/noauth/v1/challenge_generator/alice@example.com"
		"poll_pending http://127.0.0.1:$P_MOD/noauth/v1/challenge_poller/$(pending "http://127.0.0.1:$P_MOD")"
	)
	if [ -n "$tls_sites" ]; then
		cases+=(
			"respond_ok_tls https://127.0.0.1:$P_OKTLS/"
			"generator_tls https://127.0.0.1:$P_MODTLS/noauth/v1/challenge_generator/alice@example.com"
		)
	fi
	if [ -n "$redis_site" ]; then
		cases+=("generator_redis http://127.0.0.1:$P_REDIS/noauth/v1/challenge_generator/alice@example.com")
	fi
	if [ -n "$cm_started" ]; then
		cases+=(
			"cm_generator http://127.0.0.1:$P_CM/noauth/v1/challenge_generator/alice@example.com"
			"cm_poll_pending http://127.0.0.1:$P_CM/noauth/v1/challenge_poller/$(pending "http://127.0.0.1:$P_CM")"
		)
	fi
	for c in "${cases[@]}"; do run $c; done
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v n="$1" -v k="$2" '$1 == n {print $k}' "$work/results" | median; }

echo
echo "machine: $(nproc) cores, $(uname -m), wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS rounds (medians)"
printf "%-22s %12s %10s\n" case "req/s" "p99 ms"
for c in "${cases[@]}"; do
	n=${c%% *}
	printf "%-22s %12.0f %10.2f\n" "$n" "$(col "$n" 2)" "$(col "$n" 3)"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
echo
echo "target                                     ratio   goal"
echo "pass-through req/s module/plain            $(ratio "$(col module_proxy 2)" "$(col plain_proxy 2)")  >= 0.98"
echo "pass-through p99 module/plain              $(ratio "$(col module_proxy 3)" "$(col plain_proxy 3)")  <= 1.05"
echo "pass-through with a cookie module/plain    $(ratio "$(col module_proxy_cookie 2)" "$(col plain_proxy_cookie 2)")  >= 0.98"
echo "web_login page with a session / plain      $(ratio "$(col weblogin_page_cookie 2)" "$(col plain_proxy_cookie 2)")  >= 0.95"
echo "generator req/s / respond ok               $(ratio "$(col generator 2)" "$(col respond_ok 2)")  >= 0.90"
echo "pending poll req/s / respond ok            $(ratio "$(col poll_pending 2)" "$(col respond_ok 2)")  >= 0.85"
if [ -n "$tls_sites" ]; then
	echo "generator req/s / respond ok, over TLS     $(ratio "$(col generator_tls 2)" "$(col respond_ok_tls 2)")  >= 0.90"
fi
if [ -n "$redis_site" ]; then
	echo "generator req/s redis/memory               $(ratio "$(col generator_redis 2)" "$(col generator 2)")  >= 0.5"
fi
if [ -n "$cm_started" ]; then
	echo
	echo "the peer: the module's challenge routes over ConsoleMe's own (same load, same run)"
	echo "generator req/s module/ConsoleMe           $(ratio "$(col generator 2)" "$(col cm_generator 2)")"
	echo "pending poll req/s module/ConsoleMe        $(ratio "$(col poll_pending 2)" "$(col cm_poll_pending 2)")"
fi
