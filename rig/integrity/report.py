"""The outcome of `rig verify` (composition layer): findings (altered / uncovered), what was found intact, who
signed, and the keys a lab pinned. A key stored with the run (throwaway, or a bench key nobody pinned) proves that
the files agree with each other, not who wrote them: only a pinned key ties a run to its bench.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from rig.integrity.sign import key_fingerprint, normalise_public_key
from rig.results import PinnedKey

Level = Literal["altered", "uncovered"]

UNPINNED_TEXT = "consistent, signer NOT pinned: proves the files agree with each other, not who wrote them"


@dataclass(frozen=True)
class Finding:
    """One problem: `altered` (differs from what was recorded, signed or sealed) or `uncovered` (no signature
    vouches for it)."""

    level: Level
    where: str
    message: str

    def text(self) -> str:
        """`ALTERED journal record 12: ...`."""
        return f"{self.level.upper()} {self.where}: {self.message}"


@dataclass
class Verification:
    """The outcome of `verify_run`: findings, what was checked and found intact, and who signed."""

    run_id: str
    findings: list[Finding] = field(default_factory=list)
    intact: list[str] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)  # fingerprints of valid signatures by keys nobody pinned
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    @property
    def ok(self) -> bool:
        """True when nothing was found altered or uncovered (whoever signed)."""
        return not self.findings

    @property
    def altered(self) -> bool:
        """True when something was altered."""
        return any(f.level == "altered" for f in self.findings)

    @property
    def pinned(self) -> bool:
        """True when consistent and every signature is by a pinned key."""
        return self.ok and not self.unpinned

    @property
    def exit_code(self) -> int:
        """0 consistent and signed by pinned keys, 3 consistent but a signer is not pinned, 1 otherwise."""
        return 0 if self.pinned else 3 if self.ok else 1

    def add(self, level: Level, where: str, message: str) -> None:
        """Add a finding (once: several manifests may vouch for the same row)."""
        finding = Finding(level, where, message)
        if finding not in self.findings:
            self.findings.append(finding)

    def headline(self) -> str:
        """The first line: ALTERED, NOT COVERED, consistent but unpinned, or verified."""
        if self.altered:
            return "ALTERED"
        if self.findings:
            return "NOT COVERED: parts of the run are covered by no signature"
        if self.unpinned:
            keys = ", ".join(dict.fromkeys(self.unpinned))
            return (f"{UNPINNED_TEXT} (key {keys}; a lab pins its bench keys with `rig keys pin` or "
                    "`rig verify --expect-key`)")
        return "verified, nothing altered, signed by pinned key(s)" + (" (journal only: no run folder given)"
                                                                        if self.notes else "")

    def text(self) -> str:
        """The report `rig verify` prints."""
        lines = [f"run {self.run_id}: {self.headline()}"]
        lines += [f"  ok   {line}" for line in self.intact]
        lines += [f"  note {line}" for line in self.notes]
        lines += [f"  {f.text()}" for f in self.findings]
        return "\n".join(lines)



@dataclass(frozen=True)
class Pins:
    """Keys a lab vouches for: `expected` (--expect-key: every signature must be by one of them) and the lab
    database's bench_keys (a bench with pinned keys fails a run signed by any other key)."""

    expected: frozenset[str] = frozenset()
    by_bench: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, expect_key: str | None = None, pinned: Iterable[PinnedKey] = ()) -> Pins:
        """Pins from --expect-key and the rows of a lab database's bench_keys."""
        by_bench: dict[str, set[str]] = {}
        for row in pinned:
            by_bench.setdefault(row.bench, set()).add(normalise_public_key(row.public_key))
        expected = frozenset({normalise_public_key(expect_key)} if expect_key else set())
        return cls(expected, {bench: frozenset(keys) for bench, keys in by_bench.items()})

    def judge(self, bench: str, public_key: str) -> tuple[bool | None, str]:
        """(True pinned, None not pinned, False pinned keys exist and this is none of them; why)."""
        key = normalise_public_key(public_key)
        wanted = self.expected or self.by_bench.get(bench, frozenset())
        source = "--expect-key" if self.expected else f"bench {bench}'s pinned keys"
        if not wanted:
            return None, "not pinned"
        if key in wanted:
            return True, "pinned"
        return False, f"not one of {source} ({', '.join(sorted(key_fingerprint(k) for k in wanted))})"
