#!/usr/bin/env python3
"""qsread.py - a second qstore container reader, written from codec/FORMAT.md alone.

It shares no code with codec/ (it is Python; the C reader is the reference): if
FORMAT.md leaves something out, this reader gets it wrong and the test that
compares its output with the source model fails.  It favours being obviously
faithful to the document over speed.

    qsread.py CONTAINER OUTDIR [--lower int4,int3,...]
        writes OUTDIR/high/... and OUTDIR/int8/... (and OUTDIR/intN/..., the
        lower views of section 7, built from the INT8 view's files)

Exit status 0 when every file was decoded, every chunk hash and every file
SHA-256 matched; 1 with a message naming the problem otherwise.
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np
import xxhash
import zstandard

RANS_L = 1 << 31
MAGIC = b"\x89QSTORE\n"
CHUNK_LIMIT = 16 << 20
FREQ_TABLE_SLACK = 3146
BLOB, FLOAT, QUANT = 0, 1, 2
RAW, ZSTD, FSYM, QCODE, QRES, QDRV, QTUP = 0, 1, 2, 3, 4, 5, 6
# fmt -> (esize, exponent bits, mantissa bits, largest finite magnitude)
FORMATS = {1: (2, 8, 7, 0x7F7F), 2: (2, 5, 10, 0x7BFF), 3: (4, 8, 23, 0x7F7FFFFF)}


class Damage(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Damage(what)


def xxh3(b):
    return xxhash.xxh3_64_intdigest(b, seed=0)


# ---- 1. layout ------------------------------------------------------------


def read_layout(data):
    size = len(data)
    need(size >= 64 + 128, "too small to be a container")
    need(data[0:8] == MAGIC, "not a qstore container (bad magic)")
    ver, hsize = struct.unpack_from("<II", data, 8)
    need(ver in (2, 3, 4), f"format version {ver}, this reader knows 2 to 4")
    need(hsize == 64 and data[16:56] == bytes(40), "bad header")
    need(struct.unpack_from("<Q", data, 56)[0] == xxh3(data[0:56]), "header hash mismatch")
    t = data[size - 128:]
    need(t[0:8] == b"QSTTRAIL", "bad trailer magic")
    need(struct.unpack_from("<Q", t, 120)[0] == xxh3(t[0:120]), "trailer hash mismatch")
    (tver, tsize, csize, moff, mlen, mraw, coff, nch, eoff, next_, ihash) = struct.unpack_from(
        "<IIQQQQQQQQQ", t, 8)
    need(tver == ver and tsize == 128 and t[88:120] == bytes(32), "bad trailer")
    need(csize == size, f"recorded size {csize} != file size {size} (truncated?)")
    need(moff >= 64 and moff + mlen == coff, "manifest placement")
    need(coff + 32 * nch == eoff and eoff + 32 * next_ == size - 128, "table placement")
    need(mraw <= 1 << 30, "manifest too large")
    need(ihash == xxh3(data[moff:size - 128]), "index hash mismatch")
    raw = zstandard.ZstdDecompressor().decompress(data[moff:coff], max_output_size=mraw)
    need(len(raw) == mraw, "manifest length")
    lines = [json.loads(line) for line in raw.decode("utf-8").split("\n") if line]
    chunks = [struct.unpack_from("<QIIQQ", data, coff + 32 * i) for i in range(nch)]
    extents = [struct.unpack_from("<QQIIQ", data, eoff + 32 * i) for i in range(next_)]
    return moff, lines, chunks, extents


def read_manifest(lines):
    head = lines[0]
    need(head.get("format") == "qstore-manifest" and head.get("version") == 1, "manifest header")
    s, t, h, i = head["streams"], head["tensors"], head["high_files"], head["int8_files"]
    need(len(lines) == 1 + s + t + h + i, "manifest record count")
    streams = lines[1:1 + s]
    files = lines[1 + s + t:]
    return streams, files[:h], files[h:]


def check_stream(sid, st, chunks, moff):
    kind, fmt, es, elems = st["kind"], st["fmt"], st["esize"], st["elems"]
    if kind == BLOB:
        need(fmt == 0 and es == 1, f"stream {sid}: BLOB fmt/esize")
    else:
        need(kind in (FLOAT, QUANT) and fmt in FORMATS and es == FORMATS[fmt][0],
             f"stream {sid}: kind/fmt/esize")
    ce, n, first = st["chunk_elems"], st["chunks"], st["first_chunk"]
    if elems > 0:
        need(1 <= ce <= CHUNK_LIMIT // es and n == -(-elems // ce), f"stream {sid}: chunking")
    else:
        need(n == 0, f"stream {sid}: chunks of an empty stream")
    need(first + n <= len(chunks), f"stream {sid}: chunk range")
    limit = 1 + ce * es + FREQ_TABLE_SLACK
    for k in range(n):
        off, la, lb, _, _ = chunks[first + k]
        need(off >= 64 and 1 <= la <= limit and lb <= limit, f"stream {sid} chunk {k}: part sizes")
        need((lb >= 1) == (kind == QUANT), f"stream {sid} chunk {k}: part B")
        need(off + la + lb <= moff, f"stream {sid} chunk {k}: past the manifest")


def check_quant(sid, st, streams):
    cols = st["cols"]
    need(cols >= 1 and st["elems"] % cols == 0, f"stream {sid}: cols")
    sc = st["scale_stream"]
    need(0 <= sc < len(streams), f"stream {sid}: scale stream")
    ss = streams[sc]
    need(ss["kind"] == FLOAT and ss["fmt"] == st["fmt"] and ss["elems"] == st["elems"] // cols,
         f"stream {sid}: scale stream shape")


def face_size(st, face):
    return st["elems"] * st["esize"] if face == 0 else st["elems"]


def check_path(p):
    need(0 < len(p.encode()) <= 4095 and not p.startswith("/"), f"bad path {p!r}")
    need(all(c not in ("", ".", "..") for c in p.split("/")), f"bad path {p!r}")
    need(all(ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in p), f"control character in {p!r}")


def check_view(files, streams, extents):
    paths = set()
    for f in files:
        p = f["path"]
        check_path(p)
        need(p not in paths, f"{p}: listed twice")
        paths.add(p)
        a, n = f["first_extent"], f["extents"]
        need(a + n <= len(extents), f"{p}: extent range")
        pos = 0
        for fo, ln, sid, face, so in extents[a:a + n]:
            need(fo == pos and ln > 0, f"{p}: extents not back to back")
            need(sid < len(streams), f"{p}: extent names stream {sid}")
            st = streams[sid]
            need(face == 0 or (face == 1 and st["kind"] == QUANT), f"{p}: bad face")
            need(so + ln <= face_size(st, face), f"{p}: extent outside its face")
            pos += ln
        need(pos == f["size"], f"{p}: extents do not cover the file")
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts)):
            need("/".join(parts[:i]) not in paths, f"{p}: a file is also a directory")


# ---- 3. chunk parts: rANS and its symbols ---------------------------------


def varint(buf, pos):
    v = shift = 0
    while True:
        need(pos < len(buf) and shift < 64, "varint")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, pos


def freq_table(buf, pos, nsym):
    first, pos = varint(buf, pos)
    count, pos = varint(buf, pos)
    need(first + count <= nsym, "frequency table alphabet")
    freqs = []
    for _ in range(count):
        f, pos = varint(buf, pos)
        freqs.append(f)
    need(count == 0 or sum(freqs) == 4096, "frequencies do not sum to 4096")
    # slot -> symbol lookup over the 4096 slots
    lookup, starts, cum = [None] * 4096, {}, 0
    for i, f in enumerate(freqs):
        if f:
            starts[first + i] = (cum, f)
            for s in range(cum, cum + f):
                lookup[s] = first + i
            cum += f
    return (lookup, starts, count == 0), pos


class Rans:
    def __init__(self, buf, pos):
        need(len(buf) - pos >= 1, "rANS header")
        ways = buf[pos]
        need(ways in (1, 2, 4, 8, 16, 32), f"rANS ways {ways}")
        need(len(buf) - pos >= 1 + 8 * ways, "rANS header")
        self.ways = ways
        self.x = [struct.unpack_from("<Q", buf, pos + 1 + 8 * i)[0] for i in range(ways)]
        need(all(RANS_L <= x < 1 << 63 for x in self.x), "rANS initial state")
        pos += 1 + 8 * ways
        need((len(buf) - pos) % 4 == 0, "rANS stream does not end with whole words")
        self.words = list(struct.unpack_from(f"<{(len(buf) - pos) // 4}I", buf, pos))
        self.next = 0

    def state(self, j):  # element j of the part uses state j mod ways
        return j % self.ways

    def step(self, w, slot, s, f, b):
        x = f * (self.x[w] >> b) + slot - s
        if x < RANS_L:
            need(self.next < len(self.words), "rANS words exhausted")
            x = (x << 32) | self.words[self.next]
            self.next += 1
        self.x[w] = x

    def table(self, w, tab):
        lookup, starts, empty = tab
        need(not empty, "symbol from an empty table")
        slot = self.x[w] & 4095
        sym = lookup[slot]
        s, f = starts[sym]
        self.step(w, slot, s, f, 12)
        return sym

    def bits(self, w, k):
        slot = self.x[w] & ((1 << k) - 1)
        self.step(w, slot, slot, 1, k)
        return slot

    def uniform(self, w, n):
        slot = self.x[w] & 0xFFFF
        v = ((slot + 1) * n - 1) >> 16
        s, e = (v << 16) // n, ((v + 1) << 16) // n
        self.step(w, slot, s, e - s, 16)
        return v

    def count(self, w, n):
        if n == 1:
            return 0
        if n <= 1 << 16:
            if n & (n - 1) == 0:
                return self.bits(w, n.bit_length() - 1)
            return self.uniform(w, n)
        hi = self.count(w, ((n - 1) >> 16) + 1)
        v = hi << 16 | self.bits(w, 16)
        need(v < n, "count out of range")
        return v

    def finish(self):
        need(all(x == RANS_L for x in self.x), "rANS final state")
        need(self.next == len(self.words), "rANS words left over")


def sign_exp(r, w, tab, fmt, top, shift):
    _, e, m, _ = FORMATS[fmt]
    lookup, starts, empty = tab
    need(not empty, "symbol from an empty table")
    slot = r.x[w] & 4095
    sym = lookup[slot]          # peeked: the mantissa's coding depends on it
    if sym < 2 << e:
        sign, E = sym >> e, sym & ((1 << e) - 1)
        if E == 0:
            base, hi, k = 0, 0, 0
        else:
            base, k = E << m, shift
            hi = min(top, base | ((1 << m) - 1))
    else:
        sign, base, k = sym - (2 << e), 1, 0
        hi = min(top, (1 << m) - 1)
    need(top >= base, "sign+exponent symbol above its bound")
    first, last = -(-base >> k), hi >> k
    need(last >= first, "empty sign+exponent symbol")
    n = last - first + 1
    bw = n.bit_length() - 1
    if n == 1 << bw and bw <= 19:
        # joint step: the mantissa is the bw bits above the 12-bit slot
        s, f = starts[sym]
        v = (r.x[w] >> 12) & ((1 << bw) - 1)
        r.step(w, (v << 12) | slot, (v << 12) + s, f, 12 + bw)
    else:
        r.table(w, tab)
        v = r.count(w, n)
    return sign << (e + m) | (first + v) << k


def read_shift(part, fmt):
    need(len(part) >= 2 and part[1] <= FORMATS[fmt][2], "bad shift byte")
    return part[1]


# ---- 4. quantisation buckets ------------------------------------------------


def value(fmt, mag):
    """The float32 equal to the bit pattern `mag` of format fmt (exact)."""
    if fmt == 1:
        return np.array([mag << 16], dtype=np.uint32).view(np.float32)[0]
    if fmt == 2:
        return np.float32(np.array([mag], dtype=np.uint16).view(np.float16)[0])
    return np.array([mag], dtype=np.uint32).view(np.float32)[0]


def fl32div(a, s):
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return np.float32(a) / np.float32(s)


def rquot(fmt, mag, s):
    return float(np.rint(np.clip(fl32div(value(fmt, mag), s), np.float32(-200), np.float32(200))))


def buckets(fmt, scale_bits, shift, cache):
    key = (fmt, scale_bits, shift)
    if key in cache:
        return cache[key]
    _, _, m, magmax = FORMATS[fmt]
    s = value(fmt, scale_bits)         # any pattern: negative, inf and NaN scales fail below
    table = {q: (0, 0) for q in range(-128, 128)}   # (lo, n)
    top0 = 0
    if s > 0 and s <= value(fmt, magmax):
        def first_at_least(k):         # b_k: smallest m with r(m) >= k, magmax + 1 if none
            lo, hi = 0, magmax + 1
            while lo < hi:
                mid = (lo + hi) // 2
                if rquot(fmt, mid, s) >= k:
                    hi = mid
                else:
                    lo = mid + 1
            return lo
        lo, hi = 0, magmax             # cap: largest m with fl32(value(m)/s) <= 127.5
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fl32div(value(fmt, mid), s) <= np.float32(127.5):
                lo = mid
            else:
                hi = mid - 1
        cap = lo
        b = {k: first_at_least(k) for k in range(1, 129)}
        top0 = b[1] - 1
        for k in range(1, 128):
            end = cap + 1 if k == 127 else b[k + 1]
            table[k] = (b[k], max(0, end - b[k]))
            end = min(b[k + 1], cap + 1)
            table[-k] = (b[k], max(0, end - b[k]))
        table[-128] = (b[128], max(0, cap + 1 - b[128]))
    for q, (lo0, n0) in table.items():      # -> (lo, n, shift) in units of 2^shift
        if lo0 >= 1 << m and n0:
            lo1 = -(-lo0 >> shift)
            table[q] = (lo1, max(0, ((lo0 + n0 - 1) >> shift) - lo1 + 1), shift)
        else:
            table[q] = (lo0, n0, 0)
    cache[key] = (table, top0)
    return cache[key]


# ---- stream decoding --------------------------------------------------------


def elem_bytes(vals, es):
    return b"".join(v.to_bytes(es, "little") for v in vals)


def decode_plain(part, size, what):
    """RAW or ZSTD part; None when it is one of the float codecs."""
    need(len(part) >= 1, f"{what}: empty part")
    if part[0] == RAW:
        need(len(part) - 1 == size, f"{what}: RAW size")
        return part[1:]
    if part[0] == ZSTD:
        out = zstandard.ZstdDecompressor().decompress(part[1:], max_output_size=size)
        need(len(out) == size, f"{what}: ZSTD size")
        return out
    return None


def decode_fsym(part, fmt, n, what):
    need(part[0] == FSYM, f"{what}: codec tag {part[0]}")
    es, e, m, _ = FORMATS[fmt]
    shift = read_shift(part, fmt)
    tab, pos = freq_table(part, 2, (2 << e) + 2)
    r = Rans(part, pos)
    top = (1 << (e + m)) - 1
    vals = [sign_exp(r, r.state(j), tab, fmt, top, shift) for j in range(n)]
    r.finish()
    return elem_bytes(vals, es)


def decode_qcode(part, n, what):
    out = decode_plain(part, n, what)
    if out is not None:
        return out
    if part[0] == QTUP:
        return decode_qtup(part, n, what)
    need(part[0] == QCODE, f"{what}: codec tag {part[0]}")
    tab, pos = freq_table(part, 1, 256)
    r = Rans(part, pos)
    codes = bytes((r.table(r.state(j), tab) - 128) & 0xFF for j in range(n))
    r.finish()
    return codes


def decode_qtup(part, n, what):
    """QTUP: tuples of m codes, base-k digits lowest first, one table symbol each."""
    need(len(part) >= 3, f"{what}: QTUP header")
    m, k = part[1], part[2]
    need(2 <= m <= 8 and 1 <= k <= 16 and k ** m <= 256, f"{what}: QTUP m={m} k={k}")
    need(len(part) >= 3 + k, f"{what}: QTUP alphabet")
    alpha = part[3:3 + k]
    need(all(alpha[i] < alpha[i + 1] for i in range(k - 1)), f"{what}: QTUP alphabet order")
    tab, pos = freq_table(part, 3 + k, k ** m)
    r = Rans(part, pos)
    codes = bytearray()
    tuples = -(-n // m)
    for t in range(tuples):
        y = r.table(r.state(t), tab)
        for i in range(m):
            d, y = y % k, y // k
            if t * m + i < n:
                codes.append((alpha[d] - 128) & 0xFF)
            else:
                need(d == 0, f"{what}: QTUP digit past the last code")
    r.finish()
    return bytes(codes)


def decode_qres(part, fmt, codes, row_scale, cache, what):
    es, e, m, _ = FORMATS[fmt]
    out = decode_plain(part, len(codes) * es, what)
    if out is not None:
        return out
    need(part[0] == QRES, f"{what}: codec tag {part[0]}")
    shift = read_shift(part, fmt)
    tab, pos = freq_table(part, 2, (2 << e) + 2)
    r = Rans(part, pos)
    vals = []
    for j, c in enumerate(codes):
        q = c - 256 if c > 127 else c
        table, top0 = buckets(fmt, row_scale(j), shift, cache)
        if q == 0:
            vals.append(sign_exp(r, r.state(j), tab, fmt, top0, shift))
            continue
        lo, n, s = table[q]
        need(n > 0, f"{what}: element {j} in an empty bucket")
        v = 0 if n == 1 else r.uniform(r.state(j), n) if n <= 1 << 16 else r.count(r.state(j), n)
        vals.append((1 << (8 * es - 1) if q < 0 else 0) | (lo + v) << s)
    r.finish()
    return elem_bytes(vals, es)


def floats32(high, fmt):
    """The chunk's floats as float32 (exact) and which of them are finite."""
    if fmt == 1:
        bits = np.frombuffer(high, dtype=np.uint16).astype(np.uint32)
        return (bits << 16).view(np.float32), (bits & 0x7FFF) <= 0x7F7F
    if fmt == 2:
        bits = np.frombuffer(high, dtype=np.uint16)
        return bits.view(np.float16).astype(np.float32), (bits & 0x7FFF) <= 0x7BFF
    bits = np.frombuffer(high, dtype=np.uint32)
    return bits.view(np.float32), (bits & 0x7FFFFFFF) <= 0x7F7FFFFF


