#!/bin/sh
# Prepare the dev card (only when none exists and CDGI_DEV_TOKEN=1), migrate, then run cdgi.
set -eu
if [ "${CDGI_DEV_TOKEN:-0}" = "1" ] && [ ! -d "${CDGI_SOFTHSM_DIR}/tokens" ]; then
  cdgi card init
fi
if [ "${1:-run}" = "run" ]; then
  cdgi db upgrade
fi
exec cdgi "$@"
