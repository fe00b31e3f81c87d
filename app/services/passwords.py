"""The one password policy: the CLI, the admin page, the account page and the API all call it.

Rules, each with a message a person can act on: a minimum length (``password_min_length``);
not one of the 30,000 most common passwords (zxcvbn's list, from PyPI, matched as zxcvbn matches
it: ignoring case, reversed, with l33t substitutions like ``P@ssw0rd``; only the whole password,
so a common word inside a passphrase is fine); and not guessable by zxcvbn's estimate below
``password_min_score`` (repeats, sequences, keyboard rows, a common password plus ``1234``: the
repetitive and sequential passwords NIST SP 800-63B says to refuse).
"""

from __future__ import annotations

from zxcvbn import matching, zxcvbn

from app.core.config import Settings, get_settings

ZXCVBN_MAX_LENGTH = 72  # zxcvbn refuses longer input: a longer password is judged by its start
# zxcvbn's "passwords" list alone: the English words and names lists would refuse passphrases.
_COMMON = {"passwords": matching.RANKED_DICTIONARIES["passwords"]}
_LONGEST_COMMON = max(len(word) for word in _COMMON["passwords"])


class WeakPassword(ValueError):
    """The password breaks the policy; the message says which rule."""


def _is_common(password: str) -> bool:
    if len(password) > _LONGEST_COMMON:  # also keeps zxcvbn's l33t search short
        return False
    matches = (
        matching.dictionary_match(password, _COMMON)
        + matching.reverse_dictionary_match(password, _COMMON)
        + matching.l33t_match(password, _COMMON)
    )
    return any(m["i"] == 0 and m["j"] == len(password) - 1 for m in matches)


def check_password(password: str, settings: Settings | None = None) -> None:
    """Raise WeakPassword unless ``password`` may be set."""
    settings = settings or get_settings()
    if len(password) < settings.password_min_length:
        raise WeakPassword(f"password must be at least {settings.password_min_length} characters")
    if _is_common(password):
        raise WeakPassword("this password is among the most common ones; choose another")
    if settings.password_min_score:
        estimate = zxcvbn(password[:ZXCVBN_MAX_LENGTH])
        if estimate["score"] < settings.password_min_score:
            hint = estimate["feedback"]["warning"] or "Add another word or two."
            raise WeakPassword(f"this password is too easy to guess: {hint[0].lower()}{hint[1:]}")
