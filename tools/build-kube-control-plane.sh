#!/usr/bin/env bash
# Build a real Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler)
# and the node binaries (kubelet, kube-proxy) from Debian bookworm's `kubernetes` source package
# and cache the five binaries, so a machine builds them once (one `make`: the code generation is
# shared). The Kubernetes backend's tests run these binaries against Debian's etcd.
#
# Usage: tools/build-kube-control-plane.sh [--force] [--keep-build]
#   --force       rebuild even when the binaries are cached
#   --keep-build  keep the build tree (about 2.3 GB) for inspection; the next build removes it
# Environment:
#   KUBE_SRC_VERSION  exact Debian source version to build (default: the cached/known one, else
#                     the newest version that bookworm offers)
#   KUBE_BUILD_TMPDIR where the temporary build tree goes (default: /var/tmp, a disk, not tmpfs)
#   XDG_CACHE_HOME    cache root; binaries go to
#                     ${XDG_CACHE_HOME:-$HOME/.cache}/pytest-ingress-chaos/kube-<ver>-<tag>/bin
#
# Prints the bin directory as its LAST line of stdout; everything else goes to stderr.
# Runs as root on Debian bookworm (it installs its build dependencies with apt-get). A cache hit
# needs neither root nor the network and returns in well under a second.
#
# Why this shape:
# - No prebuilt kube-apiserver can be downloaded here, and kind/k3s/docker are absent; Debian
#   package repositories are reachable, and bookworm's `kubernetes` source package (1.20.2) is the
#   last one that ships the complete upstream tree, vendor/ included, so it builds offline.
#   Later Debian releases ship stripped sources that cannot build the apiserver.
# - A plain `go build` fails: the generated openapi code only comes from the Makefile's code
#   generation step, so we run `make WHAT=...` in GOPATH mode (GO111MODULE=off), as 1.20 expects.
# - Vendor fix (required): 1.20 vendors reflect2 1.0.1 and json-iterator 1.1.10, which are broken
#   under Go >= 1.18 (the only Go here is 1.19). The apiserver then crashes or corrupts memory when
#   json-iterator encodes a map: on ?pretty=true (the Python client's pretty="true"), on requests
#   with a curl/browser User-Agent (auto pretty-printed) and on YAML output; later JSON POSTs may
#   panic. Replacing them with Debian's reflect2 1.0.2 and json-iterator 1.1.12 fixes that, so the
#   cache key carries a vendor-fix tag and unfixed builds are never picked up.
# - Cold build: about 5-6 minutes on an idle 2-core machine (twice that when the cores are busy),
#   1.4 GB peak memory, 2.3 GB of disk (removed afterwards); binaries about 110, 104 and 40 MB
#   (stripped with -s -w).
set -euo pipefail

readonly VENDOR_FIX_TAG="vendorfix1"
# The cache key says what a cached build holds: the vendor fix, and the control plane plus the
# node binaries (an older control-plane-only cache is never taken for one with nodes).
readonly CACHE_TAG="$VENDOR_FIX_TAG-cp-nodes"
# The version bookworm shipped when this script was written: lets a cache hit skip apt entirely.
readonly KNOWN_SRC_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
readonly COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
readonly GO_BIN_DIR="/usr/lib/go-1.19/bin"
readonly BUILD_DEPS=(
    golang-1.19-go make rsync dpkg-dev xz-utils patch openssl etcd-server
    golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev
)
readonly BUILD_DIR_PREFIX="pytest-ingress-kube-build."

# Keep stdout for the final answer only: every command's output goes to stderr.
exec 3>&1 1>&2

log() { printf '[build-kube] %s\n' "$*" >&2; }
die() {
    printf '[build-kube] ERROR: %s\n' "$*" >&2
    exit 1
}

force=0
keep_build=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        --keep-build) keep_build=1 ;;
        -h | --help)
            sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument: $arg (see --help)" ;;
    esac
done

cache_root="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/pytest-ingress-chaos"
start_seconds=$SECONDS

