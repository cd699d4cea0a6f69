"""Who does what in a labeling session, decided in one place for the Review App and the invitations.

- reviewers answer its items: the assigned users, or anyone invited when it assigns nobody (the
  pipeline's rule: it refuses an answer from a HUMAN the session does not assign);
- adjudicators settle the reviewers' disagreements (they see every answer side by side);
- owners run the session: they see its agreement figures, without answering or adjudicating.

Reviewers, adjudicators and owners may all open the session; only reviewers answer. A session is a
mapping with the `labeling_sessions` columns (lists of e-mail addresses, compared case-blind).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _members(session: Mapping[str, Any], role: str) -> set[str]:
    return {str(user).strip().lower() for user in session.get(role) or []}


def may_answer(session: Mapping[str, Any], reviewer: str) -> bool:
    """Assigned users only; anyone invited when the session assigns nobody."""
    assigned = _members(session, "assigned_users")
    return not assigned or reviewer.strip().lower() in assigned


def is_adjudicator(session: Mapping[str, Any], reviewer: str) -> bool:
    """Whether `reviewer` is one of the session's adjudicators."""
    return reviewer.strip().lower() in _members(session, "adjudicators")


def sees_agreement(session: Mapping[str, Any], reviewer: str) -> bool:
    """Adjudicators and owners see the session's agreement figures; reviewers stay blind to each other."""
    return is_adjudicator(session, reviewer) or reviewer.strip().lower() in _members(session, "owners")


def may_open(session: Mapping[str, Any], reviewer: str) -> bool:
    """Those who may answer, adjudicate or watch the session."""
    return may_answer(session, reviewer) or sees_agreement(session, reviewer)


def members(session: Mapping[str, Any]) -> list[str]:
    """Everyone the session names, in any role (empty when it assigns nobody and names no one else)."""
    return sorted(_members(session, "assigned_users") | _members(session, "adjudicators") | _members(session, "owners"))
