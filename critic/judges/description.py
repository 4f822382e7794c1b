"""What a judge is, as a typed value: recorded in reports, summaries and checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

JudgeKind = Literal["generative", "reward", "remote", "custom"]


@dataclass(frozen=True)
class JudgeDescription:
    """A judge's identity. Code reads its fields; it never dispatches on a dict.

    ``kind`` is ``"generative"`` (a critic model judging both orders) or
    ``"reward"`` (a scalar reward model scoring each response alone); ``backend``
    names what runs the model (``"transformers"``, ``"fake"``, ...). Fields that
    do not apply to a kind are ``None``.
    """

    kind: JudgeKind
    model: str = ""
    backend: str = ""
    template: str | None = None
    mode: str | None = None
    swap: bool | None = None
    tie_margin: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields that apply (``None`` left out), for JSON outputs."""
        return {key: value for key, value in self.__dict__.items() if value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeDescription:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**known)

    def summary(self) -> str:
        """One line for tables: ``demo · skywork-critic · score · both orders · on transformers``."""
        parts = [str(part) for part in (self.model, self.template, self.mode) if part]
        if self.kind == "reward":
            parts.append("reward model")
        if self.swap is not None:
            parts.append("both orders" if self.swap else "one order")
        if self.backend:
            parts.append(f"on {self.backend}")
        return " · ".join(parts)
