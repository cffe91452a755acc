#!/usr/bin/env bash
# The API contract checked from outside: each OpenAPI document validates
# (openapi-spec-validator), and schemathesis fuzzes the three APIs against real
# processes, failing on any 5xx, any status a document does not list, and any answer
# that breaks its schema or content type.
#
#   - the master's user API and the site API: a quickstart federation
#     (meridian-quickstart: a master and two sites on SQLite, mutual TLS between
#     them); the master with the quickstart's admin token, a site over mutual TLS as
#     the master;
#   - on a throwaway PostgreSQL cluster: a second master (`meridian-master serve` with
#     the quickstart's configuration, so the same sites, and a token from
#     `meridian-master token`), and a site in --mode orchestrator (the only mode that
#     serves the worker API): its site API, and its worker API with a credential
#     signed by the site's worker key.
#
# Installs pinned schemathesis and openapi-spec-validator in a venv under the cargo
# target dir on first use. Every process it starts is stopped on exit. MAX_EXAMPLES
# bounds the cases per operation and phase (the default fits in a few minutes on
# two cores); SEED makes a run reproducible (schemathesis prints the seed it used).
# Reports (REPORT, junit by default; e.g. REPORT=junit,ndjson for every request and
# answer) are written to target/schemathesis-report.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES="${MAX_EXAMPLES:-50}"
TARGET="${CARGO_TARGET_DIR:-target}"
SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.9.0
VENV="$TARGET/schemathesis-venv"
PINS="schemathesis==$SCHEMATHESIS_VERSION openapi-spec-validator==$VALIDATOR_VERSION"
if [ "$(cat "$VENV/pins" 2>/dev/null)" != "$PINS" ]; then
  echo "== installing $PINS in $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # shellcheck disable=SC2086 # PINS is a list of requirements
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS
  echo "$PINS" >"$VENV/pins"
fi

cargo build --quiet -p meridian-quickstart -p meridian-child -p meridian-master
BIN="$TARGET/debug"

