"""regressions.json → the GitHub issues that should be open (one per configuration or SKU).

Pure text: `ixci.github.github_api.sync_alert_issues` does the API calls. A configuration's issue
lists its open regressions and its missing-data alert; a SKU whose configurations all went
dark gets one issue for the SKU, and those configurations' own missing-data alerts are folded
into it (one dead runner fleet is one issue, not fifty). An issue whose key is no longer
wanted is closed with a comment naming what recovered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ixci.github.github_api import AlertIssue, shorten

TITLE_MAX = 200


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


def _point(f: Mapping[str, Any]) -> str:
    if f.get("concurrency") is not None:
        return f"c={f['concurrency']}"
    return f"rate={f.get('request_rate')}"


def _image(f: Mapping[str, Any]) -> str:
    change = f.get("image_change")
    if not change:
        return "no image change (look at the runner, driver or host)"
    old, new = change.get("from"), change.get("to")
    if old == new:  # the tag moved: only the digest tells the builds apart
        return f"`{old}` rebuilt: `{_short(change.get('from_digest'))}` → `{_short(change.get('to_digest'))}`"
    return f"`{old}` → `{new}`"


def _short(digest: str | None) -> str:
    """`sha256:` and the first 12 hex digits (enough to find the build)."""
    return "unknown digest" if not digest else digest[: len("sha256:") + 12]


def _regression_rows(found: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [
        "| scenario | point | metric | step (95 % interval) | first bad run | image change |",
        "|---|---|---|---|---|---|",
    ]
    for f in found:
        lo, hi = f["step"]["ci95"]
        rows.append(
            f"| {f['scenario']} | {_point(f)} | {f['metric']} | {_pct(f['step']['relative'])} "
            f"({_pct(lo)} … {_pct(hi)}) | {f['first_bad_run']} ({f['first_bad_date'][:10]}) "
            f"| {_image(f)} |"
        )
    return rows


def _missing_line(m: Mapping[str, Any]) -> str:
    last = m.get("last_valid_night") or "never"
    return (
        f"No valid point for {m['nights']} nights in a row (threshold {m['threshold']}): "
        f"{m['first_dark_night']} … {m['last_dark_night']}; last valid night: {last}."
    )


def wanted_issues(
    doc: Mapping[str, Any], names: Mapping[str, str], site_url: str | None = None
) -> list[AlertIssue]:
    """The alert issues `doc` (a regressions.json) calls for, sorted by key."""
    dark_skus = {m["sku"]: m for m in doc.get("missing", []) if m["scope"] == "sku"}
    out = [
        AlertIssue(
            key=f"sku:{sku}",
            title=shorten(f"ixci: no data from SKU {sku} for {m['nights']} nights", TITLE_MAX),
            body="\n".join(
                [f"### SKU `{sku}` stopped reporting", "", _missing_line(m), _foot(site_url)]
            ),
        )
        for sku, m in sorted(dark_skus.items())
    ]
    by_cfg: dict[str, dict[str, Any]] = {}
    for f in doc.get("regressions", []):
        if f["state"] == "open":
            by_cfg.setdefault(f["config_id"], {"reg": [], "miss": None})["reg"].append(f)
    for m in doc.get("missing", []):
        if m["scope"] == "config" and m["sku"] not in dark_skus:
            by_cfg.setdefault(m["config_id"], {"reg": [], "miss": None})["miss"] = m
    for cfg, what in sorted(by_cfg.items()):
        out.append(_config_issue(cfg, names.get(cfg, cfg), what["reg"], what["miss"], site_url))
    return out


def _config_issue(cfg: str, name: str, found: Sequence[Mapping[str, Any]],
                  miss: Mapping[str, Any] | None, site_url: str | None) -> AlertIssue:  # fmt: skip
    kinds = [k for k, on in (("regression", found), ("no data", miss)) if on]
    lines = [f"### {name} (`{cfg}`)", ""]
    if found:
        lines += [f"{len(found)} open regression(s), found by the step detector:", ""]
        lines += _regression_rows(found)
        lines.append("")
    if miss:
        lines += [_missing_line(miss), ""]
    return AlertIssue(
        key=f"config:{cfg}",
        title=shorten(f"ixci: {' and '.join(kinds)} in {name}", TITLE_MAX),
        body="\n".join([*lines, _foot(site_url)]),
    )


def _foot(site_url: str | None) -> str:
    where = f" History: {site_url}" if site_url else ""
    return (
        "\n_Opened and kept up to date by `ixci publish` from regressions.json on the results "
        f"branch; it closes itself when the alert clears._{where}"
    )


def closing_comments(doc: Mapping[str, Any]) -> dict[str, str]:
    """key → the comment that closes an issue no longer wanted (what recovered, when)."""
    out: dict[str, str] = {}
    for f in doc.get("regressions", []):
        if f["state"] == "recovered":
            out[f"config:{f['config_id']}"] = (
                f"Recovered: {f['metric']} at {f['scenario']} {_point(f)} is back since run "
                f"{f['recovered_run']} ({str(f['recovered_date'])[:10]}). Closing."
            )
    return out
