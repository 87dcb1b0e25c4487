#!/usr/bin/env bash
# Datapunk Lake: install the system software the lake needs, on Debian 12 "bookworm"
# (PostgreSQL 15) or Debian 13 "trixie" (PostgreSQL 17). Run as root; idempotent.
#
#   sudo docker/setup-debian.sh
#
# What it installs: postgresql-N, postgresql-plpython3-N, postgresql-N-{cron,pgtap},
# redis-server, rabbitmq-server, pgbackrest (`lake backup`, `lake restore`), patroni and
# etcd-server (`lake up --replicas N`; their Debian services stopped and disabled), pgbouncer
# (`lake up --with pgbouncer`; its Debian service stopped and disabled: the lake runs its own),
# python3-{cryptography,fastjsonschema,jsonschema,jwt,venv}
# (PyJWT checks OIDC ID tokens in PL/Python), chromium (tests/test_status_page.py loads the
# status page of `lake serve` in it, headless), prometheus, prometheus-alertmanager,
# prometheus-{postgres,redis,node}-exporter (the services of these Debian packages stopped
# and disabled: the lake runs its own); pgvector, TimescaleDB (Apache-2 edition) and PostGIS
# (3.4 or newer) as binary packages where the release has them (trixie), otherwise built from
# the trixie sources against postgresql-server-dev-N (bookworm has no pgvector or TimescaleDB
# package, and its PostGIS is 3.3.2; see "PostGIS on bookworm" below).
# A second run checks what is present and returns within a second or so, without apt-get update.
# The Debian "main" cluster that the postgresql package creates on port 5432 is left alone:
# the lake runs its own cluster (see lake_client/local/). Debian's own RabbitMQ service is kept
# from starting while it is installed, and disabled: the lake starts its own broker when asked
# (`lake up --with rabbitmq`), on a private port and data directory.
#
# Environment:
#   PG_MAJOR=NN           PostgreSQL major to set up (default: the newest installed server,
#                         else 15 on bookworm, 17 on trixie)
#   LAKE_BUILD_DIR=DIR    where source packages are fetched and built
#                         (default /var/cache/datapunk-lake/build; apt output goes to
#                         /var/cache/datapunk-lake/setup.log)
#   LAKE_SETUP_REBUILD=1  build pgvector, TimescaleDB and PostGIS from source even if installed
#
# Needs no git checkout: docker/Dockerfile runs it on its own.
set -Eeuo pipefail

readonly TRIXIE_SRC_LIST=/etc/apt/sources.list.d/datapunk-lake-trixie-src.sources
readonly STATE_DIR=/var/cache/datapunk-lake
readonly BUILD_DIR=${LAKE_BUILD_DIR:-$STATE_DIR/build}
readonly APT_LOG=$STATE_DIR/setup.log
readonly REBUILD=${LAKE_SETUP_REBUILD:-0}
export DEBIAN_FRONTEND=noninteractive
start_seconds=$SECONDS

say() { printf 'setup: %s\n' "$*"; }
die() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

# --- which release, which PostgreSQL major -------------------------------------------------

[[ -r /etc/os-release ]] || die "cannot read /etc/os-release: this script supports Debian 12 and 13"
# shellcheck source=/dev/null
os_id=$(. /etc/os-release && printf '%s' "${ID:-}")
# shellcheck source=/dev/null
codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    die "apt-get/dpkg not found: this script supports Debian 12 and 13 only"
fi
if [[ $os_id != debian && -z ${PG_MAJOR:-} ]]; then
    die "this is '$os_id $codename', not Debian 12 or 13; set PG_MAJOR=NN to try anyway"
fi

