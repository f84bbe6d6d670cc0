"""Bounded-memory aggregation: finished request records and metric values go to disk as they come.

A saturated run produces tens of millions of chunk arrival times; holding them until the end
of the point made the client's memory grow with the run's length. Workers instead append each
finished record to a `RecordSpill` (one `requests.jsonl.gz`-format line, uncompressed, per
record) and keep nothing of it. The point's metrics are then computed from the spilled records
in a few streaming passes, and every distribution's values go to a `Values` buffer that holds
at most `BLOCK` values in memory and the rest in an unlinked temporary file.

`summarize_values` returns exactly what `metrics.summarize` returns over the same values in the
same order — bit for bit — with memory bounded by `BLOCK`: the mean and std repeat numpy's
pairwise summation split for split over blocks read back from the file, and each percentile's
two neighbouring order statistics are found by narrowing a 16-bit histogram of the values'
sortable bit patterns (one read of the file per round) before numpy's linear interpolation is
applied to them.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import orjson

from ixci.loadgen.metrics import PERCENTILES, RequestRecord, record_from_json, summarize

BLOCK = 1 << 18  # values held in memory at once per buffer (2 MiB of float64)
# gzip level of requests.jsonl.gz: on a saturated point's records level 1 wrote 6.5x faster than
# level 6 for a file 8 % larger (the file was 40 % of the end-of-point work at level 6)
REQUESTS_GZIP_LEVEL = 1
_PW_SPLIT_MIN = 128  # numpy's pairwise-summation block: below it the split is never taken
_SIGN = np.uint64(1 << 63)


class Values:
    """float64 values in append order: in memory up to `cap`, the rest in a file — unlinked, or
    at `path` when another process will read them (`save`, then `Joined`)."""

    def __init__(self, cap: int | None = None, *, path: Path | None = None) -> None:
        self.cap = max(BLOCK if cap is None else cap, _PW_SPLIT_MIN)
        self._buf: np.ndarray | None = None  # `cap` values, allocated on the first append
        self._n = 0  # values in `_buf`
        self._fh: IO[bytes] | None = None
        self._on_file = 0
        self.path = path

    def __len__(self) -> int:
        return self._on_file + self._n

    def _room(self) -> np.ndarray:
        if self._buf is None:
            self._buf = np.empty(self.cap, dtype=np.float64)
        return self._buf

    def append(self, v: float) -> None:
        self._room()[self._n] = v
        self._n += 1
        if self._n >= self.cap:
            self._flush()

    def extend(self, vs: Iterable[float]) -> None:
        self.extend_array(np.fromiter(vs, dtype=np.float64))

    def extend_array(self, vs: np.ndarray) -> None:
        """Append a float64 array's values (as `extend`, without a Python step per value)."""
        done, k = 0, len(vs)
        while done < k:
            take = min(k - done, self.cap - self._n)
            self._room()[self._n : self._n + take] = vs[done : done + take]
            self._n += take
            done += take
            if self._n >= self.cap:
                self._flush()

    def _flush(self) -> None:
        if self._fh is None and self.path is not None:
            self._fh = open(self.path, "w+b")  # noqa: SIM115 - closed in close()
        elif self._fh is None:
            self._fh = tempfile.TemporaryFile(prefix="ixci-values-")  # noqa: SIM115 - closed in close()
        self._fh.seek(0, os.SEEK_END)
        if self._buf is not None:
            self._fh.write(self._buf[: self._n].tobytes())
        self._on_file += self._n
        self._n = 0

    @property
    def spilled(self) -> bool:
        return self._fh is not None

    def block(self, lo: int, hi: int) -> np.ndarray:
        """Values [lo, hi) as a fresh array (at most hi − lo values in memory)."""
        parts = []
        if lo < self._on_file and self._fh is not None:
            self._fh.flush()
            self._fh.seek(lo * 8)
            parts.append(np.fromfile(self._fh, dtype=np.float64, count=min(hi, self._on_file) - lo))
        if hi > self._on_file:
            buf = self._buf[: self._n] if self._buf is not None else np.empty(0)
            parts.append(buf[max(lo - self._on_file, 0) : hi - self._on_file].copy())
        return parts[0] if len(parts) == 1 else np.concatenate(parts or [np.empty(0)])

    def blocks(self) -> Iterator[np.ndarray]:
        n = len(self)
        for lo in range(0, n, self.cap):
            yield self.block(lo, min(lo + self.cap, n))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def save(self) -> tuple[str, int]:
        """Write every value to `path` and close → (path, count), what `Joined` reads."""
        assert self.path is not None, "save() needs a Values made with a path"
        self._flush()
        self.close()
        self._buf = None
        return str(self.path), len(self)


