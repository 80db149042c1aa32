#!/usr/bin/env bash
# Brings up build/local (api, worker, PostgreSQL, Redis, Kafka in containers; sources mounted, tsx watch):
# checks that Docker answers, builds and starts everything, waits until every health check passes, makes sure
# the migrations ran, and prints the URLs. Safe to run again: it updates what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

compose_file=build/local/docker-compose.yml
env_file=build/local/.env

fail() {
  echo "setup_local_docker: $*" >&2
  exit 1
}

command -v docker >/dev/null 2>&1 || fail "docker is not installed (https://docs.docker.com/engine/install/)"
docker compose version >/dev/null 2>&1 \
  || fail "the Docker Compose v2 plugin is missing ('docker compose'): install docker-compose-plugin"
if ! docker info >/dev/null 2>&1; then
  fail "the Docker engine does not answer: is the daemon running, and may this user use it (docker group)?"
fi

compose=(docker compose -f "$compose_file" --env-file "$env_file")

wait_args=(--wait)
if docker compose up --help 2>/dev/null | grep -q -- '--wait-timeout'; then
  wait_args+=(--wait-timeout 900)
fi

echo "setup_local_docker: building and starting build/local (the first build compiles the Kafka client: a few minutes)"
if ! "${compose[@]}" up -d --build "${wait_args[@]}"; then
  echo "setup_local_docker: the stack did not become healthy; state and recent logs:" >&2
  "${compose[@]}" ps --all >&2 || true
  "${compose[@]}" logs --tail 40 migrate topics api worker kafka >&2 || true
  exit 1
fi

# The api and worker only start after migrate exited 0, but say so explicitly (and show what it did).
migrate_id=$("${compose[@]}" ps --all --quiet migrate)
[ -n "$migrate_id" ] || fail "no migrate container was created"
migrate_state=$(docker inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$migrate_id")
if [ "$migrate_state" != "exited 0" ]; then
  "${compose[@]}" logs migrate >&2 || true
  fail "migrations did not complete (migrate container: $migrate_state)"
fi
echo "setup_local_docker: migrations: $("${compose[@]}" logs --no-log-prefix migrate 2>/dev/null | grep 'db:migrate' | tail -n 1)"

# Host addresses as compose published them (ports may be overridden in the .env or the shell).
published() {
  "${compose[@]}" port "$1" "$2" 2>/dev/null | head -n 1
}
api=$(published api 3000)
worker=$(published worker 3001)
postgres=$(published postgres 5432)
redis=$(published redis 6379)
kafka=$(published kafka 19094)
postgres_password=$(grep -E '^POSTGRES_PASSWORD=' "$env_file" | cut -d= -f2-)

cat <<EOF

Plinth is running (build/local):
  API              http://${api}
  API docs         http://${api}/docs
  Metrics          http://${api}/metrics
  Readiness        http://${api}/health/ready
  Worker           http://${worker}/metrics, http://${worker}/health/ready (no API routes)
  Kafka bootstrap  ${kafka} (from containers: kafka:9092)
  PostgreSQL       postgres://plinth:${POSTGRES_PASSWORD:-$postgres_password}@${postgres}/plinth
  Redis            redis://${redis}

  Logs:  docker compose -f ${compose_file} logs -f api worker
  Stop:  docker compose -f ${compose_file} down        (add -v to delete the data volumes)
EOF
