#!/usr/bin/env bash
# Builds, from Debian packages, the base images that the Dockerfile and
# docker-compose.yml otherwise pull from a registry, for machines that have a
# Docker engine but no registry (CI here). Idempotent: an image that already
# exists is kept, so a second run takes a second.
#
#   tenantsync-local/debian:bookworm        debootstrap minbase + ca-certificates
#   tenantsync-local/golang:1.26-bookworm   the above + this machine's Go toolchain (stands in for golang:1.26-bookworm)
#   tenantsync-local/static:nonroot         passwd/group, CA certificates, /tmp (stands in for distroless/static:nonroot)
#   tenantsync-local/postgres:15            minbase + postgresql-15 + an entrypoint that initdb's like the official image
#
# docker-compose.local.yml points the build and the postgres service at them.
# FORCE=1 rebuilds all four. DEBIAN_MIRROR overrides the mirror apt uses.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "local-images: $*"; }
die() { echo "local-images: FATAL: $*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer"

BASE=tenantsync-local/debian:bookworm
GOIMG=tenantsync-local/golang:1.26-bookworm
STATIC=tenantsync-local/static:nonroot
PG=tenantsync-local/postgres:15
CACHE="${LOCAL_IMAGES_CACHE:-/var/cache/tenantsync-local}"
GOROOT_HOST="$(go env GOROOT 2>/dev/null || echo /usr/local/go)"
GOVERSION_HOST="$("$GOROOT_HOST/bin/go" env GOVERSION 2>/dev/null || true)"

# build is docker build without the legacy builder's deprecation notice
# (these engines have no BuildKit); real errors still reach stderr.
build() { docker build -q "$@" >/dev/null 2> >(grep -v -e DEPRECATED -e buildx -e 'legacy builder' -e '^ *$' >&2); }

have() { docker image inspect "$1" >/dev/null 2>&1 && [[ -z "${FORCE:-}" ]]; }

mirror() {
	if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
	local m
	m="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources |
		grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -1 | tr -d ' ')"
	echo "${m:-http://deb.debian.org/debian}"
}

