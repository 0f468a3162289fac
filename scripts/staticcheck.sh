#!/usr/bin/env bash
# Runs staticcheck at the pinned version on the given packages (default ./...).
#
# Uses a staticcheck on PATH or in $(go env GOPATH)/bin when it reports the
# pinned version; otherwise installs that version into .cache/bin (once) with
# `go install`. Fails if it can neither find nor install it.
set -euo pipefail

# Keep in step with the version developers run (`staticcheck -version`).
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
want=${STATICCHECK_VERSION#v}

version_ok() { # version_ok BINARY: its -version names the pinned release
	[[ -x $1 ]] && "$1" -version 2>/dev/null | grep -q "(${want})"
}

bin=""
for candidate in "$(command -v staticcheck 2>/dev/null || true)" "$(go env GOPATH)/bin/staticcheck" "$root/.cache/bin/staticcheck"; do
	if [[ -n $candidate ]] && version_ok "$candidate"; then
		bin=$candidate
		break
	fi
done

if [[ -z $bin ]]; then
	echo "staticcheck ${STATICCHECK_VERSION} not found; installing it into .cache/bin" >&2
	mkdir -p "$root/.cache/bin"
	GOBIN="$root/.cache/bin" go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
	bin="$root/.cache/bin/staticcheck"
	version_ok "$bin" || {
		echo "staticcheck: installed $bin does not report version ${want}" >&2
		exit 1
	}
fi

if (($# == 0)); then
	set -- ./...
fi
exec "$bin" "$@"
