#!/usr/bin/env bash
# Installs what the test suite needs beyond Go:
#  - the OpenAPI linter (Redocly CLI, the exact version locked in
#    tools/openapi-lint/package-lock.json) for TestOpenAPILint, with npm;
#  - Debian's Chromium, for the browser test of the /docs page
#    (server/docs_browser_test.go).
# Idempotent: what is already there is left alone. Chromium installs only as
# root (CI runs as root); otherwise it prints what to install and leaves it
# to you. CI runs this before make test.
set -euo pipefail

cd "$(dirname "$0")/.."

# The OpenAPI linter.
lint=tools/openapi-lint
if [ ! -x "$lint/node_modules/.bin/redocly" ] ||
	! cmp -s "$lint/package-lock.json" "$lint/node_modules/.package-lock.json.installed"; then
	if ! command -v npm >/dev/null 2>&1; then
		echo "install-test-deps: npm not found; the OpenAPI lint test will be skipped (and fails under CI=true)." >&2
		echo "install-test-deps: to run it: install Node.js 20+ and npm, then run this script again" >&2
		[ "${CI:-}" = "true" ] && exit 1
	else
		echo "install-test-deps: installing the OpenAPI linter (npm ci in $lint)" >&2
		log=$(mktemp)
		if ! (cd "$lint" && npm ci --no-audit --no-fund --ignore-scripts) >"$log" 2>&1; then
			cat "$log" >&2
			rm -f "$log"
			echo "install-test-deps: installing the OpenAPI linter failed" >&2
			exit 1
		fi
		rm -f "$log"
		cp "$lint/package-lock.json" "$lint/node_modules/.package-lock.json.installed"
	fi
fi

# Chromium.
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
