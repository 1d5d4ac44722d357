"""Free text must not carry a person's identity: the detector, and the refusal every free-text field shares.

Notes, payees, decline and rejection reasons, operation notes, agreement notes and surge reasons are read by
other organisations and kept in the journal and the audit. A value that looks like a phone number, an e-mail
address or a date of birth is refused (the person rephrases); amounts (25.50), case codes (C-2024-117),
counts and times (21:00) are not.

`find_personal_data(text)` is pure: it names the kind of detail found, or None. `refuse_personal_data(field,
text)` raises `PersonalDataRefused`, which the web shell answers with a 422 `personal_data` on the API and the
form again, with what was typed and the message beside the field, on a page.
"""

from __future__ import annotations

import re
from datetime import date

from exchange.web.i18n import N_
from exchange.web.i18n import gettext as _

EMAIL = "email"
PHONE = "phone"
BIRTH_DATE = "birth_date"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Digits may not continue a word or a code ("C-2024-117", "room12"): a number starts and ends on its own.
_START = r"(?<![\w+\-/.])"
_END = r"(?![\w\-/]|\.\d)"
_PHONES = [
    # North American: 514-555-1234, (514) 555-1234, 514.555.1234, 5145551234, +1 514 555 1234, 1-800-555-1234.
    re.compile(_START + r"(?:\+?1[\s.\-]?)?(?:\(\d{3}\)|\d{3})[\s.\-]?\d{3}[\s.\-]?\d{4}" + _END),
    # A local North American number: 555-1234.
    re.compile(_START + r"\d{3}[.\-]\d{4}" + _END),
    # International, with + or 00 and a country code: +33 1 23 45 67 89, +44 20 7946 0958, 0033 1 23 45 67 89.
    re.compile(r"(?<![\w+])(?:\+|\b00)\d{1,3}(?:[\s.\-]?\(?\d{1,5}\)?){2,6}" + _END),
    # French national numbers: 06 12 34 56 78, 01.23.45.67.89.
    re.compile(_START + r"0[1-9](?:[\s.\-]?\d{2}){4}" + _END),
]
_MONTHS = (
    "jan(?:uary|vier)?|feb(?:ruary)?|f[ée]v(?:rier)?|mar(?:ch|s)?|apr(?:il)?|avr(?:il)?|may|mai|june?|juin|"
    "july?|juil(?:let)?|aug(?:ust)?|ao[uû]t?|sep(?:t(?:ember)?)?|sept(?:embre)?|oct(?:ober|obre)?|"
    "nov(?:ember|embre)?|dec(?:ember)?|d[ée]c(?:embre)?"
)
_YEAR = r"(?P<year>(?:19|20)\d{2})"
_DATES = [
    # 1990-04-12, 1990/04/12
    re.compile(_START + _YEAR + r"[\-/.](?:0?[1-9]|1[0-2])[\-/.](?:0?[1-9]|[12]\d|3[01])" + _END),
    # 12/04/1990, 04-12-1990, 12.04.1990
    re.compile(_START + r"(?:0?[1-9]|[12]\d|3[01])[\-/.](?:0?[1-9]|[12]\d|3[01])[\-/.]" + _YEAR + _END),
    # 12 April 1990, 12 avril 1990, April 12, 1990
    re.compile(r"\b\d{1,2}(?:st|nd|rd|th|er)?\s+(?:" + _MONTHS + r")\.?,?\s+" + _YEAR + r"\b", re.IGNORECASE),
    re.compile(r"\b(?:" + _MONTHS + r")\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+" + _YEAR + r"\b", re.IGNORECASE),
]
# Words that say a birth is meant, before a year or a date: "born 1990", "née en 1990", "DOB: 12/04/90".
_BORN = re.compile(
    r"\b(?:born|b\.|né|née|nés|nées|nee|dob|d\.o\.b\.?|date of birth|date de naissance|ddn)\s*(?:on|in|en|le|:)?\s*"
    r"(?:\d{1,2}\s*[\-/.]\s*\d{1,2}\s*[\-/.]\s*)?(?:(?:19|20)?\d{2})\b",
    re.IGNORECASE,
)
_BORN_MONTH = re.compile(
    r"\b(?:born|né|née|nés|nées|nee|dob|date of birth|date de naissance)\s*(?:on|in|en|le|:)?\s*"
    r"(?:\d{1,2}\s+)?(?:" + _MONTHS + r")\b",
    re.IGNORECASE,
)


def find_personal_data(text: str, *, today: date | None = None) -> str | None:
    """The kind of identifying detail `text` seems to hold (`email`, `phone`, `birth_date`), or None.

    A full date counts as a date of birth when its year is before this one (a stay or an appointment is this
    year or later) or when a word like "born" says so.
    """
    if not text:
        return None
    if _EMAIL.search(text):
        return EMAIL
    if _BORN.search(text) or _BORN_MONTH.search(text):
        return BIRTH_DATE
    this_year = (today or date.today()).year
    for pattern in _DATES:
        for match in pattern.finditer(text):
            if int(match.group("year")) < this_year:
                return BIRTH_DATE
    # A date of this year is not a phone number either: take dates out before looking for phones.
    undated = text
    for pattern in _DATES:
        undated = pattern.sub(" ", undated)
    for pattern in _PHONES:
        for match in pattern.finditer(undated):
            if sum(c.isdigit() for c in match.group()) >= 7:
                return PHONE
    return None


# What each checked field is called on a page, for the form that asks to rephrase it.
FIELD_LABELS = {
    "note": N_("Note"),
    "notes": N_("Notes"),
    "payee": N_("Payee"),
    "reason": N_("Reason"),
}


def field_label(field: str) -> str:
    return _(FIELD_LABELS[field]) if field in FIELD_LABELS else field


class PersonalDataRefused(Exception):
    """A free-text value that looks like it identifies a person. Answered as 422 `personal_data`."""

    kind = "invalid"
    code = "personal_data"

    def __init__(self, field: str, found: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.found = found
        self.detail = detail
        self.extra = {"field": field, "found": found}


def refusal_message(found: str) -> str:
    what = {
        EMAIL: _("This looks like an e-mail address."),
        PHONE: _("This looks like a phone number."),
        BIRTH_DATE: _("This looks like a date of birth."),
    }[found]
    return what + " " + _("Do not enter names or identifying details here: rephrase without it.")


def refuse_personal_data(field: str, text: str | None) -> str:
    """`text` as given, or PersonalDataRefused naming `field` when it looks like a phone, e-mail or birth date."""
    found = find_personal_data(text or "")
    if found is not None:
        raise PersonalDataRefused(field, found, refusal_message(found))
    return text or ""


def refuse_personal_data_in(**fields: str | None) -> None:
    """Check several free-text fields at once: `refuse_personal_data_in(payee=..., note=...)`."""
    for field, text in fields.items():
        refuse_personal_data(field, text)