class Joined:
    """Read-only: the values of saved `Values` files end to end, in the given order.

    Has what `summarize_values`, `order_statistics` and the timing bounds read: `cap`, `len`,
    `spilled` (more values than `cap`: the bounded-memory path), `block` and `blocks`."""

    def __init__(self, parts: Sequence[tuple[str, int]], cap: int | None = None) -> None:
        self.cap = max(BLOCK if cap is None else cap, _PW_SPLIT_MIN)
        self._parts: list[tuple[IO[bytes], int, int]] = []  # (file, first index, count)
        n = 0
        try:
            for path, count in parts:
                if count:
                    self._parts.append((open(path, "rb"), n, count))  # noqa: SIM115 - close()
                    n += count
        except OSError:
            self.close()
            raise
        self._n = n

    def __len__(self) -> int:
        return self._n

    @property
    def spilled(self) -> bool:
        return self._n > self.cap

    def block(self, lo: int, hi: int) -> np.ndarray:
        """Values [lo, hi) as a fresh array."""
        out = []
        for fh, first, count in self._parts:
            a, b = max(lo, first), min(hi, first + count)
            if a < b:
                fh.seek((a - first) * 8)
                out.append(np.fromfile(fh, dtype=np.float64, count=b - a))
        return out[0] if len(out) == 1 else np.concatenate(out or [np.empty(0)])

    def blocks(self) -> Iterator[np.ndarray]:
        for lo in range(0, self._n, self.cap):
            yield self.block(lo, min(lo + self.cap, self._n))

    def close(self) -> None:
        for fh, _, _ in self._parts:
            fh.close()
        self._parts = []


def pairwise_sum(n: int, get: Callable[[int, int], np.ndarray], leaf: int) -> float:
    """`np.add.reduce` over n float64 values read with `get(lo, hi)`, bit for bit: numpy's
    pairwise summation split (halves rounded down to a multiple of 8) down to `leaf` values."""

    def rec(lo: int, m: int) -> np.float64:
        if m <= leaf:
            return np.float64(np.add.reduce(get(lo, lo + m)))
        half = m // 2
        half -= half % 8
        return np.float64(rec(lo, half) + rec(lo + half, m - half))

    return float(rec(0, n)) if n else 0.0


def _keys(x: np.ndarray) -> np.ndarray:
    """uint64 keys whose order is the float order of `x` (NaN-free)."""
    i = x.view(np.int64)
    i = i ^ ((i >> np.int64(63)) & np.int64(0x7FFFFFFFFFFFFFFF))
    return i.view(np.uint64) ^ _SIGN


def _value(key: int) -> float:
    """The float whose `_keys` key is `key`."""
    i = np.array([key], dtype=np.uint64) ^ _SIGN
    j = i.view(np.int64)
    j = j ^ ((j >> np.int64(63)) & np.int64(0x7FFFFFFFFFFFFFFF))
    return float(j.view(np.float64)[0])


def order_statistics(vals: Values | Joined, ranks: Iterable[int]) -> dict[int, float]:
    """The value of each 0-based rank in sorted order, reading `vals` block by block.

    Rounds of 16-bit histograms narrow each rank to a key prefix holding at most `vals.cap`
    values, then those values are gathered and sorted — or to one key (any number of equal
    values), which is the value."""
    # per pending rank: (known prefix bits, prefix, rank within the prefix)
    pending = {r: (0, 0, r) for r in set(ranks)}
    out: dict[int, float] = {}
    while pending:
        groups: dict[tuple[int, int], np.ndarray] = {}
        for bits, prefix, _ in pending.values():
            groups.setdefault((bits, prefix), np.zeros(1 << 16, dtype=np.int64))
        for x in vals.blocks():
            k = _keys(x)
            for (bits, prefix), hist in groups.items():
                sub = k if bits == 0 else k[(k >> np.uint64(64 - bits)) == np.uint64(prefix)]
                digit = (sub >> np.uint64(48 - bits)) & np.uint64(0xFFFF)
                hist += np.bincount(digit.astype(np.int64), minlength=1 << 16)
        gather: dict[
            tuple[int, int], list[tuple[int, int]]
        ] = {}  # (bits, prefix) -> [(rank, within)]
        nxt: dict[int, tuple[int, int, int]] = {}
        for r, (bits, prefix, within) in pending.items():
            hist = groups[(bits, prefix)]
            cum = np.cumsum(hist)
            d = int(np.searchsorted(cum, within, side="right"))
            before = int(cum[d - 1]) if d else 0
            nbits, nprefix, nwithin = bits + 16, (prefix << 16) | d, within - before
            if nbits == 64:
                out[r] = _value(nprefix)
            elif int(hist[d]) <= vals.cap:
                gather.setdefault((nbits, nprefix), []).append((r, nwithin))
            else:
                nxt[r] = (nbits, nprefix, nwithin)
        if gather:
            found: dict[tuple[int, int], list[np.ndarray]] = {key: [] for key in gather}
            for x in vals.blocks():
                k = _keys(x)
                for bits, prefix in gather:
                    sel = k >> np.uint64(64 - bits) == np.uint64(prefix)
                    found[(bits, prefix)].append(x[sel])
            for key, wanted in gather.items():
                got = np.sort(np.concatenate(found[key]))
                for r, within in wanted:
                    out[r] = float(got[within])
        pending = nxt
    return out


