"""The *vía oficial* (5.XXIII): an *oficio*, a *memorándum* or an e-mail from ``iecm.mx``.

Designations, absences (6.X), change requests (6.XI, 11.1.b), account closures and the
notification of incidents (8.C) cite one. In events it travels as a plain dict
(:meth:`OfficialChannel.to_event`), so any consumer can read it without this class.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal, cast, get_args

from events.domain.errors import (
    InvalidEmailError,
    InvalidOfficialChannelError,
    InvalidTextError,
)
from events.domain.values import (
    email_domain,
    is_institutional_email,
    validate_email,
    validate_text,
)

__all__ = ["OFFICIAL_CHANNEL_KINDS", "OfficialChannel", "OfficialChannelKind"]

OfficialChannelKind = Literal["oficio", "memorandum", "correo"]
OFFICIAL_CHANNEL_KINDS: Final = cast(tuple[OfficialChannelKind, ...], get_args(OfficialChannelKind))


@dataclass(frozen=True)
class OfficialChannel:
    """A *vía oficial*: ``kind``, its ``reference`` (document number, or the sender's address for
    an e-mail) and, optionally, the date the document bears.

    Build one with :meth:`oficio`, :meth:`memorandum` or :meth:`email`; the constructor validates
    too, so an invalid channel cannot exist.
    """

    kind: OfficialChannelKind
    reference: str
    dated: date | None = None

    def __post_init__(self) -> None:
        if self.kind not in OFFICIAL_CHANNEL_KINDS:
            raise InvalidOfficialChannelError(str(self.kind), "unknown kind")
        if self.dated is not None and type(self.dated) is not date:
            raise InvalidOfficialChannelError(self.kind, "date must be a calendar date")
        if self.kind == "correo":
            try:
                address = validate_email("official_channel", self.reference)
            except InvalidEmailError as error:
                raise InvalidOfficialChannelError(self.kind, error.problem) from None
            # 5.XXIII: only mail from the institute's domain is official; exact match, so
            # "iecm.mx.evil.com", "xiecm.mx" and subdomains are refused.
            if not is_institutional_email(address):
                raise InvalidOfficialChannelError(
                    self.kind, "sender outside iecm.mx", domain=email_domain(address)
                )
            object.__setattr__(self, "reference", address)
        else:
            try:
                reference = validate_text("official_channel", self.reference, max_length=200)
            except InvalidTextError as error:
                raise InvalidOfficialChannelError(self.kind, error.problem) from None
            object.__setattr__(self, "reference", reference)

    @classmethod
    def oficio(cls, reference: str, dated: date | None = None) -> OfficialChannel:
        return cls("oficio", reference, dated)

    @classmethod
    def memorandum(cls, reference: str, dated: date | None = None) -> OfficialChannel:
        return cls("memorandum", reference, dated)

    @classmethod
    def email(cls, sender: str, dated: date | None = None) -> OfficialChannel:
        return cls("correo", sender, dated)

    def to_event(self) -> dict[str, str | None]:
        """The channel as an event payload: ``kind``, ``reference``, ``date`` (ISO or null)."""
        return {
            "kind": self.kind,
            "reference": self.reference,
            "date": self.dated.isoformat() if self.dated else None,
        }

    @classmethod
    def from_event(cls, data: dict[str, str | None]) -> OfficialChannel:
        dated = data.get("date")
        return cls(
            cast(OfficialChannelKind, data["kind"]),
            str(data["reference"]),
            date.fromisoformat(dated) if dated else None,
        )

    def __str__(self) -> str:
        suffix = f" ({self.dated.isoformat()})" if self.dated else ""
        return f"{self.kind} {self.reference}{suffix}"
