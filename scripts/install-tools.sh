#!/usr/bin/env bash
# Install the local stand-ins the tests and the demo start: Mosquitto (MQTT
# broker, from Debian's packages) and Azurite (blob storage emulator, from npm).
set -euo pipefail

tools_dir="${1:-.tools}"

if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "Installing mosquitto with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
    else
        echo "mosquitto is missing: install it (Debian/Ubuntu: sudo apt-get install mosquitto)" >&2
        exit 1
    fi
fi

# Azurite 3.35.0 is the last release that runs on Node 20; newer ones need Node 22.
if [ ! -x "$tools_dir/node_modules/.bin/azurite-blob" ]; then
    if ! command -v npm >/dev/null; then
        echo "npm is missing: install Node.js 20 or newer to get Azurite" >&2
        exit 1
    fi
    echo "Installing azurite@3.35.0 into $tools_dir"
    npm install --silent --no-audit --no-fund --prefix "$tools_dir" azurite@3.35.0 >/dev/null
fi
