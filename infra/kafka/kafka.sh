#!/usr/bin/env bash
# Local Apache Kafka (KRaft) for ExtractGuard: up | down | status | reset | bootstrap | kill | controller.
# Jars come from Maven Central via infra/kafka/pom.xml; data lives under $EXTRACTGUARD_HOME/kafka.
# `up` is idempotent: a broker that already answers is left alone.
#
# One node by default. EXTRACTGUARD_KAFKA_NODES=3 starts a replicated cluster instead: node i
# (1..N) listens on EXTRACTGUARD_KAFKA_PORT + 2(i-1) and its controller on
# EXTRACTGUARD_KAFKA_CONTROLLER_PORT + 2(i-1), and lives in $EXTRACTGUARD_HOME/kafka/node-i; every
# node is broker and controller, topics default to 3 replicas with min.insync.replicas 2.
# `bootstrap` prints the servers to put in KAFKA_BOOTSTRAP_SERVERS. For fault injection:
# `up I` / `down I` start or stop one node, `kill I` SIGKILLs it, `controller` prints the node id
# of the active controller.
#
# A listener of another kind (TLS, SASL): EXTRACTGUARD_KAFKA_EXTRA_PROPERTIES names a file of
# properties appended to each node's (they win over the template's; @PORT@ and @CONTROLLER_PORT@
# are filled in), and EXTRACTGUARD_KAFKA_FORMAT_ARGS adds arguments to the storage format that
# runs once (`--add-scram ...`: SCRAM users that exist from the start).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
home="${EXTRACTGUARD_HOME:-$root/.extractguard}"
kdir="$home/kafka"
port="${EXTRACTGUARD_KAFKA_PORT:-9092}"
cport="${EXTRACTGUARD_KAFKA_CONTROLLER_PORT:-9093}"
nodes="${EXTRACTGUARD_KAFKA_NODES:-1}"
[[ "$nodes" =~ ^[1-9]$ ]] || { echo "kafka.sh: EXTRACTGUARD_KAFKA_NODES must be 1..9, not '$nodes'" >&2; exit 2; }
# The one node's layout is that of the single broker; `select_node I` switches to node I of a cluster.
pidfile="$kdir/broker.pid"
log="$kdir/broker.log"
ndir="$kdir"
node_port="$port"
node_cport="$cport"

select_node() {
  local i="$1"
  if [[ "$nodes" == 1 ]]; then return; fi
  ndir="$kdir/node-$i"; pidfile="$ndir/broker.pid"; log="$ndir/broker.log"
  node_port=$((port + 2 * (i - 1))); node_cport=$((cport + 2 * (i - 1)))
}

