#!/usr/bin/env bash
# Fuzzes the three API documents against a running quickstart federation with
# schemathesis: any 5xx, undocumented status code, or answer that breaks its schema
# fails. Installs schemathesis in a venv under ~/.cache on first use; starts
# meridian-quickstart on a free port in a temp dir and stops it on exit.
# MAX_EXAMPLES bounds the cases per operation (the default fits in about 3 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES="${MAX_EXAMPLES:-15}"
VENV="${HOME}/.cache/meridian/schemathesis-venv"
if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5' openapi-spec-validator
fi

echo "== openapi-spec-validator: docs/openapi/*.json"
for doc in docs/openapi/*.json; do
  "$VENV/bin/openapi-spec-validator" "$doc"
done

cargo build --quiet -p meridian-quickstart
BIN="${CARGO_TARGET_DIR:-target}/debug/meridian-quickstart"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$BIN" --dir "$WORK/qs" --listen "127.0.0.1:$PORT" >"$WORK/stdout" 2>"$WORK/stderr" &
QS=$!
cleanup() {
  kill "$QS" 2>/dev/null || true
  wait "$QS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

MASTER="http://127.0.0.1:$PORT"
for _ in $(seq 1 120); do
  curl -fsS "$MASTER/ready" >/dev/null 2>&1 && [ -s "$WORK/qs/token" ] && break
  sleep 0.5
done
curl -fsS "$MASTER/ready" >/dev/null || { echo "quickstart did not start:"; cat "$WORK/stderr"; exit 1; }
TOKEN="$(cat "$WORK/qs/token")"
SITE="$(awk '$1 == "site" { print $3; exit }' "$WORK/stdout")"
CERTS="$WORK/qs/certs"

# not_a_server_error, status_code_conformance, response_schema_conformance, and the
# content-type and header checks; negative data is generated too, so refusals must be
# documented as well.
CHECKS="not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,response_headers_conformance"
run() {
  "$VENV/bin/st" run "$@" --checks "$CHECKS" --max-examples "$MAX_EXAMPLES" \
    --suppress-health-check all --no-color --request-timeout 30
}

echo "== schemathesis: master ($MASTER)"
run "$MASTER/openapi.json" --url "$MASTER" --header "Authorization: Bearer $TOKEN"

echo "== schemathesis: site ($SITE, mutual TLS as the master)"
SITE_TLS=(--request-cert "$CERTS/master.pem" --request-cert-key "$CERTS/master.key" --tls-verify "$CERTS/ca.pem")
curl -fsS --cacert "$CERTS/ca.pem" --cert "$CERTS/master.pem" --key "$CERTS/master.key" \
  "$SITE/openapi.json" -o "$WORK/site.json"
curl -fsS --cacert "$CERTS/ca.pem" --cert "$CERTS/master.pem" --key "$CERTS/master.key" \
  "$SITE/worker/openapi.json" -o "$WORK/worker.json"
run "$WORK/site.json" --url "$SITE" "${SITE_TLS[@]}"

echo "== schemathesis: worker API ($SITE; a single-process site answers 404 as documented)"
run "$WORK/worker.json" --url "$SITE" "${SITE_TLS[@]}" --header "Authorization: Bearer not-a-credential"