def summarize_values(vals: Values | Joined, *, with_p10: bool = False) -> dict[str, float | None]:
    """`metrics.summarize` over `vals`, bit for bit, in memory bounded by `vals.cap`."""
    if not vals.spilled:
        return summarize(vals.block(0, len(vals)), with_p10=with_p10)
    n = len(vals)
    mean = float(np.float64(pairwise_sum(n, vals.block, vals.cap)) / n)

    def dev2(lo: int, hi: int) -> np.ndarray:
        x = vals.block(lo, hi) - mean
        return np.multiply(x, x, out=x)

    var = np.float64(pairwise_sum(n, dev2, vals.cap)) / n
    out: dict[str, float | None] = {"mean": mean, "std": float(np.sqrt(var))}
    names = list(PERCENTILES) + (["p10"] if with_p10 else [])
    qs = list(PERCENTILES.values()) + ([10.0] if with_p10 else [])
    where = []
    for q in qs:  # numpy's "linear" method: virtual index (n − 1)·q/100, neighbours, lerp
        vi = float((n - 1) * np.float64(np.float64(q) / 100))
        prev = n - 1 if vi >= n - 1 else int(np.floor(vi))
        nxt = n - 1 if vi >= n - 1 else prev + 1
        gamma = vi - (-1.0 if vi >= n - 1 else float(prev))
        where.append((prev, nxt, gamma))
    stats = order_statistics(vals, [i for p, q, _ in where for i in (p, q)])
    for name, (p, q, gamma) in zip(names, where, strict=True):
        a, b = np.float64(stats[p]), np.float64(stats[q])
        diff = b - a
        out[name] = float(b - diff * (1 - gamma)) if gamma >= 0.5 else float(a + diff * gamma)
    return out


