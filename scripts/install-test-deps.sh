#!/usr/bin/env bash
# Installs what the test suite needs beyond Go:
#  - the OpenAPI linter (Redocly CLI, the exact version locked in
#    tools/openapi-lint/package-lock.json) for TestOpenAPILint, with npm;
#  - Debian's Chromium, for the browser tests of the /docs page and the web
#    console (server/docs_browser_test.go, server/console_browser_test.go);
#  - curl and jq, which the README's walkthrough uses
#    (cmd/groupgate/readme_test.go runs it);
#  - Debian's PostgreSQL server, for the PostgreSQL store's tests (package
#    internal/pgtest starts a throwaway cluster from its binaries; no
#    cluster is created or started here).
# Idempotent: what is already there is left alone. Debian packages install
# only as root (CI runs as root); otherwise it prints what to install and
# leaves it to you. CI runs this before make test.
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

# The server binaries internal/pgtest looks for.
have_postgres() {
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

have_all() {
	have_chromium && command -v curl >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 && have_postgres
}

if have_all; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: Chromium, curl, jq or PostgreSQL not found (without Chromium the browser test is skipped, without PostgreSQL the PostgreSQL store's tests are; without curl and jq the README test fails)." >&2
	echo "install-test-deps: sudo apt-get install -y --no-install-recommends chromium curl jq postgresql" >&2
	exit 0
fi

echo "install-test-deps: installing Debian's chromium, curl, jq and postgresql for the browser, README and PostgreSQL store tests" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt's output is shown only when it fails.
if ! {
	apt-get update -q &&
		# The tests start their own clusters: Debian's package need not
		# create (and start) its default one. As the postgres Docker image
		# does: postgresql-common first, then its setting, then the server.
		apt-get install -y -q --no-install-recommends postgresql-common &&
		sed -ri 's/^#?[[:space:]]*(create_main_cluster)[[:space:]]*=.*$/\1 = false/' /etc/postgresql-common/createcluster.conf &&
		apt-get install -y -q --no-install-recommends chromium curl jq postgresql
} >"$log" 2>&1; then
	cat "$log" >&2
	echo "install-test-deps: installing chromium, curl, jq and postgresql failed" >&2
	exit 1
fi
have_all || { echo "install-test-deps: chromium, curl, jq or postgresql still missing after install" >&2; exit 1; }