def derive_codes(high, fmt, e0, cols, row_scale_bits):
    """QDRV: the section 4 quantiser over the floats, row by row."""
    v, finite = floats32(high, fmt)
    out = np.zeros(len(v), dtype=np.int8)
    j = 0
    while j < len(v):
        r = (e0 + j) // cols
        end = min(len(v), (r + 1) * cols - e0)
        s = value(fmt, row_scale_bits(j))
        if s > 0 and np.isfinite(s):
            with np.errstate(over="ignore", invalid="ignore"):
                t = np.clip(v[j:end] / np.float32(s), np.float32(-200), np.float32(200))
            q = np.clip(np.rint(t), -128, 127)
            out[j:end] = np.where(finite[j:end], q, 0).astype(np.int8)
        j = end
    return out.tobytes()


class Container:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        self.moff, lines, self.chunks, self.extents = read_layout(self.data)
        self.streams, self.high, self.int8 = read_manifest(lines)
        for sid, st in enumerate(self.streams):
            check_stream(sid, st, self.chunks, self.moff)
            if st["kind"] == QUANT:
                check_quant(sid, st, self.streams)
        check_view(self.high, self.streams, self.extents)
        check_view(self.int8, self.streams, self.extents)
        self.faces = {}
        self.bucket_cache = {}

    def codec_counts(self):
        """How many chunk parts each codec holds, as 'A: NAME n ..., B: ...'."""
        names = {RAW: "RAW", ZSTD: "ZSTD", FSYM: "FSYM", QCODE: "QCODE", QRES: "QRES", QDRV: "QDRV", QTUP: "QTUP"}
        out = []
        for which in (0, 1):
            n = {}
            for idx in range(len(self.chunks)):
                p = self.part(idx, which)
                if p:
                    n[names.get(p[0], str(p[0]))] = n.get(names.get(p[0], str(p[0])), 0) + 1
            out.append("AB"[which] + ": " + " ".join(f"{k} {v}" for k, v in sorted(n.items())))
        return ", ".join(out)

    def part(self, idx, which):
        off, la, lb, ha, hb = self.chunks[idx]
        return self.data[off:off + la] if which == 0 else self.data[off + la:off + la + lb]

    def face(self, sid, face):
        """The whole decoded face of a stream (HIGH bytes or Q codes)."""
        if (sid, face) not in self.faces:
            self.faces[(sid, face)] = self.decode_stream(sid, face)
        return self.faces[(sid, face)]

    def decode_stream(self, sid, face):
        st = self.streams[sid]
        es, ce, out = st["esize"], st["chunk_elems"], []
        for k in range(st["chunks"]):
            n = min(ce, st["elems"] - k * ce)
            idx = st["first_chunk"] + k
            what = f"stream {sid} ({st['name']}) chunk {k}"
            _, _, _, ha, hb = self.chunks[idx]
            a = self.part(idx, 0)
            if st["kind"] == QUANT and len(a) == 1 and a[0] == QDRV:
                out.append(self.derived_chunk(st, k, idx, n, face, what))
                continue
            if st["kind"] == QUANT:
                codes = decode_qcode(a, n, what)
                need(xxh3(codes) == ha, f"{what}: code hash mismatch")
                if face == 1:
                    out.append(codes)
                    continue
                high = decode_qres(self.part(idx, 1), st["fmt"], codes, self.row_scale(st, k),
                                   self.bucket_cache, what)
                need(xxh3(high) == hb, f"{what}: residual hash mismatch")
                out.append(high)
                continue
            plain = decode_plain(a, n * es, what)
            if plain is None:
                need(st["kind"] == FLOAT, f"{what}: float codec in a BLOB stream")
                plain = decode_fsym(a, st["fmt"], n, what)
            need(xxh3(plain) == ha, f"{what}: hash mismatch")
            out.append(plain)
        return b"".join(out)

    def row_scale(self, st, k):
        """Element j of chunk k -> the bits of its row's scale."""
        scales, es = self.face(st["scale_stream"], 0), st["esize"]
        row0, cols = k * st["chunk_elems"], st["cols"]

        def at(j):
            r = (row0 + j) // cols
            return int.from_bytes(scales[r * es:(r + 1) * es], "little")
        return at

    def derived_chunk(self, st, k, idx, n, face, what):
        """A QDRV chunk: the floats of part B, or the codes computed from them."""
        _, _, _, ha, hb = self.chunks[idx]
        b = self.part(idx, 1)
        need(len(b) >= 1 and b[0] in (RAW, FSYM), f"{what}: QDRV with part B codec {b[:1]}")
        high = decode_plain(b, n * st["esize"], what) if b[0] == RAW else decode_fsym(b, st["fmt"], n, what)
        need(xxh3(high) == hb, f"{what}: float hash mismatch")
        if face == 0:
            return high
        codes = derive_codes(high, st["fmt"], k * st["chunk_elems"], st["cols"], self.row_scale(st, k))
        need(xxh3(codes) == ha, f"{what}: derived code hash mismatch")
        return codes

    def file_bytes(self, f):
        a, n = f["first_extent"], f["extents"]
        parts = [self.face(sid, face)[so:so + ln] for _, ln, sid, face, so in self.extents[a:a + n]]
        body = b"".join(parts)
        need(hashlib.sha256(body).hexdigest() == f["sha256"], f"{f['path']}: SHA-256 mismatch")
        return body