WORK="$(mktemp -d)"
PGBASE="$(mktemp -d)"
PIDS=()
PG_CTL=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$PG_CTL" ]; then as_pg "$PG_CTL" -D "$PGBASE/data" -m immediate stop >/dev/null 2>&1 || true; fi
  if [ "$status" != 0 ]; then
    for log in "$WORK"/*.log; do
      [ -f "$log" ] || continue
      echo "-- last lines of $(basename "$log")"
      tail -n 40 "$log"
    done
  fi
  rm -rf "$WORK" "$PGBASE"
  exit "$status"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL [curl options...]: until it answers 2xx, at most 60 s
  local url=$1; shift
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "$@" "$url" 2>/dev/null && return 0
    sleep 0.25
  done
  echo "$url did not answer within 60 s"
  return 1
}

echo "== starting a quickstart federation"
PORT="$(free_port)"
"$BIN/meridian-quickstart" --dir "$WORK/qs" --listen "127.0.0.1:$PORT" >"$WORK/quickstart.out" 2>"$WORK/quickstart.log" &
PIDS+=($!)
MASTER="http://127.0.0.1:$PORT"
wait_for "$MASTER/ready"
TOKEN="$(cat "$WORK/qs/token")"
SITE="$(awk '$1 == "site" && $2 == "london" { print $3 }' "$WORK/quickstart.out")"
CERTS="$WORK/qs/certs"
MTLS=(--cacert "$CERTS/ca.pem" --cert "$CERTS/master.pem" --key "$CERTS/master.key")
wait_for "$SITE/ready" "${MTLS[@]}"

echo "== starting a site in --mode orchestrator on a throwaway PostgreSQL"
PGBIN="$(dirname "$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")"
mkdir -p "$PGBASE/data"
if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$PGBASE"; fi
as_pg "$PGBIN/initdb" -D "$PGBASE/data" -U postgres --auth=trust -E UTF8 --no-sync >"$WORK/initdb.log" 2>&1
PG_PORT="$(free_port)"
PG_CTL="$PGBIN/pg_ctl"
as_pg "$PG_CTL" -D "$PGBASE/data" -l "$PGBASE/data/server.log" -w -t 60 start \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PGBASE/data -c fsync=off" >/dev/null
mkdir -p "$WORK/share"
echo "card 4242 4242 4242 4242" >"$WORK/share/a.txt"
cat >"$WORK/orchestrator.yaml" <<EOF
database:
  url: "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  max_connections: 8
node:
  id: fuzz-1
  data_dir: $WORK/orchestrator
site:
  name: fuzz
orchestrator:
  long_poll_timeout_seconds: 1
worker:
  global_cpu_threshold_percent: 100
data_sources:
  - id: share
    kind: filesystem
    root: $WORK/share
EOF
WORKER_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
ORCH_PORT="$(free_port)"
MERIDIAN_WORKER_AUTH_KEY="$WORKER_KEY" "$BIN/meridian-child" --mode orchestrator \
  --config "$WORK/orchestrator.yaml" --listen "127.0.0.1:$ORCH_PORT" 2>"$WORK/orchestrator.log" >/dev/null &
PIDS+=($!)
ORCH="http://127.0.0.1:$ORCH_PORT"
wait_for "$ORCH/ready"

echo "== starting a second master on PostgreSQL, with the quickstart's configuration and sites"
psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'CREATE DATABASE master' >/dev/null
PG_MASTER_PORT="$(free_port)"
MERIDIAN_MASTER_DATABASE__URL="postgres://postgres@127.0.0.1:$PG_PORT/master" "$BIN/meridian-master" serve \
  --config "$WORK/qs/master.json" --listen "127.0.0.1:$PG_MASTER_PORT" 2>"$WORK/master-pg.log" >/dev/null &
PIDS+=($!)
PG_MASTER="http://127.0.0.1:$PG_MASTER_PORT"
wait_for "$PG_MASTER/ready"
PG_TOKEN="$("$BIN/meridian-master" token --config "$WORK/qs/master.json" --role admin --subject fuzz)"
# A worker credential as a remote worker signs it (HS256 over the site's worker
# key, audience the site), valid for the site's default credential lifetime.
WORKER_TOKEN="$(WORKER_KEY="$WORKER_KEY" python3 - <<'EOF'
import base64, hashlib, hmac, json, os, time
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "fuzz-worker", "iss": "meridian-worker",
                       "aud": "meridian-site:fuzz", "iat": now, "exp": now + 900}).encode())
sig = hmac.new(os.environ["WORKER_KEY"].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
print(f"{head}.{body}.{b64(sig)}")
EOF
)"

echo "== openapi-spec-validator: docs/openapi/*.json and the served documents"
curl -fsS "$MASTER/openapi.json" -o "$WORK/master.json"
curl -fsS "${MTLS[@]}" "$SITE/openapi.json" -o "$WORK/site.json"
curl -fsS "$ORCH/worker/openapi.json" -o "$WORK/worker.json"
for doc in docs/openapi/*.json "$WORK"/master.json "$WORK"/site.json "$WORK"/worker.json; do
  "$VENV/bin/openapi-spec-validator" "$doc"
done
# The fuzzer reads the served documents: they must be the reviewed ones (a difference
# means a stale snapshot, or binaries built from other sources into a shared target).
for name in master site worker; do
  python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))'     "docs/openapi/$name.json" "$WORK/$name.json" ||
    { echo "the served $name document differs from docs/openapi/$name.json"; exit 1; }
done

json_field() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }

# A job over both sites through the master at $1 with token $2; prints its id once it
# has finished (its findings give the findings pages something to list), or after
# two minutes whatever its state: a site holds tasks back while the machine's CPU is
# above its back-pressure threshold, and an unfinished job still has a view to fuzz.
seed_job() {
  local master=$1 token=$2 job state="" sources=""
  for _ in $(seq 1 240); do # the master learns the catalog from the sites first
    sources="$(curl -fsS -H "Authorization: Bearer $token" "$master/api/v1/data_sources" | json_field 'len(v)')"
    [ "$sources" = 2 ] && break
    sleep 0.25
  done
  job="$(curl -fsS -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"fuzz seed","data_sources":["ds_london_01","ds_tokyo_01"]}' "$master/api/v1/jobs" |
    json_field 'v["job_id"]')"
  for _ in $(seq 1 480); do
    state="$(curl -fsS -H "Authorization: Bearer $token" "$master/api/v1/jobs/$job" | json_field 'v["state"]')"
    [ "$state" = COMPLETED ] && break
    sleep 0.25
  done
  [ "$state" = COMPLETED ] || echo "note: the seed job at $master is $state after 2 minutes (a busy machine?)" >&2
  echo "$job"
}

echo "== seeding: finished federated jobs, jobs at the orchestrator and leased tasks"
JOB="$(seed_job "$MASTER" "$TOKEN")"
PG_JOB="$(seed_job "$PG_MASTER" "$PG_TOKEN")"
# Eight jobs at the orchestrator, whose discovery tasks the fuzzer's worker holds.
for _ in 1 2 3 4 5 6 7 8; do
  ORCH_JOB="$(curl -fsS -H 'content-type: application/json' -d '{"name":"fuzz seed","data_sources":["share"]}' \
    "$ORCH/start_job" | json_field 'v["job_id"]')"
done
curl -fsS -H "Authorization: Bearer $WORKER_TOKEN" -H 'content-type: application/json' \
  -d '{"worker_id":"fuzz-worker","slots":8,"max_tasks":8,"wait_seconds":5}' "$ORCH/get_task" >"$WORK/leases.json"

# Known values mixed into the generated ones (each bound field takes one with the
# given probability), so that cases get past "no such job" and "unknown data
# source" into the handlers' real work: views, findings, cancels, leases. No crash
# cache: the servers it would replay against are gone when the script ends.
cat >"$WORK/federation.toml" <<EOF
[cache]
enabled = false
[dictionaries.jobs]
values = ["$JOB"]
[dictionaries.data_sources]
values = ["ds_london_01", "ds_tokyo_01"]
[parameters]
"path.job_id" = { dictionary = "jobs", probability = 0.6 }
"body.data_sources[*]" = { dictionary = "data_sources", probability = 0.7 }
EOF
sed -e "s/$JOB/$PG_JOB/" "$WORK/federation.toml" >"$WORK/federation-pg.toml"
sed -e "s/$JOB/$ORCH_JOB/" -e 's/"ds_london_01", "ds_tokyo_01"/"share"/' "$WORK/federation.toml" >"$WORK/orchestrator.toml"
# The worker API: each lease-taking operation gets two leases of its own (the first
# operation to succeed would otherwise end them all), as (task id, token) pairs
# half of the bound cases match.
python3 - "$WORK/leases.json" >"$WORK/worker.toml" <<'EOF'
import json, sys
tasks = json.load(open(sys.argv[1]))["tasks"]
ops = ["/complete_task", "/fail_task", "/report_heartbeat", "/update_task_progress"]
if len(tasks) < 2 * len(ops):
    sys.exit(f"the orchestrator leased {len(tasks)} tasks, not {2 * len(ops)}")
q = json.dumps
print("[cache]\nenabled = false")
print('[dictionaries.workers]\nvalues = ["fuzz-worker"]')
print("[dictionaries.no_wait]\nvalues = [0]")
for i, op in enumerate(ops):
    mine = tasks[2 * i : 2 * i + 2]
    print(f"[dictionaries.tasks{i}]\nvalues = [{', '.join(str(t['task_id']) for t in mine)}]")
    print(f"[dictionaries.leases{i}]\nvalues = [{', '.join(q(t['lease_token']) for t in mine)}]")
common = {
    "body.worker_id": ("workers", 0.8),
    # An empty long poll waits up to a second; most cases need not.
    "body.wait_seconds": ("no_wait", 0.9),
}
def table(bindings):
    for key, (name, p) in bindings.items():
        print(f"{q(key)} = {{ dictionary = {q(name)}, probability = {p} }}")
print("[parameters]")
table(common)
for i, op in enumerate(ops):
    print(f"[[operations]]\ninclude-path = {q(op)}\n[operations.parameters]")
    table(common | {
        "body.task_id": (f"tasks{i}", 0.8),
        "body.lease_token": (f"leases{i}", 0.8),
        "body.completions[*].task_id": (f"tasks{i}", 0.8),
        "body.completions[*].lease_token": (f"leases{i}", 0.8),
    })
EOF

REPORTS="$TARGET/schemathesis-report"
REPORT="${REPORT:-junit}"
rm -rf "$REPORTS"

# Negative data is generated too, so every refusal must be documented as well.
CHECKS="${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance}"
fuzz() {
  local config=$1 doc=$2
  shift 2
  "$VENV/bin/st" --config-file "$config" run "$doc" "$@" --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" ${SEED:+--seed "$SEED"} --workers 2 --request-timeout 30 \
    --no-color --suppress-health-check all --generation-database none \
    --report "$REPORT" --report-dir "$REPORTS"
}

echo "== schemathesis: the master's API ($MASTER, SQLite, the quickstart's admin token)"
fuzz "$WORK/federation.toml" "$WORK/master.json" --url "$MASTER" --header "Authorization: Bearer $TOKEN"

echo "== schemathesis: the master's API on PostgreSQL ($PG_MASTER, a token from meridian-master token)"
fuzz "$WORK/federation-pg.toml" "$WORK/master.json" --url "$PG_MASTER" --header "Authorization: Bearer $PG_TOKEN"

echo "== schemathesis: the site API ($SITE, SQLite, mutual TLS as the master)"
fuzz "$WORK/federation.toml" "$WORK/site.json" --url "$SITE" --tls-verify "$CERTS/ca.pem" \
  --request-cert "$CERTS/master.pem" --request-cert-key "$CERTS/master.key"

echo "== schemathesis: the site API ($ORCH, PostgreSQL)"
fuzz "$WORK/orchestrator.toml" "$WORK/site.json" --url "$ORCH"

echo "== schemathesis: the worker API ($ORCH, a worker credential)"
fuzz "$WORK/worker.toml" "$WORK/worker.json" --url "$ORCH" --header "Authorization: Bearer $WORKER_TOKEN"

echo "== schemathesis: all three APIs conform"
