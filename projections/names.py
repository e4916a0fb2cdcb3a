"""How reports name people: by their OpenBao/Vault user name, without decrypting anything.

Events carry a person's id, ``uuid5`` of their user name (:func:`events.domain.person_id`); the
user name itself is sealed. Whoever builds a report may know some user names (the service lists
them from OpenBao; the command line may be given a file): :class:`PersonNames` maps their ids
back. A person not in that list shows as ``persona-<first 8 hex digits>``; a person whose data was
erased shows as ``(persona suprimida)`` whatever the list says.
"""

from __future__ import annotations

from collections.abc import Iterable

from events.domain import InvalidIdentifierError, Username, person_id
from projections.schema import ERASED_PREFIX

__all__ = ["ERASED_LABEL", "PersonNames"]

ERASED_LABEL = "(persona suprimida)"
#: Prefixes of what stands where a person's id would (an incident the service opened, a read
#: with a token of no person): shown as they are.
NOT_A_PERSON = ("custodia-servicio", "openbao:")


class PersonNames:
    """Display names of people, from the user names the caller knows."""

    def __init__(self, usernames: Iterable[str] = ()) -> None:
        self._names: dict[str, str] = {}
        for username in usernames:
            try:
                name = Username.parse(username)  # the one user-name parser
            except InvalidIdentifierError:
                continue
            self._names[str(person_id(name))] = str(name)

    def __len__(self) -> int:
        return len(self._names)

    def name(self, person: str | None) -> str | None:
        """The display name of the person with id ``person`` (``None`` stays ``None``)."""
        if person is None:
            return None
        if person.startswith(ERASED_PREFIX):
            return ERASED_LABEL
        known = self._names.get(person)
        if known is not None:
            return known
        if person.startswith(NOT_A_PERSON):
            return person  # no person: the service, or a token OpenBao names (issue 16)
        return f"persona-{person[:8]}"