# ---- 7. lower views (generated from the INT8 view) --------------------------

DSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
         "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
FMT_DTYPE = {1: "BF16", 2: "F16", 3: "F32"}


def rne_div(a, b):
    """round-half-even(a / b) elementwise, b > 0, in integers"""
    s = np.where(a < 0, -1, 1)
    x = np.abs(a)
    q, r = x // b, x % b
    q = q + ((2 * r > b) | ((2 * r == b) & (q % 2 == 1)))
    return s * q


def to_dtype(v32, fmt):
    """binary32 values (>= 0) rounded to nearest-even in the format, as bits"""
    if fmt == 3:
        return v32.view(np.uint32).astype(np.uint64)
    if fmt == 2:
        return v32.astype(np.float16).view(np.uint16).astype(np.uint64)
    b = v32.view(np.uint32).astype(np.uint64)
    return (b + 0x7FFF + ((b >> 16) & 1)) >> 16


def from_dtype(bits, fmt):
    if fmt == 3:
        return bits.astype(np.uint32).view(np.float32)
    if fmt == 2:
        return bits.astype(np.uint16).view(np.float16).astype(np.float32)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def low_codes_scales(q8, sbits, n, fmt):
    """7.1: the N-bit codes and their scales (bits) of one weight"""
    q = q8.astype(np.int64)
    rows, cols = q.shape
    s = from_dtype(sbits, fmt)
    if n == 4:
        g = q.reshape(rows, cols // 128, 128)
        m = np.abs(g).max(axis=2)
        c = np.where(m[:, :, None] > 0, rne_div(7 * g, np.maximum(m, 1)[:, :, None]), 0).reshape(rows, cols)
        v = (s[:, None] * m.astype(np.float32)).astype(np.float32) / np.float32(7)
        return c, to_dtype(v.astype(np.float32), fmt)
    d = 1 << (8 - n)
    c = np.clip(rne_div(q, d), -(1 << (n - 1)), (1 << (n - 1)) - 1)
    return c, to_dtype((s * np.float32(d)).astype(np.float32)[:, None], fmt)


def pack_rows(c, n):
    """7.2: each row a little-endian bit string of 32-bit words"""
    rows, cols = c.shape
    u = (c + (1 << (n - 1))).astype(np.uint64)
    bits = ((u[:, :, None] >> np.arange(n, dtype=np.uint64)) & 1).astype(np.uint8).reshape(rows, cols * n)
    words = -(-cols * n // 32)
    bits = np.pad(bits, ((0, 0), (0, words * 32 - cols * n)))
    return np.packbits(bits, axis=1, bitorder="little").tobytes()


def st_header(meta, ents):
    """the reference writer's header: compact ASCII JSON, __metadata__ first, spaces to a multiple of 8"""
    parts = ['"__metadata__":' + json.dumps(meta if meta is not None else {"format": "pt"}, separators=(",", ":"))]
    at = 0
    for name, dtype, shape, data in ents:
        d = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        parts.append(json.dumps(name) + ":" + json.dumps(d, separators=(",", ":")))
        at += len(data)
    h = ("{" + ",".join(parts) + "}").encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(e[3] for e in ents)


class Lower:
    """View N built from the INT8 view's files of container C."""

    def __init__(self, c, n):
        self.c, self.n = c, n
        self.packed, self.floated, self.data_bytes = set(), [], {}

    def weight(self, f, body, ds, name, t, tensors):
        """The stream when tensor T is a quantised weight (7.2), else None"""
        c = self.c
        b, e = t["data_offsets"]
        sc = tensors.get(name + "_scale")
        if t["dtype"] != "I8" or len(t["shape"]) != 2 or e == b or sc is None:
            return None
        ext = {x[0]: x for x in c.extents[f["first_extent"]:f["first_extent"] + f["extents"]]}
        x = ext.get(ds + b)
        if not x or x[1] != e - b or x[3] != 1 or x[4] != 0:
            return None
        st = c.streams[x[2]]
        if st["kind"] != QUANT or st["elems"] != e - b or t["shape"][1] != st["cols"]:
            return None
        sb, se = sc["data_offsets"]
        y = ext.get(ds + sb)
        if (not y or y[1] != se - sb or y[3] != 0 or y[4] != 0 or y[2] != st["scale_stream"]
                or sc["shape"] != [t["shape"][0], 1]):
            return None
        return x[2]

    def safetensors(self, f):
        n, body = self.n, self.c.file_bytes(f)
        hl = struct.unpack_from("<Q", body, 0)[0]
        tensors = json.loads(body[8:8 + hl])
        meta = tensors.pop("__metadata__", None)
        ds = 8 + hl
        roles = {k: self.weight(f, body, ds, k, t, tensors) for k, t in tensors.items()}
        scales = {k + "_scale" for k, sid in roles.items() if sid is not None}
        ents = []
        for k, t in tensors.items():
            b, e = t["data_offsets"]
            sid = roles[k]
            if k in scales:
                continue
            if sid is None:
                ents.append((k, t["dtype"], t["shape"], body[ds + b:ds + e]))
                continue
            st = self.c.streams[sid]
            rows, cols = t["shape"]
            ok = st["chunk_elems"] % cols == 0 and (n != 4 or cols % 128 == 0)
            if not ok:
                self.floated.append(k)
                ents.append((k, FMT_DTYPE[st["fmt"]], t["shape"], self.c.face(sid, 0)))
                continue
            q8 = np.frombuffer(body[ds + b:ds + e], np.int8).reshape(rows, cols)
            sb, se = tensors[k + "_scale"]["data_offsets"]
            es = FORMATS[st["fmt"]][0]
            sbits = np.frombuffer(body[ds + sb:ds + se], np.uint16 if es == 2 else np.uint32).astype(np.uint64)
            codes, sc = low_codes_scales(q8, sbits, n, st["fmt"])
            g = sc.shape[1]
            ents.append((k + "_packed", "I32", [rows, -(-cols * n // 32)], pack_rows(codes, n)))
            ents.append((k + "_shape", "I64", [2], struct.pack("<qq", rows, cols)))
            ents.append((k + "_scale", FMT_DTYPE[st["fmt"]], [rows, g],
                         sc.astype(np.uint16 if es == 2 else np.uint32).tobytes()))
            self.packed.add(k)
        ents.sort(key=lambda x: (-DSIZE.get(x[1], 0), x[0].encode()))
        out = st_header(meta, ents)
        self.data_bytes[f["path"]] = sum(len(x[3]) for x in ents)
        return out

    def config(self, j):
        qc = j.get("quantization_config")
        g = qc.get("config_groups", {}).get("group_0", {}) if isinstance(qc, dict) else {}
        w = g.get("weights") if isinstance(g, dict) else None
        if not isinstance(w, dict) or not isinstance(qc.get("ignore"), list):
            return None
        qc["format"] = g["format"] = "pack-quantized"
        w["num_bits"] = self.n
        w["strategy"] = "group" if self.n == 4 else "channel"
        w["group_size"] = 128 if self.n == 4 else None
        qc["ignore"] += [k[:-7] if k.endswith(".weight") else k for k in self.floated]
        return j

    def index(self, path, j):
        wm = j.get("weight_map")
        if not isinstance(wm, dict):
            return None
        nw, total, seen = {}, 0, set()
        d = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
        for k, shard in wm.items():
            if k in self.packed:
                nw[k + "_packed"] = nw[k + "_shape"] = shard
            elif not (k.endswith("_scale") and k[:-6] in set(self.floated)):
                nw[k] = shard
            if shard not in seen:
                seen.add(shard)
                total += self.data_bytes.get(d + shard, 0)
        j["weight_map"] = nw
        if not isinstance(j.get("metadata"), dict):
            j["metadata"] = {}
        j["metadata"]["total_size"] = total
        return j

    def files(self):
        """path -> bytes of every file of the view"""
        out = {}
        for f in self.c.int8:
            if f["path"].endswith(".safetensors"):
                out[f["path"]] = self.safetensors(f)
        for f in self.c.int8:
            p = f["path"]
            if p in out:
                continue
            body = self.c.file_bytes(f)
            j = None
            if p == "config.json" or p.endswith(".safetensors.index.json"):
                try:
                    j = json.loads(body)
                except ValueError:
                    j = None
                if isinstance(j, dict):
                    j = self.config(j) if p == "config.json" else self.index(p, j)
            out[p] = body if j is None else (json.dumps(j, indent=2, ensure_ascii=False) + "\n").encode()
        return out


def write(root, path, body):
    dst = os.path.join(root, path)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "wb") as o:
        o.write(body)


def main(argv):
    lower = []
    if len(argv) == 5 and argv[3] == "--lower":
        lower = [int(v[3:]) for v in argv[4].split(",") if v in ("int2", "int3", "int4", "int5", "int6", "int7")]
        argv = argv[:3]
    if len(argv) != 3:
        print(__doc__.strip().split("\n")[2].strip(), file=sys.stderr)
        return 2
    try:
        c = Container(argv[1])
        for view, files in (("high", c.high), ("int8", c.int8)):
            for f in files:
                write(os.path.join(argv[2], view), f["path"], c.file_bytes(f))
        for n in lower:
            for path, body in Lower(c, n).files().items():
                write(os.path.join(argv[2], f"int{n}"), path, body)
        print(f"qsread: {argv[1]}: part codecs {c.codec_counts()}")
    except (Damage, KeyError, ValueError, TypeError, zstandard.ZstdError) as e:
        print(f"qsread: {argv[1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
