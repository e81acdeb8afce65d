#!/usr/bin/env bash
# Builds the Debian package omnimind-sentinel_VERSION_ARCH.deb from this checkout with dpkg-deb,
# offline: production node_modules pruned from the installed ones, the built dist/, the native addon
# and the eBPF programs, /usr/bin/sentinel, the units in /lib/systemd/system, the sample config as
# a conffile, the man page and bash completion. Layout and maintainer scripts: docs/PACKAGE.md.
# Usage: bash scripts/package-deb.sh [--out DIR] [--revision N] [--no-build]
set -euo pipefail
umask 022
cd "$(dirname "$0")/.."
root=$PWD
out=$root
revision=1
build=1
usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --revision) revision=${2:?--revision needs a number}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "package-deb: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$revision" =~ ^[0-9][0-9a-z.+~]*$ ]] || { echo "package-deb: --revision must be a Debian revision such as 1 or 2, got '$revision'" >&2; exit 2; }
for tool in dpkg-deb dpkg node npm gzip; do
  command -v "$tool" >/dev/null || { echo "package-deb: $tool is missing" >&2; exit 2; }
done
[ -d node_modules ] || { echo "package-deb: node_modules is missing: run 'npm ci' first (the package is built offline from it)" >&2; exit 2; }

if [ "$build" = 1 ]; then npm run --silent build; fi
[ -x dist/src/cli/main.js ] && [ -x dist/src/cli/sentinel.cjs ] && [ -f dist/share/man/man1/sentinel.1 ] || { echo "package-deb: dist/ is not built: run 'npm run build'" >&2; exit 2; }
addon=native/build/Release/sentinel_native.node
[ -f "$addon" ] || npm run --silent install
[ -f "$addon" ] || { echo "package-deb: the native addon ($addon) is not built and could not be built (apt-get install make g++)" >&2; exit 2; }

version=$(node -p "require('./package.json').version")
arch=$(dpkg --print-architecture)
debversion="$version-$revision"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/pkg
lib=$pkg/usr/lib/omnimind-sentinel
doc=$pkg/usr/share/doc/omnimind-sentinel

# The program: package.json (packageRoot and the version), the compiled product only (no tests or
# benchmarks), the native addon, the eBPF programs, the units, examples and Python integration that
# install-units and demo use.
install -d "$lib/dist" "$lib/native/build/Release"
cp package.json package-lock.json "$lib/"
cp -r dist/src "$lib/dist/"
find "$lib/dist" \( -name '*.map' -o -name 'build-assets.js' \) -delete
install -m 0644 "$addon" "$lib/$addon"
cp -r bpf systemd examples "$lib/"
# The Python integration the backend and worker units run through (PYTHONPATH=.../integrations/python), without its tests.
install -d "$lib/integrations/python"
cp -r integrations/python/omnimind_sentinel integrations/python/README.md "$lib/integrations/python/"
# Whatever the build compiled for the kernel (BPF objects) goes where the sources left it.
while IFS= read -r -d '' obj; do install -D -m 0644 "$obj" "$lib/$obj"; done < <(find bpf native/build/Release dist -name '*.bpf.o' -print0 2>/dev/null)
find "$lib" -name '__pycache__' -prune -exec rm -rf {} +

# Production dependencies: a copy of the installed node_modules with the dev tools pruned, offline.
cp -r node_modules "$lib/"
(cd "$lib" && npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
find "$lib/node_modules" -type d -empty -delete

install -d "$pkg/usr/bin"
ln -s ../lib/omnimind-sentinel/dist/src/cli/sentinel.cjs "$pkg/usr/bin/sentinel"

# Units with this package's paths (the same substitution as `sentinel install-units`).
install -d "$pkg/lib/systemd/system"
for unit in omnimind-sentinel.service omnimind.slice; do
  sed -e 's#@NODE@#/usr/bin/node#g' -e 's#@SENTINEL_CLI@#/usr/lib/omnimind-sentinel/dist/src/cli/main.js#g' -e 's#@DOCS@#/usr/share/doc/omnimind-sentinel#g' \
    "systemd/$unit" > "$pkg/lib/systemd/system/$unit"
done

# Configuration (a conffile: an operator's edits survive upgrades) and the FHS directories with their modes.
install -D -m 0644 examples/sentinel.json "$pkg/etc/omnimind-sentinel/sentinel.json"
install -d -m 0755 "$pkg/etc/omnimind-sentinel/keys" "$pkg/var/lib/omnimind"
install -d -m 0700 "$pkg/var/lib/omnimind-sentinel" "$pkg/var/log/omnimind-sentinel"

# Man page, completion, documentation.
install -d "$pkg/usr/share/man/man1" "$pkg/usr/share/bash-completion/completions" "$doc/docs" "$doc/keys" "$doc/systemd" "$doc/examples"
gzip -9n < dist/share/man/man1/sentinel.1 > "$pkg/usr/share/man/man1/sentinel.1.gz"
install -m 0644 dist/share/bash-completion/completions/sentinel "$pkg/usr/share/bash-completion/completions/sentinel"
install -m 0644 README.md "$doc/"
install -m 0644 docs/*.md "$doc/docs/"
install -m 0644 keys/README.md "$doc/keys/"
install -m 0644 systemd/README.md systemd/omnimind-backend.service "$doc/systemd/"
install -m 0644 examples/sentinel.json examples/prometheus-alerts.yml examples/grafana-dashboard.json "$doc/examples/"
install -m 0644 packaging/debian/copyright "$doc/copyright"

# Modes: everything readable, nothing group/world-writable; the private directories stay 0700.
chmod -R u+rwX,go+rX,go-w "$pkg"
chmod 0700 "$pkg/var/lib/omnimind-sentinel" "$pkg/var/log/omnimind-sentinel"

# Shared libraries of the native addon become Depends (dpkg-shlibdeps when dpkg-dev is there).
shlibs="libc6"
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir -p "$stage/shlibs/debian" && printf 'Source: omnimind-sentinel\n\nPackage: omnimind-sentinel\nArchitecture: any\n' > "$stage/shlibs/debian/control"
  found=$(cd "$stage/shlibs" && dpkg-shlibdeps -O -e "$root/$addon" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  [ -n "$found" ] && shlibs=$found
fi
node_min=$(node -p "(require('./package.json').engines.node.match(/[0-9]+(\.[0-9]+)*/) || ['20'])[0]")

install -d "$pkg/DEBIAN"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: omnimind-sentinel
Version: $debversion
Architecture: $arch
Maintainer: ${DEB_MAINTAINER:-omnimind-sentinel maintainers <root@localhost>}
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: nodejs (>= $node_min), e2fsprogs, $shlibs
Recommends: systemd
Suggests: prometheus
Section: admin
Priority: optional
Description: sealed vault of signed releases and survival daemon for OmniMind
 Keeps the OmniMind Phi-engine tree immutable (chattr +i) and changes it only
 through Ed25519-signed bundles; the daemon (omnimind-sentinel.service) heals
 tampering, keeps the OmniMind services alive under systemd's watchdog, with
 memory/OOM protection and eBPF-driven recovery.
CONTROL
echo /etc/omnimind-sentinel/sentinel.json > "$pkg/DEBIAN/conffiles"
for script in postinst prerm postrm; do install -m 0755 "packaging/debian/$script" "$pkg/DEBIAN/$script"; done

mkdir -p "$out"
deb="$out/omnimind-sentinel_${debversion}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$pkg" "$deb" >/dev/null
echo "$deb"
