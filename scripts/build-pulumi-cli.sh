#!/usr/bin/env bash
# Build the Pulumi CLI from its Go module for the real-engine test tier (pytest -m real_engine).
#
# The CLI is the `cmd/pulumi` package of github.com/pulumi/pulumi/pkg/v3. The version is the
# newest one the Go module proxy serves in the installed `pulumi` Python SDK's minor release,
# else the newest served version (the proxy does not serve every release). The binary goes to
#   ${MAPT_TEST_CACHE:-${XDG_CACHE_HOME:-~/.cache}/mapt-test}/pulumi/<version>/bin/pulumi
# outside the repository, and is reused when it is already there. The only line on stdout is
# that path; progress goes to stderr.
#
#   scripts/build-pulumi-cli.sh              # version from the installed SDK
#   scripts/build-pulumi-cli.sh v3.205.0     # a given version (e.g. to test an older CLI)
#
# Needs `go` (the version upstream's go.mod names, fetched by Go's toolchain switching if older)
# and the Go module proxy. Building takes several minutes and ~2 GB of module and build cache
# the first time; the cached binary makes later runs instant.
set -euo pipefail

module=github.com/pulumi/pulumi/pkg/v3
python=${PYTHON:-python3}
log() { echo "build-pulumi-cli: $*" >&2; }

command -v go >/dev/null || { echo "Error: go is not on PATH; install Go from https://go.dev/dl/" >&2; exit 5; }

served_versions() {
    # `go list -m -versions` runs outside any module so no go.mod is needed or touched.
    (cd / && GOFLAGS=-mod=mod go list -m -versions "$module") | tr ' ' '\n' | tail -n +2
}

pick_version() {
    local sdk minor versions match
    sdk=$("$python" -c 'import importlib.metadata as m; print(m.version("pulumi"))') || {
        echo "Error: the pulumi Python SDK is not installed for $python (set PYTHON to the venv's python)" >&2
        exit 5
    }
    minor=$(echo "$sdk" | cut -d. -f1,2)
    versions=$(served_versions)
    match=$(echo "$versions" | grep -E "^v${minor//./\\.}\.[0-9]+$" | sort -V | tail -1 || true)
    if [[ -n "$match" ]]; then
        log "pulumi SDK $sdk: building the CLI of the same minor release, $match"
        echo "$match"
    else
        match=$(echo "$versions" | grep -E '^v3\.[0-9]+\.[0-9]+$' | sort -V | tail -1)
        log "pulumi SDK $sdk: the Go proxy serves no v$minor.x of $module; using the newest served, $match"
        echo "$match"
    fi
}

version=${1:-$(pick_version)}
[[ "$version" == v* ]] || version="v$version"
[[ "$version" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || { echo "Error: the version argument '$version' is not of the form v3.X.Y" >&2; exit 2; }

cache=${MAPT_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mapt-test}
bin_dir="$cache/pulumi/${version#v}/bin"
binary="$bin_dir/pulumi"
if [[ -x "$binary" ]] && "$binary" version >/dev/null 2>&1; then
    log "reusing $binary ($("$binary" version))"
    echo "$binary"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mapt-pulumi-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"

log "fetching $module@$version"
upstream_mod=$(go mod download -json "$module@$version" | "$python" -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error", "no GoMod")))')
upstream_go=$(awk '$1 == "go" {print $2; exit}' "$upstream_mod")

# A wrapper module: `replace` directives only apply in the main module, so upstream's are copied.
# Upstream's local ../sdk is the sdk of the same commit: replaced here by the published sdk module
# of the same version, exactly (a plain requirement could be raised by another dependency's, and
# older pkg releases do not build against a newer sdk).
go mod init mapt-pulumi-cli-build >/dev/null 2>&1
go mod edit -go="$upstream_go" -replace="github.com/pulumi/pulumi/sdk/v3=github.com/pulumi/pulumi/sdk/v3@$version"
"$python" - "$upstream_mod" >>go.mod <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
single = re.findall(r"^replace\s+([^(\s].*)$", text, re.M)
blocks = re.findall(r"^replace\s*\(\n(.*?)^\)", text, re.M | re.S)
lines = single + [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
for line in lines:
    target = line.split("=>", 1)[1].split()
    if not target[0].startswith((".", "/")):  # a local path is upstream's own checkout
        print("replace " + line)
EOF
log "replace directives (upstream's, with ../sdk pinned): $(grep -c '^replace' go.mod || true)"
go get "$module/cmd/pulumi@$version" "github.com/pulumi/pulumi/sdk/v3@$version" >&2

log "building $module/cmd/pulumi@$version (GOFLAGS=$GOFLAGS)"
start=$(date +%s)
# Pulumi's own Makefile stamps the version the same way; the Automation API reads it back
# through `pulumi version`, and mapt checks it against its minimum.
go build -o "$work/pulumi" \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
    "$module/cmd/pulumi"
log "built in $(( $(date +%s) - start )) s"
"$work/pulumi" version >/dev/null

mkdir -p "$bin_dir"
mv "$work/pulumi" "$binary.partial"
mv "$binary.partial" "$binary"
log "installed $binary ($("$binary" version))"
echo "$binary"
