#!/usr/bin/env bash
# mkdeb.sh BUILD_DIR - build the .deb from `make install` into a staging
# root.  Depends are the Debian packages that own the shared libraries the
# binaries link (with their installed versions as minimums), plus fuse3 for
# fusermount3 and mount.fuse3.
set -eu
B=$(readlink -f "$1")
top=$(cd "$(dirname "$0")/.." && pwd)
root="$B/deb/root"
rm -rf "$B/deb"
make -C "$top" --no-print-directory -s install DESTDIR="$root" PREFIX=/usr UNITDIR=/lib/systemd/system
gzip -9n "$root/usr/share/man/man1/qstore.1" "$root/usr/share/man/man8/qstorefs.8"
version=$("$B/qstore" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
# only the libraries the binaries link directly (NEEDED), not theirs
needed=$(objdump -p "$B/qstore" "$B/qstorefs" | awk '/NEEDED/{print $2}' | sort -u)
deps=$(for so in $needed; do ldd "$B/qstorefs" "$B/qstore" | awk -v so="$so" '$1 == so {print $3; exit}'; done | sort -u | while read -r lib; do
	pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1) || true
	[ -n "$pkg" ] || pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1) || true
	[ -n "$pkg" ] && echo "$pkg (>= $(dpkg-query -W -f='${Version}' "$pkg" | sed 's/-[^-]*$//'))"
done | sort -u | paste -sd, | sed 's/,/, /g')
mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: qstorefs
Version: $version
Architecture: $arch
Maintainer: qstorefs developers <qstorefs@localhost>
Depends: $deps, fuse3
Section: utils
Priority: optional
Description: one container per model for BF16 and INT8, mounted with FUSE
 qstore packs a model's high-precision safetensors and its INT8 version into
 one container (INT8 codes plus the residual that rebuilds the original bytes
 exactly); qstorefs mounts a directory of containers and serves both
 precisions on demand.
CONTROL
deb="$B/qstorefs_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group "$root" "$deb" >/dev/null
echo "$deb"
