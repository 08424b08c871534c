#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) for ExtractGuard: up | down | status.
# Jars come from Maven Central via infra/kafka/pom.xml; data lives under $EXTRACTGUARD_HOME/kafka.
# `up` is idempotent: a broker that already answers is left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
home="${EXTRACTGUARD_HOME:-$root/.extractguard}"
kdir="$home/kafka"
port="${EXTRACTGUARD_KAFKA_PORT:-9092}"
cport="${EXTRACTGUARD_KAFKA_CONTROLLER_PORT:-9093}"
pidfile="$kdir/broker.pid"
log="$kdir/broker.log"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

need_java() {
  if ! command -v java >/dev/null 2>&1; then
    echo "kafka.sh: Java 17+ is required to run the local Kafka broker (apt-get install openjdk-17-jre-headless)," >&2
    echo "          or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster." >&2
    exit 2
  fi
}

fetch_jars() {
  if [[ -f "$kdir/libs/.complete" ]]; then return; fi
  if ! command -v mvn >/dev/null 2>&1; then
    echo "kafka.sh: Maven is required once to fetch the broker jars (apt-get install maven)." >&2
    exit 2
  fi
  echo "kafka.sh: fetching Kafka jars from Maven Central into $kdir/libs" >&2
  rm -rf "$kdir/libs"
  mvn -q -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$kdir/libs" >&2
  touch "$kdir/libs/.complete"
}

up() {
  need_java
  mkdir -p "$kdir"
  if running && answers; then echo "kafka.sh: broker already up on 127.0.0.1:$port"; return; fi
  if answers; then echo "kafka.sh: something else already listens on 127.0.0.1:$port" >&2; exit 2; fi
  fetch_jars
  sed -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$cport#g" -e "s#@DATA_DIR@#$kdir/data#g" \
    "$here/server.properties.in" > "$kdir/server.properties"
  local cp="$kdir/libs/*"
  if [[ ! -f "$kdir/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    java -Dlog4j2.configurationFile="$here/log4j2.properties" -cp "$cp" kafka.tools.StorageTool format \
      --standalone -t "$cluster_id" -c "$kdir/server.properties" >/dev/null
  fi
  nohup java -Xms256m -Xmx${EXTRACTGUARD_KAFKA_HEAP:-1g} -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$kdir/server.properties" >"$log" 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 1 120); do
    if answers && grep -q "Kafka Server started" "$log"; then
      echo "kafka.sh: broker up on 127.0.0.1:$port (pid $(cat "$pidfile"), log $log)"; return
    fi
    if ! running; then echo "kafka.sh: broker exited during start; last lines of $log:" >&2; tail -n 20 "$log" >&2; exit 1; fi
    sleep 0.5
  done
  echo "kafka.sh: broker did not answer within 60 s; see $log" >&2; exit 1
}

down() {
  if ! running; then echo "kafka.sh: broker not running"; rm -f "$pidfile"; return; fi
  local pid; pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "kafka.sh: broker stopped"; return; }; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true; rm -f "$pidfile"; echo "kafka.sh: broker killed after 30 s"
}

status() { if running && answers; then echo "up (pid $(cat "$pidfile"), 127.0.0.1:$port)"; else echo "down"; exit 1; fi; }

case "${1:-}" in
  up) up ;; down) down ;; status) status ;;
  reset) down; rm -rf "$kdir/data"; echo "kafka.sh: data removed" ;;
  *) echo "usage: $0 up|down|status|reset" >&2; exit 2 ;;
esac
