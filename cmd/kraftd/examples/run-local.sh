#!/usr/bin/env bash
# Formats (once) and starts the example cluster of cluster.properties (three controllers, three brokers) from the repository root, then
# waits; Ctrl-C stops every node. Data lives in ./data; delete it to start a fresh cluster.
set -euo pipefail
cd "$(dirname "$0")/../../.."
conf=cmd/kraftd/examples/cluster.properties
nodes=(1 2 3 4 5 6)
mkdir -p data
if [ ! -s data/cluster.id ]; then bin/kraftctl storage random-uuid > data/cluster.id; fi
cluster_id=$(cat data/cluster.id)
for id in "${nodes[@]}"; do
  bin/kraftctl storage format --config "$conf" --node-id "$id" --cluster-id "$cluster_id" --ignore-formatted
done

pids=()
declare -A pid_of
stop() {
  trap - INT TERM
  echo
  echo "Stopping the cluster: brokers first (each completes a controlled shutdown), then controllers..."
  for id in 4 5 6; do [ -n "${pid_of[$id]:-}" ] && kill -TERM "${pid_of[$id]}" 2>/dev/null || true; done
  for id in 4 5 6; do [ -n "${pid_of[$id]:-}" ] && wait "${pid_of[$id]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
  echo "Stopped."
  exit 0
}
trap stop INT TERM
for id in "${nodes[@]}"; do
  bin/kraftd --config "$conf" --node-id "$id" >"data/node-$id.log" 2>&1 &
  pids+=($!)
  pid_of[$id]=$!
done

echo "Waiting for the quorum to elect a leader..."
for _ in $(seq 1 60); do
  if bin/kraftctl quorum describe --status --bootstrap-controller 127.0.0.1:19091 --timeout 2s >/dev/null 2>&1; then break; fi
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "A node exited; see data/node-*.log" >&2; stop; fi
  done
  sleep 1
done
bin/kraftctl quorum describe --status --bootstrap-controller 127.0.0.1:19091 || true
echo "Waiting for the brokers to register and catch up..."
for _ in $(seq 1 60); do
  if [ "$(bin/kraftctl brokers list --bootstrap-server 127.0.0.1:9092 --timeout 2s 2>/dev/null | grep -c ' unfenced ')" = 3 ]; then break; fi
  sleep 1
done
bin/kraftctl brokers list --bootstrap-server 127.0.0.1:9092 || true
cat <<MSG

Cluster $cluster_id is up.
  controllers: 127.0.0.1:19091, 127.0.0.1:19092, 127.0.0.1:19093
  brokers:     127.0.0.1:9092, 127.0.0.1:9192, 127.0.0.1:9292  (Kafka clients: bootstrap 127.0.0.1:9092)
Try:
  kcat -L -b 127.0.0.1:9092
  bin/kraftctl brokers list --bootstrap-server 127.0.0.1:9092
  bin/kraftctl quorum describe --status --bootstrap-controller 127.0.0.1:19091
  bin/kraftctl quorum describe --replication --bootstrap-controller 127.0.0.1:19091
Logs are in data/node-*.log. Press Ctrl-C to stop.
MSG
wait
