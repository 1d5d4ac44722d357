"""The Jinja environment of every page and fragment: gettext, locale-aware formatting and the labels."""

from __future__ import annotations

from jinja2 import Environment, FileSystemLoader, select_autoescape

from exchange.settings import ROOT
from exchange.web import forms, i18n, labels, languages, localtime


def template_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(ROOT / "templates"),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        # Times in a zone: `format_datetime(at, zone_for(facility.province))`; no zone is the request's zone.
        format_datetime=localtime.format_datetime,
        format_time=localtime.format_time,
        format_deadline=localtime.format_deadline,
        format_relative=localtime.format_relative,
        format_ago=i18n.format_ago,
        zone_for=localtime.zone_for,
        zone_label=localtime.zone_label,
        current_province=localtime.current_province,
        format_number=i18n.format_number,
        format_money=i18n.format_money,
        get_locale=i18n.get_locale,
        kind_labels=labels.KIND_LABELS,
        profile_labels=labels.PROFILE_LABELS,
        criteria_labels=labels.CRITERIA_LABELS,
        security_labels=labels.SECURITY_LABELS,
        role_labels=labels.ROLE_LABELS,
        org_kind_labels=labels.ORG_KIND_LABELS,
        change_reason=labels.change_reason,
        labels=labels.translated,
        language_name=languages.language_name,
        language_choices=languages.language_choices,
        new_idempotency_key=forms.new_idempotency_key,
        take_flashes=forms.take_flashes,
    )
    return env
