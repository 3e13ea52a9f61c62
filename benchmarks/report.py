"""Turn raw results into rows (Corral | OpenEnv | ratio | target | met?), a rich table and a markdown table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

Results = dict[str, Any]
TIMES, DASH = "\u00d7", "\u2013"  # the multiplication sign and an en dash


@dataclass
class Row:
    section: str
    metric: str
    unit: str
    corral: float | None
    peer: float | None
    higher_is_better: bool = False
    #: Corral must be at least this many times better than the peer (ratio target).
    min_ratio: float | None = None
    #: Or Corral's own value must be within this bound (absolute target).
    bound: float | None = None
    #: What the OpenEnv column holds when it is not the peer's number.
    baseline: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.corral is None or self.peer is None or self.corral == 0 or self.peer == 0:
            return None
        return self.corral / self.peer if self.higher_is_better else self.peer / self.corral

    @property
    def target(self) -> str:
        if self.min_ratio is not None:
            return f"≥ {self.min_ratio:g}{TIMES}"
        if self.bound is not None:
            return f"{'≥' if self.higher_is_better else '≤'} {self.bound:g} {self.unit}"
        return ""

    @property
    def met(self) -> bool | None:
        if self.min_ratio is not None:
            ratio = self.ratio
            return None if ratio is None else ratio >= self.min_ratio
        if self.bound is not None and self.corral is not None:
            return self.corral >= self.bound if self.higher_is_better else self.corral <= self.bound
        return None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "target": self.target, "met": self.met}


def _get(results: Results, *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _scale(value: Any, factor: float) -> float | None:
    return None if value is None else round(float(value) * factor, 3)


def build_rows(results: Results) -> list[Row]:
    rows: list[Row] = []
    add = rows.append
    g = _get

    add(Row("floor", "machine floor: bare uvloop TCP echo round trip p50 (no WebSocket)", "µs",
            g(results, "floor", "p50_us"), None))
    add(Row("floor", "machine floor: server CPU per echo round trip", "µs",
            g(results, "floor", "server_cpu_per_rt_us"), None))
    add(Row("floor", "machine floor: bare TCP connect + one echo round trip p50", "ms",
            _scale(g(results, "floor", "open_p50_us"), 1e-3), None))
    add(Row("floor", "machine floor: typed batched echo, both ends, no I/O, 2 cores (steps/s at most)", "steps/s",
            g(results, "floor", "typed_batch_steps_s_2_cores"), None, higher_is_better=True))
    for kind, label, target in (("sync", "blocking client", 5.0), ("async", "async client", 5.0),
                                ("raw", "raw WebSocket", None)):
        add(Row("latency", f"step round trip p50, {label}", "µs", g(results, "latency", "corral", kind, "p50_us"),
                g(results, "latency", "peer", kind, "p50_us"), min_ratio=target))
        add(Row("latency", f"step round trip p99, {label}", "µs", g(results, "latency", "corral", kind, "p99_us"),
                g(results, "latency", "peer", kind, "p99_us")))
    add(Row("latency", "HTTP step p50 (Corral stateful, peer stateless)", "µs", g(results, "http", "corral", "p50_us"),
            g(results, "http", "peer", "p50_us")))
    add(Row("latency", "HTTP step p99", "µs", g(results, "http", "corral", "p99_us"),
            g(results, "http", "peer", "p99_us")))

    levels = sorted({int(k) for impl in ("corral", "peer") for k in (g(results, "throughput", impl) or {})})
    for n in levels:
        add(Row("throughput", f"aggregate steps/s, {n} session{'s' if n > 1 else ''}", "steps/s",
                g(results, "throughput", "corral", str(n), "steps_per_s"),
                g(results, "throughput", "peer", str(n), "steps_per_s"), higher_is_better=True,
                min_ratio=6.0 if n == 64 else None))
    peer_best = max((v["steps_per_s"] for v in (g(results, "throughput", "peer") or {}).values()
                     if v.get("steps_per_s")), default=None)
    batched = g(results, "batched", "corral") or {}
    for n in sorted({v["sessions"] for v in batched.values()}):
        best = max((v for v in batched.values() if v["sessions"] == n and v.get("steps_per_s")),
                   key=lambda v: v["steps_per_s"], default=None)
        if best is not None:
            add(Row("throughput", f"batched steps/s, {n} sessions on 1 connection ({best['codec']}, "
                    f"{best.get('client', 'blocking')})", "steps/s",
                    best["steps_per_s"], peer_best, higher_is_better=True, min_ratio=50.0,
                    baseline="peer's best aggregate"))

    for n in sorted({int(k) for impl in ("corral", "peer") for k in (g(results, "cpu", impl) or {})}):
        add(Row("cpu", f"server CPU per step, {n} session{'s' if n > 1 else ''}", "µs",
                g(results, "cpu", "corral", str(n), "server_cpu_per_step_us"),
                g(results, "cpu", "peer", str(n), "server_cpu_per_step_us"), min_ratio=8.0))

    sessions = results.get("sessions") or {}
    counts = sorted({int(k.rsplit("/", 1)[1]) for k in sessions})
    for n in counts:
        ws, mux, peer = (sessions.get(f"{impl}/{n}") for impl in ("corral/ws", "corral/mux", "peer/ws"))
        big = n == max(counts)
        add(Row("sessions", f"{n:,} sessions opened, one WebSocket each", "%", _v(ws, "opened_pct"),
                _v(peer, "opened_pct"), higher_is_better=True, bound=100.0 if big else None))
        add(Row("sessions", f"{n:,} sessions opened, multiplexed (Corral)", "%", _v(mux, "opened_pct"),
                _v(peer, "opened_pct"), higher_is_better=True, bound=100.0 if big else None,
                baseline="peer, WebSockets"))
        add(Row("sessions", f"time to open {n:,} sessions, WebSockets", "s", _v(ws, "open_wall_s"),
                _v(peer, "open_wall_s")))
        add(Row("sessions", f"server RSS with {n:,} sessions, WebSockets", "MiB", _v(ws, "rss_with_mib"),
                _v(peer, "rss_with_mib")))
        add(Row("sessions", f"RSS per idle session, WebSockets ({n:,})", "KiB", _v(ws, "rss_per_session_kib"),
                _v(peer, "rss_per_session_kib"), bound=20.0 if big else None))
        add(Row("sessions", f"RSS per idle session, multiplexed ({n:,})", "KiB", _v(mux, "rss_per_session_kib"),
                _v(peer, "rss_per_session_kib"), bound=20.0 if big else None, baseline="peer, WebSockets"))
    idle = next((v for k, v in sessions.items() if k.startswith("corral/")), None)
    idle_peer = next((v for k, v in sessions.items() if k.startswith("peer/")), None)
    if idle or idle_peer:
        add(Row("sessions", "server RSS idle", "MiB", _v(idle, "rss_idle_mib"), _v(idle_peer, "rss_idle_mib")))

    add(Row("sessions", "session open p50 (connect + reset)", "ms",
            _scale(g(results, "open", "corral", "p50_us"), 1e-3), _scale(g(results, "open", "peer", "p50_us"), 1e-3),
            min_ratio=10.0))
    add(Row("sessions", "session open p50, a raw socket client (no client library: the server's share)", "ms",
            _scale(g(results, "open", "corral/socket", "p50_us"), 1e-3),
            _scale(g(results, "open", "peer/socket", "p50_us"), 1e-3)))
    add(Row("sessions", "session open p50 on an open connection (corral/1 open carrying the reset)", "ms",
            _scale(g(results, "open", "corral/mux", "p50_us"), 1e-3),
            _scale(g(results, "open", "peer", "p50_us"), 1e-3), min_ratio=10.0, baseline="peer, connect + reset"))
    add(Row("startup", "process start to healthy p50", "s", g(results, "startup", "corral", "healthy_s"),
            g(results, "startup", "peer", "healthy_s"), bound=0.5))

    blob = results.get("blob") or {}
    msgpack = _scale(_v(blob.get("corral/msgpack"), "p50_us"), 1e-3)
    add(Row("binary", "1 MiB observation step p50, msgpack vs Corral JSON/base64", "ms", msgpack,
            _scale(_v(blob.get("corral/json"), "p50_us"), 1e-3), min_ratio=10.0, baseline="Corral JSON/base64"))
    add(Row("binary", "1 MiB observation step p50, msgpack vs peer JSON/base64", "ms", msgpack,
            _scale(_v(blob.get("peer/json-base64"), "p50_us"), 1e-3), min_ratio=10.0))
    return [row for row in rows if row.corral is not None or row.peer is not None]


def _v(entry: Any, key: str) -> Any:
    return entry.get(key) if isinstance(entry, dict) else None


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return DASH
    if unit in ("steps/s",):
        return f"{value:,.0f}"
    if unit == "%":
        return f"{value:g} %"
    if unit == "s":
        return f"{value:.3f} s"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}" if abs(value) >= 1 else f"{value:.3f} {unit}"


def _cells(row: Row) -> list[str]:
    peer = fmt(row.peer, row.unit)
    if row.baseline and row.peer is not None:
        peer += f" ({row.baseline})"
    ratio = DASH if row.ratio is None else f"{row.ratio:.2f}{TIMES}"
    met = {True: "yes", False: "NO", None: ""}[row.met]
    return [row.metric, fmt(row.corral, row.unit), peer, ratio, row.target, met]


HEADERS = ["metric", "Corral", "OpenEnv 0.3.0", f"ratio ({TIMES} better)", "target", "met?"]


def rich_table(rows: list[Row], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for header in HEADERS:
        table.add_column(header, justify="left" if header == "metric" else "right")
    section = None
    for row in rows:
        if section is not None and row.section != section:
            table.add_section()
        section = row.section
        cells = _cells(row)
        style = {"yes": "green", "NO": "bold red"}.get(cells[-1])
        cells[-1] = f"[{style}]{cells[-1]}[/]" if style else cells[-1]
        table.add_row(*cells)
    return table


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join(["---"] + ["---:"] * (len(HEADERS) - 1)) + "|"]
    for row in rows:
        cells = _cells(row)
        cells[-1] = {"yes": "✅ yes", "NO": "❌ no"}.get(cells[-1], cells[-1])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarize_targets(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    met = [r for r in rows if r.met is True]
    missed = [r for r in rows if r.met is False]
    return met, missed


