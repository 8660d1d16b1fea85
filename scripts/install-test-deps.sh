#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: Debian's Chromium, for the
# browser tests of the /docs page and the web console
# (server/docs_browser_test.go, server/console_browser_test.go). Idempotent:
# exits 0 at once when Chromium is already there. Installs only as root (CI
# runs as root); otherwise it prints what to install and leaves it to you.
set -euo pipefail

have_chromium() {
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -x /usr/bin/chromium ]
}

if have_chromium; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: Chromium not found; the browser test will be skipped." >&2
	echo "install-test-deps: to run it: sudo apt-get install -y --no-install-recommends chromium" >&2
	exit 0
fi

echo "install-test-deps: installing Debian's chromium for the browser test" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt's output is shown only when it fails.
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "install-test-deps: installing chromium failed" >&2
	exit 1
fi
have_chromium || { echo "install-test-deps: chromium still missing after install" >&2; exit 1; }
