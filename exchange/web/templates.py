"""The Jinja environment of every page and fragment: gettext, locale-aware formatting and the labels."""

from __future__ import annotations

from jinja2 import Environment, FileSystemLoader, select_autoescape

from exchange.settings import ROOT
from exchange.web import i18n, labels


def template_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(ROOT / "templates"),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        format_datetime=i18n.format_datetime,
        format_ago=i18n.format_ago,
        format_number=i18n.format_number,
        format_money=i18n.format_money,
        get_locale=i18n.get_locale,
        kind_labels=labels.KIND_LABELS,
        profile_labels=labels.PROFILE_LABELS,
        criteria_labels=labels.CRITERIA_LABELS,
        security_labels=labels.SECURITY_LABELS,
        labels=labels.translated,
    )
    return env
