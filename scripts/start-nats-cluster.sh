#!/usr/bin/env bash
# A three-node Tandem cluster on this machine, the production way: one
# nats-server (JetStream, state in a temp dir) that knows each node as its
# own NATS user with its own permissions, and one process per call manager,
# each signing what it says with its node key. Ctrl-C stops everything.
# Usage: scripts/start-nats-cluster.sh [CONFIG]   (default examples/acme-nats.yaml)
# Node keys and the nats-server config are made once by `tandem nats-setup`
# (in .tandem/<cluster>-keys beside the config) and reused.
# Uses a nats-server already listening on 127.0.0.1:4222 if there is one
# (it must have been started with that config).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-examples/acme-nats.yaml}
export PATH="$PATH:/usr/sbin:/sbin"
[ -d node_modules ] || npm ci --no-audit --no-fund

setup=$(node --import tsx src/cli.ts nats-setup -c "$config")
echo "$setup"
natsconf=$(printf '%s\n' "$setup" | sed -n 's/^nats-server config: \([^ ]*\).*/\1/p')

pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  command -v nats-server >/dev/null || { echo "nats-server is missing: sudo apt-get install -y nats-server" >&2; exit 1; }
  store=$(mktemp -d -t tandem-nats-XXXXXX)
  echo "starting nats-server on 127.0.0.1:4222 (JetStream in $store)"
  nats-server -c "$natsconf" -a 127.0.0.1 -p 4222 -js -sd "$store" >"$store/nats.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done
fi

nodes=$(node --import tsx -e "
import { loadConfigFile } from './src/config/load.ts';
console.log([...loadConfigFile(process.argv[1]).nodes.keys()].join(' '));" "$config")
for n in $nodes; do
  node --import tsx src/cli.ts start --config "$config" --node "$n" --pretty &
  pids+=($!)
done
echo "cluster starting: nodes $nodes; Ctrl-C stops all"
wait -n "${pids[@]}" || true
echo "a process exited; stopping the cluster" >&2
