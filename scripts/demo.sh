#!/usr/bin/env bash
# Set everything up, then run the end-to-end demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/soru demo "$@"