node_name() { if [[ "$nodes" == 1 ]]; then echo broker; else echo "node $1"; fi; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$node_port") 2>/dev/null; }
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

# Render node $1's configuration and format its storage (once); the cluster id is shared.
prepare_node() {
  local i="$1"
  mkdir -p "$ndir"
  if [[ "$nodes" == 1 ]]; then
    sed -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$cport#g" -e "s#@DATA_DIR@#$kdir/data#g" \
      "$here/server.properties.in" > "$kdir/server.properties"
  else
    local voters="" v replication=$((nodes < 3 ? nodes : 3))
    for v in $(seq 1 "$nodes"); do voters="$voters${voters:+,}$v@127.0.0.1:$((cport + 2 * (v - 1)))"; done
    sed -e "s#@NODE_ID@#$i#g" -e "s#@VOTERS@#$voters#g" -e "s#@PORT@#$node_port#g" \
      -e "s#@CONTROLLER_PORT@#$node_cport#g" -e "s#@DATA_DIR@#$ndir/data#g" \
      -e "s#@REPLICATION@#$replication#g" -e "s#@MIN_ISR@#$((replication > 2 ? 2 : 1))#g" \
      "$here/server.cluster.properties.in" > "$ndir/server.properties"
  fi
  if [[ -n "${EXTRACTGUARD_KAFKA_EXTRA_PROPERTIES:-}" ]]; then  # later keys win: they override the template's
    sed -e "s#@PORT@#$node_port#g" -e "s#@CONTROLLER_PORT@#$node_cport#g" \
      "$EXTRACTGUARD_KAFKA_EXTRA_PROPERTIES" >> "$ndir/server.properties"
  fi
  local cp="$kdir/libs/*"
  if [[ ! -f "$ndir/data/meta.properties" ]]; then
    local cluster_id mode=(--standalone)
    if [[ "$nodes" == 1 ]]; then
      cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    else
      mode=()  # a static quorum (controller.quorum.voters): nothing to bootstrap
      [[ -f "$kdir/cluster.id" ]] || java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 > "$kdir/cluster.id"
      cluster_id="$(cat "$kdir/cluster.id")"
    fi
    local extra=()  # e.g. --add-scram 'SCRAM-SHA-512=[name=eg,password=...]': users that exist from the start
    [[ -z "${EXTRACTGUARD_KAFKA_FORMAT_ARGS:-}" ]] || read -r -a extra <<< "$EXTRACTGUARD_KAFKA_FORMAT_ARGS"
    java -Dlog4j2.configurationFile="$here/log4j2.properties" -cp "$cp" kafka.tools.StorageTool format \
      "${mode[@]}" "${extra[@]}" -t "$cluster_id" -c "$ndir/server.properties" >/dev/null
  fi
}

launch_node() {
  local heap="-Xms256m -Xmx${EXTRACTGUARD_KAFKA_HEAP:-1g}"
  [[ "$nodes" == 1 ]] || heap="-Xms128m -Xmx${EXTRACTGUARD_KAFKA_HEAP:-384m}"
  # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of JVM flags
  nohup java ${KAFKA_HEAP_OPTS:-$heap} -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$kdir/libs/*" kafka.Kafka "$ndir/server.properties" >"$log" 2>&1 &
  echo $! > "$pidfile"
}

# Wait for the selected node to answer; the nodes of a cluster start together, so a quorum forms.
await_node() {
  local what; what="$(node_name "$1")"
  for _ in $(seq 1 240); do
    if answers && grep -q "Kafka Server started" "$log"; then
      echo "kafka.sh: $what up on 127.0.0.1:$node_port (pid $(cat "$pidfile"), log $log)"; return
    fi
    if ! running; then echo "kafka.sh: $what exited during start; last lines of $log:" >&2; tail -n 20 "$log" >&2; exit 1; fi
    sleep 0.5
  done
  echo "kafka.sh: $what did not answer within 120 s; see $log" >&2; exit 1
}

# The nodes given (all by default) that are not running are started; running ones are left alone.
up() {
  need_java
  mkdir -p "$kdir"
  fetch_jars
  local i started=() chosen=("$@")
  [[ ${#chosen[@]} -gt 0 ]] || mapfile -t chosen < <(seq 1 "$nodes")
  for i in "${chosen[@]}"; do
    select_node "$i"
    if running && answers; then echo "kafka.sh: $(node_name "$i") already up on 127.0.0.1:$node_port"; continue; fi
    if answers; then echo "kafka.sh: something else already listens on 127.0.0.1:$node_port" >&2; exit 2; fi
    prepare_node "$i"
    launch_node
    started+=("$i")
  done
  for i in "${started[@]}"; do select_node "$i"; await_node "$i"; done
}

# SIGTERM the selected node (a controlled shutdown: its leaderships move first); 0 if it was running.
signal_node() {
  if ! running; then echo "kafka.sh: $(node_name "$1") not running"; rm -f "$pidfile"; return 1; fi
  kill "$(cat "$pidfile")"
}

await_node_gone() {
  local what pid; what="$(node_name "$1")"; pid="$(cat "$pidfile")"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "kafka.sh: $what stopped"; return; }; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true; rm -f "$pidfile"; echo "kafka.sh: $what killed after 30 s"
}

# The nodes given (all by default) are stopped, all signalled at once: stopped one by one, the last
# nodes of a cluster would wait out their shutdown for a controller quorum that is already gone.
down() {
  local i chosen=("$@") signalled=()
  [[ ${#chosen[@]} -gt 0 ]] || mapfile -t chosen < <(seq 1 "$nodes")
  for i in "${chosen[@]}"; do select_node "$i"; if signal_node "$i"; then signalled+=("$i"); fi; done
  for i in "${signalled[@]}"; do select_node "$i"; await_node_gone "$i"; done
}

# SIGKILL node $1 and wait until it is gone: a crash, no controlled shutdown.
kill_node() {
  select_node "${1:?kafka.sh kill needs a node number}"
  running || { echo "kafka.sh: node $1 not running" >&2; exit 1; }
  local pid; pid="$(cat "$pidfile")"
  kill -9 "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "kafka.sh: node $1 killed"; return; }; sleep 0.1; done
  echo "kafka.sh: node $1 (pid $pid) still there 30 s after SIGKILL" >&2; exit 1
}

# The node id of the active KRaft controller (the quorum's leader): what the live node that knows
# the latest leader epoch wrote in its quorum-state file (-1 if none knows of a leader).
controller() {
  local i state epoch best=-1 leader=-1
  for i in $(seq 1 "$nodes"); do
    select_node "$i"
    state="$ndir/data/__cluster_metadata-0/quorum-state"
    running && [[ -f "$state" ]] || continue
    epoch="$(sed -n 's/.*"leaderEpoch":\([0-9-]*\).*/\1/p' "$state")"
    if [[ -n "$epoch" && "$epoch" -gt "$best" ]]; then
      best="$epoch"; leader="$(sed -n 's/.*"leaderId":\([0-9-]*\).*/\1/p' "$state")"
    fi
  done
  echo "$leader"
}

bootstrap() {
  local i servers=""
  for i in $(seq 1 "$nodes"); do servers="$servers${servers:+,}127.0.0.1:$((port + 2 * (i - 1)))"; done
  echo "$servers"
}

# Up only when every node is up.
status() {
  if [[ "$nodes" == 1 ]]; then
    if running && answers; then echo "up (pid $(cat "$pidfile"), 127.0.0.1:$port)"; else echo "down"; exit 1; fi
    return
  fi
  local i down=0
  for i in $(seq 1 "$nodes"); do
    select_node "$i"
    if running && answers; then echo "node $i up (pid $(cat "$pidfile"), 127.0.0.1:$node_port)"; else echo "node $i down"; down=1; fi
  done
  return "$down"
}

command="${1:-}"; shift || true
case "$command" in
  up) up "$@" ;; down) down "$@" ;; status) status ;;
  reset)
    down
    if [[ "$nodes" == 1 ]]; then rm -rf "$kdir/data"; else rm -rf "$kdir"/node-* "$kdir/cluster.id"; fi
    echo "kafka.sh: data removed" ;;
  bootstrap) bootstrap ;; kill) kill_node "$@" ;; controller) controller ;;
  *) echo "usage: $0 up|down|status|reset|bootstrap|kill I|controller (up and down take node numbers too)" >&2; exit 2 ;;
esac