# Debian versions may carry an epoch ("1:2.3-4"); keep the directory name free of ':'.
version_dir() { printf '%s/kube-%s-%s' "$cache_root" "${1//:/_}" "$CACHE_TAG"; }

# A cached build counts only when all five binaries are there, the apiserver runs, and the info file (written last, and
# moved in with the binaries in one rename) is there.
cached_bin_dir() {
    local dir c
    dir="$(version_dir "$1")"
    [[ -f "$dir/BUILD-INFO" ]] || return 1
    for c in "${COMPONENTS[@]}"; do
        [[ -x "$dir/bin/$c" ]] || return 1
    done
    "$dir/bin/kube-apiserver" --version >/dev/null 2>&1 || return 1
    printf '%s/bin' "$dir"
}

finish_with() {
    log "binaries ready in $1 ($((SECONDS - start_seconds)) s)"
    printf '%s\n' "$1" >&3
    exit 0
}

requested_version="${KUBE_SRC_VERSION:-}"
if [[ $force -eq 0 ]] && bin="$(cached_bin_dir "${requested_version:-$KNOWN_SRC_VERSION}")"; then
    finish_with "$bin"
fi

# ---------------------------------------------------------------------------------------------
# Slow path: serialise builds (two at once would need twice the memory and race on the cache).
mkdir -p "$cache_root"
exec 9>"$cache_root/.build.lock"
if ! flock -n 9; then
    log "another build holds $cache_root/.build.lock; waiting for it"
    flock 9
fi
if [[ $force -eq 0 ]] && bin="$(cached_bin_dir "${requested_version:-$KNOWN_SRC_VERSION}")"; then
    finish_with "$bin"
fi

build_parent="${KUBE_BUILD_TMPDIR:-/var/tmp}"
mkdir -p "$build_parent"
# We hold the lock, so any earlier build tree is left over from a run that was killed before its
# cleanup could run (SIGKILL, reboot): reclaim its disk space.
for stale in "$build_parent/$BUILD_DIR_PREFIX"*; do
    [[ -d "$stale" ]] || continue
    log "removing a stale build tree from an interrupted run: $stale"
    rm -rf -- "$stale"
done

# Likewise a half-installed build from such a run.
for stale in "$cache_root"/.staging.*; do
    if [[ -e "$stale" ]]; then rm -rf -- "$stale"; fi
done

build="$(mktemp -d "$build_parent/${BUILD_DIR_PREFIX}XXXXXX")"
staging=""
# shellcheck disable=SC2317  # invoked through the EXIT trap
cleanup() {
    local rc=$?
    if [[ -n "$staging" ]]; then
        rm -rf -- "$staging" "$staging.old"
    fi
    if [[ $keep_build -eq 1 ]]; then
        log "kept the build tree: $build"
    else
        rm -rf -- "$build"
    fi
    [[ $rc -eq 0 ]] || log "build FAILED (exit $rc); re-running this script starts afresh"
}
trap cleanup EXIT

# --- preconditions -----------------------------------------------------------------------------
free_kb="$(df -Pk "$build" | awk 'NR == 2 { print $4 }')"
((free_kb >= 3 * 1024 * 1024)) ||
    die "need about 3 GB free in $build_parent for the build tree, have $((free_kb / 1024)) MB (set KUBE_BUILD_TMPDIR)"
mem_kb="$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)"
((mem_kb >= 1536 * 1024)) || log "warning: only $((mem_kb / 1024)) MB of memory available; the build peaks near 1.3 GB"
command -v apt-get >/dev/null || die "apt-get not found: this script needs Debian (bookworm)"

missing=()
for pkg in "${BUILD_DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    [[ $EUID -eq 0 ]] || die "missing Debian packages (${missing[*]}); run this script as root to install them"
    log "installing build dependencies: ${missing[*]}"
    apt-get update -q || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
        die "could not install ${missing[*]} (golang-1.19-go exists only in Debian bookworm)"
