#!/usr/bin/env bash
# Start PostgreSQL, Redis and RabbitMQ when they are down; stop with a message naming
# the part that could not be started.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # name port seconds
  local i
  for ((i = 0; i < $3 * 2; i++)); do
    port_open "$2" && return 0
    sleep 0.5
  done
  return 1
}

fail() {
  echo "ERROR: $1 is not reachable on 127.0.0.1:$2 and could not be started." >&2
  echo "       Start it with: $3" >&2
  exit 1
}

PG_START='pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
REDIS_START='redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
RABBIT_START='rabbitmq-server -detached'

if ! port_open 5432; then
  echo "Starting PostgreSQL…"
  if [ -d /etc/postgresql ]; then eval "$PG_START" >/dev/null 2>&1; fi
  wait_for PostgreSQL 5432 30 || fail PostgreSQL 5432 "$PG_START"
fi
if ! port_open 6379; then
  echo "Starting Redis…"
  command -v redis-server >/dev/null && eval "$REDIS_START" >/dev/null 2>&1
  wait_for Redis 6379 15 || fail Redis 6379 "$REDIS_START"
fi
if ! port_open 5672; then
  echo "Starting RabbitMQ…"
  command -v rabbitmq-server >/dev/null && eval "$RABBIT_START" >/dev/null 2>&1
  wait_for RabbitMQ 5672 90 || fail RabbitMQ 5672 "$RABBIT_START"
fi
echo "PostgreSQL, Redis and RabbitMQ are up."
