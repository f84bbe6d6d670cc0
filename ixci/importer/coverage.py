"""The import's coverage: every incumbent entry → its ixci recipe, or why it has none.

Entries whose only scenarios are `agentic-coding` and that did not convert are counted apart as
"not yet converted (agentic workload: separate work)": they convert (and count as converted)
as soon as the target catalog has an `agentic-coding` scenario profile, with no change here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ixci.importer.convert import ImportReport

AGENTIC = "agentic-coding"
AGENTIC_PENDING = "not yet converted (agentic workload: separate work)"


@dataclass(frozen=True, kw_only=True)
class Row:
    """One incumbent entry and what became of it."""

    entry: str
    where: str
    agentic: bool
    recipe: str | None  # the recipe file, when converted
    reason: str  # why not converted, or the search-space entries left out of a converted one


@dataclass(frozen=True, kw_only=True)
class Coverage:
    """Per-entry rows and the counts the acceptance is judged by."""

    rows: tuple[Row, ...]

    def counts(self) -> Mapping[str, int]:
        """entries, converted, and the same split into agentic and non-agentic entries."""
        rows = self.rows
        return {
            "entries": len(rows),
            "converted": sum(r.recipe is not None for r in rows),
            "non_agentic": sum(not r.agentic for r in rows),
            "non_agentic_converted": sum(not r.agentic and r.recipe is not None for r in rows),
            "agentic": sum(r.agentic for r in rows),
            "agentic_converted": sum(r.agentic and r.recipe is not None for r in rows),
        }

    def summary(self) -> str:
        """One paragraph of counts (printed by the CLI, heading the docs table)."""
        c = self.counts()
        pct = 100.0 * c["non_agentic_converted"] / max(c["non_agentic"], 1)
        reasons = Counter(_reason_class(r.reason) for r in self.rows if r.recipe is None)
        lines = [
            f"coverage: {c['converted']} of {c['entries']} entries converted; "
            f"{c['non_agentic_converted']} of {c['non_agentic']} non-agentic ({pct:.1f} %), "
            f"{c['agentic_converted']} of {c['agentic']} agentic"
        ]
        lines += [f"  {n:3d} × {reason}" for reason, n in reasons.most_common()]
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        """The table kept in docs/ (entry → recipe or reason)."""
        out = ["| entry | source | ixci recipe | reason / notes |", "|---|---|---|---|"]
        for r in self.rows:
            recipe = f"`{r.recipe}`" if r.recipe else "—"
            out.append(f"| `{r.entry}` | {r.where} | {recipe} | {_cell(r.reason)} |")
        return "\n".join(out) + "\n"


def coverage(report: ImportReport) -> Coverage:
    """Rows in the order of the incumbent's files."""
    files = {c.entry: c.file for c in report.converted}
    whole: dict[str, str] = {}
    parts: Counter[str] = Counter()
    first_part: dict[str, str] = {}
    for s in report.skipped:
        if s.search is None:
            whole.setdefault(s.entry, s.reason)
        else:
            parts[s.entry] += 1
            first_part.setdefault(s.entry, s.reason)
    rows = []
    for entry, kinds in report.kinds.items():
        agentic = bool(kinds) and set(kinds) == {AGENTIC}
        recipe = files.get(entry)
        if recipe is not None:
            reason = (
                f"{parts[entry]} search-space entries not imported: {first_part[entry]}"
                if parts[entry]
                else ""
            )
        elif agentic and _scenario_missing(whole.get(entry, ""), first_part.get(entry, "")):
            reason = AGENTIC_PENDING
        else:
            reason = whole.get(entry, "")
            if reason.startswith("no search-space entry") and entry in first_part:
                reason = first_part[entry]
        rows.append(
            Row(
                entry=entry,
                where=report.wheres.get(entry, ""),
                agentic=agentic,
                recipe=recipe,
                reason=reason,
            )
        )
    return Coverage(rows=tuple(rows))


def _scenario_missing(whole: str, part: str) -> bool:
    """True when the entry failed only because the agentic scenario has no profile yet (an
    agentic entry refused for another reason — its model, engine, SKU — keeps that reason)."""
    return whole.startswith("no search-space entry") and "has no profile" in part


def _reason_class(reason: str) -> str:
    """A reason with its quoted names kept but its file-specific tail cut, for the tally."""
    return reason.split(" (")[0][:140]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
