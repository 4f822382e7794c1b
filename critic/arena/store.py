"""The judgments an arena keeps: ``judgments.jsonl`` in the output folder, a cache keyed by content.

Each judgment is appended (and synced) as soon as its chunk is judged, keyed by the
SHA-256 of everything that decides its result: the judge's description (kind, model,
backend, template, mode, swap, tie margin), the template's own text, and the pair as
shown (question, reference, earlier turns, both answers, which one is response A). A
rerun, with the same models or more, or after a crash, judges only the keys it lacks,
and a failed judgment is tried again. A kill mid-write leaves at most a torn last line,
which the next run cuts off.

At the end of a run the file is rewritten, atomically, in a canonical order: one line
per comparison of the run, in the run's order, then the cached judgments the run did
not use (another model set's), by key. So a run killed at any moment and run again
ends with the same bytes as a run that was never interrupted (given a judge whose
result for a pair does not depend on the company it is judged in, such as the fake
backend; a real model's batching moves probabilities by ~1e-6).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from critic.errors import InputError, Reason
from critic.io.writers import dumps_row, write_bytes_atomic
from critic.judges.description import JudgeDescription

JUDGMENTS = "judgments.jsonl"
RESULT_FIELDS = ("label", "p_a", "consistent", "orders", "error", "kind")


def judge_identity(description: JudgeDescription) -> dict[str, Any]:
    """What of the judge decides a judgment: its description, and its template's text when it can be read."""
    identity: dict[str, Any] = {"judge": description.to_dict()}
    if description.template:
        digest = template_digest(description.template)
        if digest is not None:
            identity["template_sha256"] = digest
    return identity


def template_digest(template: str) -> str | None:
    """The SHA-256 of a built-in template's or a template file's text (``None`` when neither can be read)."""
    path = Path(template)
    try:
        if path.suffix == ".jinja" and path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()
        resource = resources.files("critic.prompts").joinpath(f"{template}.jinja")
        if resource.is_file():
            return hashlib.sha256(resource.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return None
    return None


def judgment_key(identity: Mapping[str, Any], shown: Mapping[str, Any]) -> str:
    """The content hash of one judgment: the judge's identity and the pair exactly as shown (A first)."""
    text = json.dumps({"identity": identity, "pair": shown, "order": "response_a is model_a"}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class JudgmentStore:
    """``judgments.jsonl``: read what an earlier run left, append new judgments, rewrite it canonically."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / JUDGMENTS
        self.records: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a torn last line (killed mid-write): cut off, it will be judged again
            with self.path.open("r+b") as stream:
                stream.truncate(end)
                os.fsync(stream.fileno())
        for number, line in enumerate(data[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise InputError(f"{self.path} line {number} is not JSON; it is not a file critic wrote whole. Move "
                                 "it away or start over with --force", kind=Reason.UNREADABLE_ROW) from None
            if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                raise InputError(f"{self.path} line {number} holds no judgment key; move the file away or start "
                                 "over with --force", kind=Reason.UNREADABLE_ROW)
            self.records[record["key"]] = record  # the last line of a key is its newest judgment

    def done(self, key: str) -> bool:
        """A judgment with a result (a failed one is tried again)."""
        record = self.records.get(key)
        return record is not None and "error" not in record

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Add judgments as they are made: written, flushed and synced before the next chunk starts."""
        if not records:
            return
        with self.path.open("ab") as stream:
            stream.write(b"".join(dumps_row(record) for record in records))
            stream.flush()
            os.fsync(stream.fileno())
        for record in records:
            self.records[record["key"]] = record

    def rewrite(self, lines: Iterable[dict[str, Any]], used: set[str]) -> None:
        """The canonical file: ``lines`` (the run's comparisons) then the unused judgments by key."""
        rest = [self.records[key] for key in sorted(self.records) if key not in used]
        write_bytes_atomic(self.path, b"".join(dumps_row(record) for record in [*lines, *rest]))