newest_installed_major() {
    local bin major best=""
    for bin in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x $bin ]] || continue
        major=${bin#/usr/lib/postgresql/}
        major=${major%%/*}
        [[ $major =~ ^[0-9]+$ ]] || continue
        if [[ -z $best ]] || ((major > best)); then best=$major; fi
    done
    printf '%s' "$best"
}

if [[ -n ${PG_MAJOR:-} ]]; then
    [[ $PG_MAJOR =~ ^[0-9]+$ ]] || die "PG_MAJOR must be a number such as 15 or 17, not '$PG_MAJOR'"
    major=$PG_MAJOR
else
    major=$(newest_installed_major)
    if [[ -z $major ]]; then
        case $codename in
            bookworm) major=15 ;;
            trixie) major=17 ;;
            *) die "no PostgreSQL server installed and no default known for Debian '$codename'; set PG_MAJOR=NN" ;;
        esac
    fi
fi

# pgvector, TimescaleDB and PostGIS: binary packages from the release, except on bookworm,
# which has none of the first two and PostGIS 3.3.2 (the lake needs 3.4): there they are built
# from the trixie sources.
build_extensions=0
[[ $codename == bookworm ]] && build_extensions=1
readonly POSTGIS_MIN=3.4

# --- what is missing ------------------------------------------------------------------------

packages=(
    "postgresql-$major"
    "postgresql-plpython3-$major"
    "postgresql-$major-cron"
    "postgresql-$major-pgtap"
    redis-server
    rabbitmq-server
    python3-cryptography
    python3-fastjsonschema
    python3-jsonschema
    python3-jwt
    python3-venv
    pgbackrest
    # `lake up --replicas N`: Patroni manages the embedded cluster, etcd is its store
    # (lake_client/local/ha.py starts both on private ports; the packages' services stay off)
    patroni
    etcd-server
    # transaction pooling (`lake up --with pgbouncer`, lake_client/local/pgbouncer.py)
    pgbouncer
    # the browser of tests/test_status_page.py (headless: no desktop is needed)
    chromium
)
build_packages=("postgresql-server-dev-$major" dpkg-dev build-essential cmake)
# PostGIS's own: GEOS, PROJ, JSON-C (ST_GeomFromGeoJSON), protobuf-c (ST_AsMVT), libxml2 (GML
# and KML), and bison/flex for its WKT parser. No GDAL: it is built without raster.
postgis_build_packages=(libgeos-dev libproj-dev libjson-c-dev libprotobuf-c-dev protobuf-c-compiler
    libxml2-dev bison flex pkgconf)

ext_dir=/usr/share/postgresql/$major/extension
lib_dir=/usr/lib/postgresql/$major/lib
pg_config=/usr/lib/postgresql/$major/bin/pg_config

# missing_packages PKG...: print those not installed (one per line).
missing_packages() {
    local -A ok=()
    local status name
    while read -r status name; do
        [[ $status == ii ]] && ok[$name]=1
    done < <(dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' "$@" 2>/dev/null || true)
    for name in "$@"; do
        [[ -n ${ok[$name]:-} || -n ${ok[$name:$(dpkg --print-architecture)]:-} ]] || printf '%s\n' "$name"
    done
}

# extension_installed NAME: control file and shared library(ies) present for this major.
extension_installed() {
    local control=$ext_dir/$1.control version
    [[ -f $control ]] || return 1
    case $1 in
        vector) [[ -f $lib_dir/vector.so ]] ;;
        timescaledb)
            version=$(sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" "$control")
            [[ -n $version && -f $lib_dir/timescaledb.so && -f $lib_dir/timescaledb-$version.so ]]
            ;;
        postgis)
            version=$(sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" "$control")
            [[ -n $version && -f $lib_dir/postgis-3.so ]] &&
                dpkg --compare-versions "$version" ge "$POSTGIS_MIN"
            ;;
        *) return 1 ;;
    esac
}

# --- monitoring (`lake up --monitoring`) -----------------------------------------------------
# Debian's Prometheus, Alertmanager and exporters. The lake starts its own instances on private
# ports with the repository's configuration (lake_client/local/monitoring.py), so the packages'
# own services are stopped and disabled: they would hold 9090, 9093, 9100, 9121 and 9187.
monitoring_packages=(
    prometheus
    prometheus-alertmanager
    prometheus-postgres-exporter
    prometheus-redis-exporter
    prometheus-node-exporter
)
packages+=("${monitoring_packages[@]}")

# Services of other packages that the lake runs itself: etcd-server's etcd (it would hold 2379
# and 2380), Patroni's (it has no configuration; lake_client.local.ha writes the lake's) and
# pgbouncer's (it would hold 6432; the lake starts its own on LAKE_POOL_PORT).
own_services=(etcd patroni pgbouncer)

# quiet_monitoring_services: stop and disable the packages' services (systemd or SysV); idempotent.
quiet_monitoring_services() {
    local unit
    for unit in "${monitoring_packages[@]}" "${own_services[@]}"; do
        if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
            systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
        elif [[ -x /etc/init.d/$unit ]]; then
            "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
            update-rc.d "$unit" disable >/dev/null 2>&1 || true
        fi
    done
}

mapfile -t missing < <(missing_packages "${packages[@]}")
missing_extensions=()
for ext in vector timescaledb postgis; do
    if [[ $REBUILD == 1 ]] || ! extension_installed "$ext"; then missing_extensions+=("$ext"); fi
done

if ((${#missing[@]} == 0 && ${#missing_extensions[@]} == 0)); then
    ((EUID == 0)) && quiet_monitoring_services
    say "nothing to do (PostgreSQL $major with plpython3u, pg_cron, postgis ≥ $POSTGIS_MIN, pgtap, vector, timescaledb; redis-server, rabbitmq-server, pgbackrest, patroni, etcd, pgbouncer, prometheus, chromium)"
    exit 0
fi

to_build=()
if ((${#missing_extensions[@]} > 0)); then
    if [[ $build_extensions == 1 || $REBUILD == 1 ]]; then
        to_build=("${missing_extensions[@]}")
        [[ " ${to_build[*]} " == *" postgis "* ]] && build_packages+=("${postgis_build_packages[@]}")
        mapfile -t -O "${#missing[@]}" missing < <(missing_packages "${build_packages[@]}")
    else
        for ext in "${missing_extensions[@]}"; do
            case $ext in
                vector) missing+=("postgresql-$major-pgvector") ;;
                timescaledb) missing+=("postgresql-$major-timescaledb") ;;
                postgis) missing+=("postgresql-$major-postgis-3") ;;
            esac
        done
    fi
fi

if ((EUID != 0)); then
    msg="run as root (sudo $0) or install these packages: ${missing[*]:-(none)}"
    ((${#to_build[@]} > 0)) && msg+="; and build from the Debian trixie sources: ${to_build[*]/vector/pgvector}"
    die "$msg"
fi

# --- apt ------------------------------------------------------------------------------------

mkdir -p "$STATE_DIR" "$BUILD_DIR"
: >"$APT_LOG"

# apt_run ARGS...: apt-get with its output in $APT_LOG, shown (tail) only on failure.
apt_run() {
    if ! apt-get "$@" >>"$APT_LOG" 2>&1; then
        tail -n 25 "$APT_LOG" >&2 || true
        die "apt-get $1 failed (full output: $APT_LOG)"
    fi
}

need_update=0
((${#missing[@]} > 0)) && need_update=1

if ((${#to_build[@]} > 0)); then
    # deb-src entry for trixie: source packages only, never binaries from the next release.
    trixie_src='# managed by datapunk-lake docker/setup-debian.sh: sources of pgvector, timescaledb, postgis
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
    if [[ ! -f $TRIXIE_SRC_LIST || $(<"$TRIXIE_SRC_LIST") != "$trixie_src" ]]; then
        say "adding a deb-src entry for Debian trixie ($TRIXIE_SRC_LIST)"
        printf '%s\n' "$trixie_src" >"$TRIXIE_SRC_LIST"
        need_update=1
    fi
    compgen -G '/var/lib/apt/lists/*_dists_trixie_main_source_Sources*' >/dev/null || need_update=1
fi

if ((need_update)); then
    say "apt-get update…"
    apt_run update
fi

# Debian's rabbitmq-server starts its service (and epmd) on install, etcd-server and patroni
# theirs; the lake runs its own. A policy-rc.d that refuses those services while apt runs
# (others start as before); quiet_monitoring_services then disables them.
readonly POLICY_RC=/usr/sbin/policy-rc.d
policy_added=0
if ((${#missing[@]} > 0)); then
    if [[ ! -e $POLICY_RC ]]; then
        printf '#!/bin/sh\n# datapunk-lake setup: no Debian rabbitmq-server, etcd or patroni service\ncase "$1" in rabbitmq-server | etcd | patroni) exit 101 ;; esac\nexit 0\n' >"$POLICY_RC"
        chmod 755 "$POLICY_RC"
        policy_added=1
    fi
    say "installing apt packages: ${missing[*]}…"
    apt_run install -y --no-install-recommends "${missing[@]}"
    ((policy_added)) && rm -f "$POLICY_RC"
fi
if [[ " ${missing[*]} " == *" rabbitmq-server "* ]]; then
    if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
        # and Erlang's epmd on 4369: each lake broker runs its own on a port of its own
        systemctl disable --now rabbitmq-server.service epmd.socket epmd.service >>"$APT_LOG" 2>&1 || true
    elif command -v update-rc.d >/dev/null; then
        update-rc.d rabbitmq-server disable >>"$APT_LOG" 2>&1 || true
    fi
fi
quiet_monitoring_services

# --- source builds (bookworm) ---------------------------------------------------------------

[[ -x $pg_config ]] || die "$pg_config not found after installing postgresql-$major"

# upstream_version DEBIAN_VERSION: 1:2.19.3+dfsg-1+deb13u1 -> 2.19.3
upstream_version() { sed -E 's/^[0-9]+://; s/-[^-]*$//; s/[+~](dfsg|ds).*$//' <<<"$1"; }

# fetch_source PKG: download (or reuse) the trixie source package, print the extracted dir.
fetch_source() {
    local pkg=$1 dir=$BUILD_DIR/$1 version dsc
    mkdir -p "$dir"
    : >"$dir/build.log"
    version=$(apt-cache showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1 || true)
    if [[ -n $version ]]; then
        dsc=$dir/${pkg}_${version#*:}.dsc
        if [[ ! -f $dsc ]]; then
            (cd "$dir" && apt-get source --download-only -qq "$pkg=$version") >>"$dir/build.log" 2>&1 ||
                die "could not download the source package $pkg $version (see $dir/build.log)"
        fi
    else
        # no index (offline?): reuse the newest source package fetched earlier, if any
        dsc=$(compgen -G "$dir/${pkg}_*.dsc" | sort -V | tail -n 1 || true)
        [[ -n $dsc ]] || die "no source package '$pkg' in the apt index; is $TRIXIE_SRC_LIST in effect (apt-get update)?"
        version=${dsc##*/"${pkg}"_}
        version=${version%.dsc}
    fi
    rm -rf "$dir/src"
    dpkg-source -x "$dsc" "$dir/src" >>"$dir/build.log" 2>&1 ||
        die "could not unpack $dsc (see $dir/build.log)"
    printf '%s\n%s\n' "$dir/src" "$(upstream_version "$version")"
}