# strip removes what a container never reads, to keep the images small.
strip() {
	local d="$1"
	rm -rf "$d"/usr/share/{doc,man,info,locale,lintian,linda}/* "$d"/var/cache/apt/* "$d"/var/lib/apt/lists/* \
		"$d"/var/cache/debconf/*-old "$d"/var/log/*.log "$d"/debootstrap
}

# rootfs builds (or reuses) a debootstrap tree under $CACHE.
rootfs() {
	local name="$1" include="$2" dir="$CACHE/$1"
	if [[ -f "$dir/.done" && -z "${FORCE:-}" ]]; then echo "$dir"; return; fi
	command -v debootstrap >/dev/null || {
		say "installing debootstrap" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || die "apt-get install debootstrap failed"
	}
	rm -rf "$dir"; mkdir -p "$CACHE/debs"
	say "debootstrap $name (--include=$include) from $(mirror)" >&2
	debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$include" bookworm "$dir" "$(mirror)" >"$CACHE/$name.log" 2>&1 ||
		{ tail -20 "$CACHE/$name.log" >&2; die "debootstrap $name failed (log: $CACHE/$name.log)"; }
	strip "$dir"
	touch "$dir/.done"
	echo "$dir"
}

import() { # import <dir> <image> [--change ...]
	local dir="$1" img="$2"; shift 2
	tar --numeric-owner --exclude=./.done --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -C "$dir" -c . |
		docker import "$@" - "$img" >/dev/null
}

if have "$BASE"; then say "$BASE exists"; else
	import "$(rootfs base ca-certificates)" "$BASE" --change 'CMD ["/bin/bash"]'
	say "built $BASE"
fi

# The build stage downloads modules through whatever this machine's egress
# is, so the local build image trusts the CAs the machine trusts (a
# TLS-inspecting egress proxy's included); the official image and the
# Dockerfile are untouched by this.
HOST_CA=/etc/ssl/certs/ca-certificates.crt
HOST_CA_SUM="$(sha256sum "$HOST_CA" 2>/dev/null | cut -c1-16 || true)"
if have "$GOIMG" && [[ "$(docker image inspect -f '{{index .Config.Labels "go.version"}} {{index .Config.Labels "ca.sum"}}' "$GOIMG")" == "$GOVERSION_HOST $HOST_CA_SUM" ]]; then
	say "$GOIMG exists ($GOVERSION_HOST)"
else
	[[ -x "$GOROOT_HOST/bin/go" ]] || die "no Go toolchain at $GOROOT_HOST"
	tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/usr/local" "$tmp/go"
	cp -a "$GOROOT_HOST" "$tmp/usr/local/go"
	rm -rf "$tmp/usr/local/go/pkg/tool/"*/{api,test2json.debug} "$tmp/usr/local/go/test" "$tmp/usr/local/go/doc"
	mkdir -p "$tmp/etc/ssl/certs"
	if [[ -s "$HOST_CA" ]]; then cp "$HOST_CA" "$tmp/etc/ssl/certs/"; else
		docker run --rm "$BASE" cat "$HOST_CA" >"$tmp/etc/ssl/certs/ca-certificates.crt"; fi
	# The toolchain goes on top of the base as one layer (docker build, not
	# import, so the base layer is shared).
	cat >"$tmp/Dockerfile" <<-EOF
		FROM $BASE
		COPY usr/local/go /usr/local/go
		COPY etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
		ENV GOLANG_VERSION=${GOVERSION_HOST#go} GOTOOLCHAIN=local GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go
		WORKDIR /go
		LABEL go.version=$GOVERSION_HOST ca.sum=$HOST_CA_SUM
	EOF
	build -t "$GOIMG" "$tmp"
	rm -rf "$tmp"; trap - EXIT
	say "built $GOIMG ($GOVERSION_HOST)"
fi

if have "$STATIC"; then say "$STATIC exists"; else
	base="$(rootfs base ca-certificates)"
	tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
	# What distroless/static:nonroot holds that the binaries use: the users
	# (USER nonroot:nonroot is resolved from /etc/passwd), CA certificates,
	# time zones when present (none: the binaries load none), a writable /tmp and nonroot's home.
	mkdir -p "$tmp/etc/ssl/certs" "$tmp/tmp" "$tmp/home/nonroot" "$tmp/root" "$tmp/usr/share"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$tmp/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n' >"$tmp/etc/group"
	cp "$base/etc/ssl/certs/ca-certificates.crt" "$tmp/etc/ssl/certs/"
	echo 'hosts: files dns' >"$tmp/etc/nsswitch.conf" # /etc/hosts (extra_hosts) before DNS, as in distroless
	[[ -d "$base/usr/share/zoneinfo" ]] && cp -a "$base/usr/share/zoneinfo" "$tmp/usr/share/"
	chmod 1777 "$tmp/tmp"; chown 65532:65532 "$tmp/home/nonroot"; chmod 700 "$tmp/root"
	tar --numeric-owner -C "$tmp" -c . | docker import --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' - "$STATIC" >/dev/null
	rm -rf "$tmp"; trap - EXIT
	say "built $STATIC"
fi

if have "$PG"; then say "$PG exists"; else
	dir="$(rootfs postgres postgresql-15)"
	# postgresql-common's postinst made a cluster the image does not use.
	rm -rf "$dir"/var/lib/postgresql/15 "$dir"/etc/postgresql/15
	import "$dir" "$PG.rootfs"
	tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
	cp scripts/local-postgres-entrypoint.sh "$tmp/docker-entrypoint.sh"
	cat >"$tmp/Dockerfile" <<-EOF
		FROM $PG.rootfs
		COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
		RUN chmod 755 /usr/local/bin/docker-entrypoint.sh && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
		 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql && chmod 700 /var/lib/postgresql/data
		ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data
		VOLUME /var/lib/postgresql/data
		STOPSIGNAL SIGINT
		EXPOSE 5432
		ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
		CMD ["postgres"]
	EOF
	build -t "$PG" "$tmp"
	docker rmi "$PG.rootfs" >/dev/null 2>&1 || true
	rm -rf "$tmp"; trap - EXIT
	say "built $PG"
fi

docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^tenantsync-local/' | sed 's/^/local-images:   /'