fi
[[ -x "$GO_BIN_DIR/go" ]] || die "$GO_BIN_DIR/go missing after installing golang-1.19-go"

# The replacement libraries must be at least the fixed versions.
need_version() {
    local pkg="$1" min="$2" have
    have="$(dpkg-query -W -f='${Version}' "$pkg")"
    dpkg --compare-versions "$have" ge "$min" || die "$pkg is $have; the vendor fix needs >= $min"
    printf '%s' "$have"
}
reflect2_version="$(need_version golang-github-modern-go-reflect2-dev 1.0.2)"
jsoniter_version="$(need_version golang-github-json-iterator-go-dev 1.1.12)"

# --- source package, through a private apt configuration --------------------------------------
# The system's sources stay untouched: a sources.list, index lists and caches of our own, with
# only deb-src lines. The archive address is taken from the machine's own apt configuration
# (its Debian, non-security repository), so whatever mirror the machine uses is used here too.
# shellcheck disable=SC2016  # $(FIELD) is apt's format syntax, not the shell's
archive_uri="$(apt-get indextargets --format '$(ORIGIN)|$(REPO_URI)|$(RELEASE)' 2>/dev/null |
    awk -F'|' '$1 == "Debian" && $3 !~ /security/ { print $2; exit }')"
[[ -n "$archive_uri" ]] || die "no Debian archive found in the apt configuration (apt-get indextargets)"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed_by=""
[[ -f "$keyring" ]] && signed_by="[signed-by=$keyring] "

aptdir="$build/apt"
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/sources.list.d"
{
    printf 'deb-src %s%s bookworm main\n' "$signed_by" "$archive_uri"
    printf 'deb-src %s%s bookworm-updates main\n' "$signed_by" "$archive_uri"
} >"$aptdir/sources.list"
apt_private=(
    -o "Dir::Etc::SourceList=$aptdir/sources.list"
    -o "Dir::Etc::SourceParts=$aptdir/sources.list.d"
    -o "Dir::State::Lists=$aptdir/lists"
    -o "Dir::Cache=$aptdir/cache"
    # Our private dirs are root-only (mktemp): download as root instead of the _apt user.
    -o "APT::Sandbox::User=root"
)
log "fetching the bookworm source index from $archive_uri"
apt-get "${apt_private[@]}" -q update || die "apt-get update of the private deb-src list failed"

mapfile -t offered < <(apt-cache "${apt_private[@]}" showsrc --only-source kubernetes 2>/dev/null |
    awk '/^Version:/ { print $2 }')
