#!/usr/bin/env bash
# mkdeb.sh BUILD_DIR - build the .deb from `make install` into a staging
# root, and qstorefs-dbgsym with the binaries' debug symbols (found by
# build-id, as Debian's own -dbgsym packages).  Depends are the Debian
# packages that own the shared libraries the binaries link (with their
# installed versions as minimums), plus fuse3 for fusermount3 and
# mount.fuse3.  lintian finds nothing to say about either (test_hosts.py).
set -eu
B=$(readlink -f "$1")
top=$(cd "$(dirname "$0")/.." && pwd)
root="$B/deb/root"
rm -rf "$B/deb"
make -C "$top" --no-print-directory -s install DESTDIR="$root" PREFIX=/usr UNITDIR=/lib/systemd/system
gzip -9n "$root/usr/share/man/man1/qstore.1" "$root/usr/share/man/man8/qstorefs.8"
version=$("$B/qstore" --version | awk '{print $2}')
maint=${DEB_MAINTAINER:-qstorefs maintainers <maintainers@qstorefs.dev>}
doc="$root/usr/share/doc/qstorefs"
install -m 0644 "$top/packaging/copyright" "$doc/copyright"
head -1 "$top/packaging/changelog" | grep -q "^qstorefs ($version)" ||
	{ echo "mkdeb: packaging/changelog does not start with version $version" >&2; exit 1; }
gzip -9nc "$top/packaging/changelog" > "$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
# debug symbols by build-id into the -dbgsym tree, then strip
dbg="$B/deb/dbgsym" ids=
for bin in "$root/usr/bin/qstore" "$root/usr/bin/qstorefs"; do
	id=$(readelf -n "$bin" | awk '/Build ID/ {print $3}')
	ids="$ids${ids:+ }$id"
	mkdir -p "$dbg/usr/lib/debug/.build-id/${id:0:2}"
	objcopy --only-keep-debug --compress-debug-sections "$bin" "$dbg/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
	chmod 0644 "$dbg/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
	strip --strip-unneeded --remove-section=.comment --remove-section=.note "$bin"
done
mkdir -p "$dbg/usr/share/doc"
ln -s qstorefs "$dbg/usr/share/doc/qstorefs-dbgsym"   # as dh_strip does
md5sums() { (cd "$1" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | LC_ALL=C sort | xargs -r md5sum) > "$1/DEBIAN/md5sums"; }
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
Maintainer: $maint
Depends: $deps, fuse3
Section: utils
Priority: optional
Description: one container per model for BF16 and INT8, mounted with FUSE
 qstore packs a model's high-precision safetensors and its INT8 version into
 one container (INT8 codes plus the residual that rebuilds the original bytes
 exactly); qstorefs mounts a directory of containers and serves both
 precisions on demand.
CONTROL
md5sums "$root"
deb="$B/qstorefs_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group "$root" "$deb" >/dev/null
mkdir -p "$dbg/DEBIAN"
cat > "$dbg/DEBIAN/control" <<CONTROL
Package: qstorefs-dbgsym
Version: $version
Auto-Built-Package: debug-symbols
Build-Ids: $ids
Architecture: $arch
Maintainer: $maint
Depends: qstorefs (= $version)
Section: debug
Priority: optional
Description: debug symbols for qstorefs
 The debug symbols of qstore and qstorefs, found by build-id under
 /usr/lib/debug/.build-id.
CONTROL
md5sums "$dbg"
dpkg-deb --build --root-owner-group "$dbg" "$B/qstorefs-dbgsym_${version}_${arch}.deb" >/dev/null
echo "$deb"