# fetch_orig PKG: download (or reuse) the upstream tarball of the trixie source package (its
# checksum from the signed index checked by apt-helper), print the extracted dir and version.
fetch_orig() {
    local pkg=$1 dir=$BUILD_DIR/$1 version line uri name hash tarball
    mkdir -p "$dir"
    : >"$dir/build.log"
    version=$(apt-cache showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1 || true)
    if [[ -n $version ]]; then
        line=$(apt-get source --print-uris -qq "$pkg=$version" 2>>"$dir/build.log" | grep "\.orig\.tar\." | head -n 1 || true)
        read -r uri name _ hash <<<"$line"
        uri=${uri//\'/}
        [[ -n $name ]] || die "no upstream tarball for $pkg $version in the apt index (see $dir/build.log)"
        tarball=$dir/$name
        if [[ ! -f $tarball ]]; then
            /usr/lib/apt/apt-helper download-file "$uri" "$tarball.part" "$hash" >>"$dir/build.log" 2>&1 ||
                die "could not download $uri (see $dir/build.log)"
            mv "$tarball.part" "$tarball"
        fi
    else
        # no index (offline?): reuse the newest tarball fetched earlier, if any
        tarball=$(compgen -G "$dir/${pkg}_*.orig.tar.*" | sort -V | tail -n 1 || true)
        [[ -n $tarball ]] || die "no source package '$pkg' in the apt index; is $TRIXIE_SRC_LIST in effect (apt-get update)?"
        version=${tarball##*/"${pkg}"_}
        version=${version%.orig.tar.*}
    fi
    rm -rf "$dir/src"
    mkdir -p "$dir/src"
    tar -xf "$tarball" -C "$dir/src" --strip-components=1 >>"$dir/build.log" 2>&1 ||
        die "could not unpack $tarball (see $dir/build.log)"
    printf '%s\n%s\n' "$dir/src" "$(upstream_version "$version")"
}

# PostGIS on bookworm. Debian's postgresql-N-postgis-3 (3.3.2) owns the very files the build
# installs: postgis.control, postgis-3.so (the library name is the same for every 3.x),
# postgis_topology-3.so and the JIT bitcode of postgis-3. Two owners of one file fight: an apt
# upgrade of the package would put a 3.3 library back under databases whose extension is 3.5,
# and its stale bitcode would be inlined by the JIT into calls of the new library. So once the
# build has succeeded the package is removed (with its -scripts) and an apt pin keeps it from
# coming back (for instance as a dependency of Debian's `postgis` tools); the installed files
# then belong to no package. Not dpkg-buildpackage: trixie's debian/control wants what bookworm
# lacks (SFCGAL ≥ 1.3.1 built for it, the documentation toolchain), and the lake needs only the
# postgis extension: configured here without raster (no GDAL), address_standardizer and SFCGAL.
readonly POSTGIS_PIN=/etc/apt/preferences.d/datapunk-lake-postgis
remove_debian_postgis() {
    local pin="# managed by datapunk-lake docker/setup-debian.sh: PostGIS is built from source here
Package: postgresql-$major-postgis-3 postgresql-$major-postgis-3-scripts
Pin: release *
Pin-Priority: -1"
    local present
    mapfile -t present < <(missing_packages "postgresql-$major-postgis-3" "postgresql-$major-postgis-3-scripts")
    if ((${#present[@]} < 2)); then
        say "removing Debian's postgresql-$major-postgis-3 (3.3): the build replaces its files"
        apt_run remove -y "postgresql-$major-postgis-3" "postgresql-$major-postgis-3-scripts"
    fi
    [[ -f $POSTGIS_PIN && $(<"$POSTGIS_PIN") == "$pin" ]] || printf '%s\n' "$pin" >"$POSTGIS_PIN"
}

build_failed() {
    tail -n 25 "$2" >&2 || true
    die "building $1 failed; full log: $2"
}

for ext in "${to_build[@]}"; do
    case $ext in
        vector)
            mapfile -t src < <(fetch_source pgvector)
            ((${#src[@]} == 2)) || die "could not fetch the pgvector source package"
            log=$BUILD_DIR/pgvector/build.log
            say "building pgvector ${src[1]} for PostgreSQL $major…"
            # OPTFLAGS="": no -march=native, so the library runs on any x86-64 / arm64 machine.
            {
                make -C "${src[0]}" PG_CONFIG="$pg_config" OPTFLAGS="" &&
                    make -C "${src[0]}" install PG_CONFIG="$pg_config" OPTFLAGS=""
            } >>"$log" 2>&1 || build_failed pgvector "$log"
            ;;
        timescaledb)
            mapfile -t src < <(fetch_source timescaledb)
            ((${#src[@]} == 2)) || die "could not fetch the timescaledb source package"
            log=$BUILD_DIR/timescaledb/build.log
            say "building timescaledb ${src[1]} (Apache-2 edition) for PostgreSQL $major…"
            (
                cd "${src[0]}" &&
                    ./bootstrap -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
                        -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$pg_config" &&
                    make -C build -j "$(nproc)" &&
                    make -C build install
            ) >>"$log" 2>&1 || build_failed timescaledb "$log"
            ;;
        postgis)
            mapfile -t src < <(fetch_orig postgis)
            ((${#src[@]} == 2)) || die "could not fetch the postgis sources"
            log=$BUILD_DIR/postgis/build.log
            say "building postgis ${src[1]} (without raster) for PostgreSQL $major…"
            # with_llvm=no: no JIT bitcode (the JIT then calls the library instead of inlining it).
            (
                cd "${src[0]}" &&
                    ./configure --with-pgconfig="$pg_config" --without-raster --without-sfcgal \
                        --without-address-standardizer --without-gui &&
                    make -j "$(nproc)" with_llvm=no
            ) >>"$log" 2>&1 || build_failed postgis "$log"
            remove_debian_postgis
            make -C "${src[0]}" install with_llvm=no >>"$log" 2>&1 || build_failed postgis "$log"
            ;;
    esac
    extension_installed "$ext" || die "$ext was built but its files are not in $ext_dir / $lib_dir"
done

say "done in $((SECONDS - start_seconds)) s (PostgreSQL $major)"
