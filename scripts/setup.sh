#!/usr/bin/env bash
# Installs what `npm ci` cannot: the Debian libraries the native Kafka client links against.
# Idempotent: does nothing when every library is present. Then installs the npm dependencies,
# building @confluentinc/kafka-javascript from its bundled librdkafka (no prebuilt download is possible here).
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(build-essential python3 libssl-dev libsasl2-dev zlib1g-dev libzstd-dev liblz4-dev libcurl4-openssl-dev)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or install them first: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Kafka client's install script tries to download a prebuilt binary first; dynamic linking
# makes it build librdkafka from the sources shipped in the npm package against the libraries above.
export CKJS_LINKING=dynamic
if [ -f node_modules/@confluentinc/kafka-javascript/build/Release/confluent-kafka-javascript.node ] \
  && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "setup: node_modules is up to date"
else
  echo "setup: npm ci (builds the native Kafka client, about 2 minutes the first time)"
  npm ci --no-audit --no-fund
fi
