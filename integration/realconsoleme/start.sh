#!/usr/bin/env bash
# start.sh PORT REDIS_PORT JWT_SECRET WORKDIR
#
# Starts a private redis-server (127.0.0.1:REDIS_PORT, --save '' --appendonly no) unless one this
# launcher started for WORKDIR is already running there, renders WORKDIR/config.yaml from
# config.yaml.tmpl, seeds ConsoleMe's credential-authorization mapping with ConsoleMe's own code
# (seed_role_mapping.py), then starts the REAL ConsoleMe (`python3 -m consoleme`, Debian's
# /usr/bin/python3) on 127.0.0.1:PORT in the background.  PIDs: WORKDIR/consoleme.pid,
# WORKDIR/redis.pid.  Logs: WORKDIR/consoleme.log, WORKDIR/redis.log.  Waits until
# GET /healthcheck answers 200 (exit 1 and log tail otherwise).
#
# Env: REAL_CONSOLEME_HOME (INSTALL_DIR given to setup.sh, default
#                  ${XDG_CACHE_HOME:-$HOME/.cache}/caddy-consoleme-auth/real-consoleme)
#      REAL_CONSOLEME_WRAPPER  words put before the ConsoleMe command only (not Redis, not the seeder),
#                  e.g. 'env LD_PRELOAD=<libfaketime.so.1> FAKETIME=-3s' (redis-cli hangs under libfaketime)
#      NETAUDIT=1  log any non-loopback connect()/getaddrinfo() of the ConsoleMe process to WORKDIR/netaudit.log
#      START_TIMEOUT (s, default 90)
#      REAL_CONSOLEME_CONFIG_TMPL  another template to render instead of config.yaml.tmpl (same placeholders)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${1:?usage: start.sh PORT REDIS_PORT JWT_SECRET WORKDIR}"
REDIS_PORT="${2:?}"; JWT_SECRET="${3:?}"; WORKDIR="${4:?}"
HOME_DIR="${REAL_CONSOLEME_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/caddy-consoleme-auth/real-consoleme}"
CM="$HOME_DIR/consoleme"; SITE="$HOME_DIR/site"
[ -f "$CM/consoleme/__main__.py" ] && [ -d "$SITE/consoleme-0.0.0.dist-info" ] || { echo "start.sh: the real ConsoleMe is not installed in $HOME_DIR: run scripts/test-deps" >&2; exit 1; }
case "$JWT_SECRET" in *[\"\\]*|*$'\n'*) echo "start.sh: JWT_SECRET must not contain quotes, backslashes or newlines" >&2; exit 1;; esac
mkdir -p "$WORKDIR"; WORKDIR="$(cd "$WORKDIR" && pwd)"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_busy() { ss -ltnH "sport = :$1" | grep . >/dev/null; }

if alive "$WORKDIR/consoleme.pid"; then
  echo "start.sh: ConsoleMe already running (pid $(cat "$WORKDIR/consoleme.pid")); stop it first" >&2; exit 1
fi
port_busy "$PORT" && { echo "start.sh: port $PORT is already in use" >&2; exit 1; }

# --- Redis -------------------------------------------------------------------------------
if alive "$WORKDIR/redis.pid" && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "start.sh: reusing redis-server pid $(cat "$WORKDIR/redis.pid") on 127.0.0.1:$REDIS_PORT (flushing it)"
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" flushall >/dev/null
else
  port_busy "$REDIS_PORT" && { echo "start.sh: redis port $REDIS_PORT is in use by something this launcher did not start" >&2; exit 1; }
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$WORKDIR/redis.pid" --logfile "$WORKDIR/redis.log" --dir "$WORKDIR"
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null
  echo "start.sh: redis-server pid $(cat "$WORKDIR/redis.pid") on 127.0.0.1:$REDIS_PORT"
fi

# --- config ------------------------------------------------------------------------------
sed -e "s|__PORT__|$PORT|g" -e "s|__REDIS_PORT__|$REDIS_PORT|g" -e "s|__JWT_SECRET__|$JWT_SECRET|g" \
  "${REAL_CONSOLEME_CONFIG_TMPL:-$HERE/config.yaml.tmpl}" > "$WORKDIR/config.yaml"

# Environment shared by the seeder and the server.  Dummy static AWS credentials + IMDS disabled:
# botocore resolves credentials when ConsoleMe creates boto3 clients at import time; without
# these it would probe the EC2 metadata service (169.254.169.254).  No AWS call is made with them.
export CONFIG_LOCATION="$WORKDIR/config.yaml"
export PYTHONPATH="$SITE:$CM"
export AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=real-consoleme-no-aws AWS_SECRET_ACCESS_KEY=real-consoleme-no-aws
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export PYTHONDONTWRITEBYTECODE=1
if [ "${NETAUDIT:-0}" = 1 ]; then
  export PYTHONPATH="$HERE/netaudit:$PYTHONPATH" REAL_CONSOLEME_NETAUDIT_LOG="$WORKDIR/netaudit.log"
  : > "$WORKDIR/netaudit.log"
fi

# --- seed the role mapping with ConsoleMe's own code -------------------------------------
(cd "$CM" && /usr/bin/python3 "$HERE/seed_role_mapping.py" > "$WORKDIR/seed.log" 2>&1) \
  || { echo "start.sh: seeding failed:" >&2; tail -30 "$WORKDIR/seed.log" >&2; exit 1; }
grep '^seeded\|^  ' "$WORKDIR/seed.log" || true

# --- ConsoleMe ----------------------------------------------------------------------------
cd "$CM"
# shellcheck disable=SC2086 # REAL_CONSOLEME_WRAPPER is a list of words
setsid ${REAL_CONSOLEME_WRAPPER:-} /usr/bin/python3 -m consoleme > "$WORKDIR/consoleme.log" 2>&1 < /dev/null &
echo $! > "$WORKDIR/consoleme.pid"
PID=$(cat "$WORKDIR/consoleme.pid")
deadline=$(( $(date +%s) + ${START_TIMEOUT:-90} ))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthcheck" 2>/dev/null)" = 200 ]; do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "start.sh: ConsoleMe exited during startup:" >&2; tail -40 "$WORKDIR/consoleme.log" >&2; exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "start.sh: ConsoleMe did not answer within ${START_TIMEOUT:-90}s:" >&2; tail -40 "$WORKDIR/consoleme.log" >&2; exit 1
  fi
  sleep 0.3
done
echo "start.sh: real ConsoleMe pid $PID listening on http://127.0.0.1:$PORT (config $WORKDIR/config.yaml)"