((${#offered[@]})) || die "the archive offers no 'kubernetes' source package for bookworm"
if [[ -n "$requested_version" ]]; then
    printf '%s\n' "${offered[@]}" | grep -qxF -- "$requested_version" ||
        die "KUBE_SRC_VERSION=$requested_version is not offered; the archive has: ${offered[*]}"
    version="$requested_version"
else
    version="${offered[0]}"
    for v in "${offered[@]}"; do
        dpkg --compare-versions "$v" gt "$version" && version="$v"
    done
fi
log "kubernetes source version: $version"
if [[ $force -eq 0 ]] && bin="$(cached_bin_dir "$version")"; then
    finish_with "$bin"
fi

mkdir -p "$build/src"
(cd "$build/src" && apt-get "${apt_private[@]}" -q source --download-only "kubernetes=$version") ||
    die "apt-get source kubernetes=$version failed"
dsc="$(find "$build/src" -maxdepth 1 -name 'kubernetes_*.dsc' -print -quit)"
[[ -n "$dsc" ]] || die "no .dsc file was downloaded"

# GOPATH layout: Kubernetes 1.20 builds as the import path k8s.io/kubernetes.
export GOPATH="$build/gopath"
tree="$GOPATH/src/k8s.io/kubernetes"
mkdir -p "$(dirname "$tree")"
log "unpacking $(basename "$dsc")"
dpkg-source --no-check -x "$dsc" "$tree" >/dev/null || die "dpkg-source -x failed"
rm -rf -- "$build/src"
for path in Makefile cmd/kube-apiserver vendor/github.com/modern-go/reflect2 vendor/github.com/json-iterator/go; do
    [[ -e "$tree/$path" ]] || die "the source tree lacks $path (a stripped source package cannot build the apiserver)"
done

# --- the vendor fix ----------------------------------------------------------------------------
replace_vendored() {
    local from="/usr/share/gocode/src/$1" to="$tree/vendor/$1" n
    [[ -d "$from" ]] || die "$from missing (Debian package not installed?)"
    rm -rf -- "$to"
    mkdir -p "$to"
    # Only the package's own top-level, non-test sources (and its licence): subdirectories of
    # these libraries are tests and extras that Kubernetes does not import.
    find "$from" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
        -exec cp -t "$to" {} +
    [[ -f "$from/LICENSE" ]] && cp "$from/LICENSE" "$to/"
    n="$(find "$to" -name '*.go' | wc -l)"
    ((n > 0)) || die "no Go files copied from $from"
    log "vendor fix: $1 <- Debian's copy ($n Go files)"
}
replace_vendored github.com/modern-go/reflect2
replace_vendored github.com/json-iterator/go
# reflect2 1.0.2 is the release that added the Go >= 1.18 code path; check it really is in place.
grep -rqs 'go1.18' "$tree/vendor/github.com/modern-go/reflect2" ||
    die "vendored reflect2 has no Go 1.18 support after the vendor fix"

# --- build -------------------------------------------------------------------------------------
upstream="${version#*:}"
upstream="${upstream%-*}"
upstream="${upstream##*really}"
export PATH="$GO_BIN_DIR:$PATH"
export GO111MODULE=off GOPROXY=off CGO_ENABLED=0 GOFLAGS="" GOENV=off GOTOOLCHAIN=local
export GOCACHE="$build/gocache" GOTMPDIR="$build/tmp" TMPDIR="$build/tmp"
export KUBE_GIT_VERSION="v$upstream" KUBE_GIT_TREE_STATE=clean
mkdir -p "$GOTMPDIR"
log "building ${COMPONENTS[*]} v$upstream with $(go version) (several minutes)"
build_start=$SECONDS
what="$(printf 'cmd/%s ' "${COMPONENTS[@]}")"
make -C "$tree" WHAT="${what% }" GOLDFLAGS="-s -w" || die "make failed (see the output above)"
build_seconds=$((SECONDS - build_start))
log "compiled in ${build_seconds} s"

for c in "${COMPONENTS[@]}"; do
    [[ -x "$tree/_output/bin/$c" ]] || die "make produced no $c"
    out="$("$tree/_output/bin/$c" --version 2>&1)" || die "$c --version failed: $out"
    [[ "$out" == *"v$upstream"* ]] || die "$c reports '$out', expected v$upstream"
done

# --- install atomically into the cache ----------------------------------------------------------
final="$(version_dir "$version")"
staging="$(mktemp -d "$cache_root/.staging.XXXXXX")"
mkdir -p "$staging/bin"
for c in "${COMPONENTS[@]}"; do
    install -m 0755 "$tree/_output/bin/$c" "$staging/bin/$c"
done
{
    echo "source_package=kubernetes"
    echo "source_version=$version"
    echo "kubernetes_version=v$upstream"
    echo "vendor_fix=$VENDOR_FIX_TAG reflect2=$reflect2_version json-iterator=$jsoniter_version"
    echo "go=$(go version)"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "compile_seconds=$build_seconds"
    (cd "$staging/bin" && sha256sum "${COMPONENTS[@]}")
} >"$staging/BUILD-INFO"
chmod 0755 "$staging"
# Swap by renames (a forced rebuild replaces a cached build that tests may be running from).
if [[ -e "$final" ]]; then
    mv -- "$final" "$staging.old"
fi
mv -- "$staging" "$final"
rm -rf -- "$staging.old"
staging=""
finish_with "$final/bin"