class RecordSpill:
    """Append-only file of finished request records (one `RequestRecord.to_json` line each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] | None = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        self.count = 0
        self.size = 0

    def write(self, r: RequestRecord) -> int:
        """Append `r` → the byte offset of its line (`read_spilled` reads it back)."""
        assert self._fh is not None
        line = r.to_line()
        self._fh.write(line)
        offset, self.size = self.size, self.size + len(line)
        self.count += 1
        return offset

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def iter_spilled(paths: Sequence[Path]) -> Iterator[RequestRecord]:
    """The records of spill files, in file order then line order (one record in memory at once)."""
    for path in paths:
        with open(path, "rb") as fh:
            for line in fh:
                yield record_from_json(orjson.loads(line))


def read_spilled(path: Path, offsets: Iterable[int]) -> list[RequestRecord]:
    """The records at these byte offsets of a spill file (`RecordSpill.write`'s returns)."""
    out = []
    with open(path, "rb") as fh:
        for offset in offsets:
            fh.seek(offset)
            out.append(record_from_json(orjson.loads(fh.readline())))
    return out


SORT_HELD = 1 << 18  # elements `sorted_blocks` holds at once (2 MiB of int64 keys)
_SORT_BINS = 1 << 14  # key-range bins that `sorted_blocks` groups into partitions


def sorted_blocks(
    source: Callable[[], Iterable[np.ndarray]],
    folder: Path,
    *,
    key: str | None = None,
    held: int | None = None,
) -> Iterator[np.ndarray]:
    """Every element of the blocks `source()` yields, stably sorted by `key` (a field of
    structured blocks; the values themselves without it), as consecutive sorted blocks.

    Up to `held` elements are sorted in memory. More are split by key range into partitions of
    at most `held` (from a histogram of the keys), written to files in `folder` and sorted one
    at a time; a single bin denser than `held` stays one partition. `source` is called up to
    three times and must yield the same blocks each time."""

    held = SORT_HELD if held is None else held

    def keys(block: np.ndarray) -> np.ndarray:
        return block if key is None else block[key]

    spans = [(int(k.min()), int(k.max()), k.size) for b in source() if (k := keys(b)).size]
    if not spans:
        return
    lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
    count = sum(s[2] for s in spans)
    if count <= held:
        whole = np.concatenate([b for b in source() if b.size])
        yield whole[np.argsort(keys(whole), kind="stable")]
        return
    scale = _SORT_BINS / (hi - lo + 1)

    def bins(k: np.ndarray) -> np.ndarray:  # monotone in the key: bin order is key order
        return np.minimum(((k - lo).astype(np.float64) * scale).astype(np.int64), _SORT_BINS - 1)

    counts = np.zeros(_SORT_BINS, dtype=np.int64)
    for b in source():
        counts += np.bincount(bins(keys(b)), minlength=_SORT_BINS)
    part = _group(counts, held)
    names = [folder / f"sort-{i}.bin" for i in range(int(part[-1]) + 1)]
    try:
        dtype = None
        for b in source():  # each partition's elements in source order: the sort stays stable
            if b.size:
                dtype = b.dtype
                _append(b, part[bins(keys(b))], names)
        for name in names:
            if name.exists():
                block = np.fromfile(name, dtype=dtype)
                name.unlink()
                yield block[np.argsort(keys(block), kind="stable")]
    finally:
        for name in names:
            name.unlink(missing_ok=True)


def _group(counts: np.ndarray, held: int) -> np.ndarray:
    """Each bin's partition: consecutive bins of at most `held` elements together."""
    part = np.empty(counts.size, dtype=np.int64)
    p, filled = 0, 0
    for i, c in enumerate(counts.tolist()):
        if filled and filled + c > held:
            p, filled = p + 1, 0
        part[i] = p
        filled += c
    return part


def _append(block: np.ndarray, of: np.ndarray, names: Sequence[Path]) -> None:
    """Append each element of `block` to its partition's file (`of`), keeping their order."""
    order = np.argsort(of, kind="stable")
    of, block = of[order], block[order]
    cuts = (np.flatnonzero(np.diff(of)) + 1).tolist()
    for first, end in zip([0, *cuts], [*cuts, block.size], strict=True):
        with open(names[int(of[first])], "ab") as fh:
            block[first:end].tofile(fh)


_INDEX = np.dtype([("send", "<i8"), ("file", "<i8"), ("offset", "<i8")])


def write_spilled_requests(path: Path, paths: Sequence[Path]) -> int:
    """`run.write_requests` from spill files: the same gzip lines, sorted by send time.

    Memory is bounded whatever the number of records: each record's (send time, file, offset)
    goes to an index file, which `sorted_blocks` sorts in partitions."""
    import gzip

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ixci-requests-", dir=path.parent) as tmp:
        index = Path(tmp) / "index.bin"
        n = 0
        with open(index, "wb") as index_out:
            for f, p in enumerate(paths):
                with open(p, "rb") as fh:
                    rows = array("q")
                    offset = 0
                    for line in fh:
                        start = line.index(b'"t_send_ns":') + 12
                        rows.extend((int(line[start : line.index(b",", start)]), f, offset))
                        offset += len(line)
                        if len(rows) >= 3 * BLOCK:
                            index_out.write(rows.tobytes())
                            n, rows = n + len(rows) // 3, array("q")
                    index_out.write(rows.tobytes())
                    n += len(rows) // 3

        def blocks() -> Iterator[np.ndarray]:
            with open(index, "rb") as fh:
                while (b := np.fromfile(fh, dtype=_INDEX, count=BLOCK)).size:
                    yield b

        handles = [open(p, "rb") for p in paths]  # noqa: SIM115 - closed below
        try:
            with gzip.open(path, "wb", compresslevel=REQUESTS_GZIP_LEVEL) as out:
                # stable: ties keep file then line order, as `sorted` of the concatenated
                # records does
                for block in sorted_blocks(blocks, Path(tmp), key="send"):
                    for f, offset in zip(
                        block["file"].tolist(), block["offset"].tolist(), strict=True
                    ):
                        fh = handles[f]
                        fh.seek(offset)
                        out.write(fh.readline())  # the spilled line is the requests.jsonl.gz line
        finally:
            for fh in handles:
                fh.close()
    return n


__all__ = [
    "BLOCK",
    "REQUESTS_GZIP_LEVEL",
    "Joined",
    "RecordSpill",
    "Values",
    "iter_spilled",
    "order_statistics",
    "pairwise_sum",
    "read_spilled",
    "sorted_blocks",
    "summarize_values",
    "write_spilled_requests",
]
