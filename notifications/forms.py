"""The admin's "Send notification" form: who gets it, and what it says.

The content rules are :func:`notifications.services.validate_content`'s, the very check
``notify()`` runs: the fields here only collect text, and its errors land on the field they name.
The form resolves the audience to one QuerySet of users, so that sending stays a single
``INSERT ... SELECT`` whatever its size, and counts it in one query.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext_lazy as _

from . import services
from .conf import app_settings
from .models import Level, Notification, id_list
from .users import active_users

USERS = "users"
GROUPS = "groups"
ALL = "all"

CONTENT_FIELDS = ("title", "body", "level", "category", "url")
# What stands in for a faulted field while the others are checked (see _validate_content).
_STAND_INS = {"title": "-", "body": "", "level": Level.INFO, "category": "", "url": ""}
_CONFIRM_SALT = "notifications.forms.SendNotificationForm.confirm"


class UserAutocomplete(AutocompleteSelectMultiple):
    """The admin's autocomplete, re-rendering a form that holds a malformed id without a 500.

    Django's widget looks the submitted values up as they are, and the lookup raises on a value
    that is no id at all ("abc"); the field reports such values as a form error anyway.
    """

    def optgroups(self, name: str, value: Sequence[str], attr: Any = None) -> list:
        pk = self.choices.queryset.model._meta.pk
        valid = []
        for item in value:
            try:
                pk.to_python(item)
            except ValidationError:
                continue
            valid.append(item)
        return super().optgroups(name, valid, attr)


class SendNotificationForm(forms.Form):
    audience = forms.ChoiceField(
        label=_("Send to"),
        choices=[
            (USERS, _("Selected users")),
            (GROUPS, _("Active members of the selected groups")),
            (ALL, _("All active users")),
        ],
        initial=USERS,
        widget=forms.RadioSelect,
    )
    # `users` is built in __init__: its autocomplete widget needs the admin site.
    groups = forms.ModelMultipleChoiceField(
        label=_("Groups"),
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
    )
    # No rules of their own (no required, max_length or choices check): notify() has the rules.
    title = forms.CharField(label=_("Title"), required=False)
    body = forms.CharField(
        label=_("Body"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Plain text, shown as written."),
    )
    level = forms.CharField(
        label=_("Level"),
        required=False,
        initial=Level.INFO,
        widget=forms.Select(choices=Level.choices),
    )
    category = forms.CharField(
        label=_("Category"),
        required=False,
        help_text=_("A slug: letters, digits, hyphens and underscores."),
    )
    url = forms.CharField(
        label=_("Link"),
        required=False,
        help_text=_("Where the notification leads: http(s)://… or a path on this site (/…)."),
    )
    # Proof that this exact send was shown for confirmation (see confirmation_token()).
    confirmed = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, admin_site: admin.AdminSite | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        site = admin_site or admin.site
        # The admin's autocomplete looks users up through the Notification.recipient relation,
        # which needs the user model's ModelAdmin to have search_fields.
        self.fields["users"] = forms.ModelMultipleChoiceField(
            label=_("Users"),
            queryset=get_user_model()._default_manager.all(),
            required=False,
            widget=UserAutocomplete(Notification._meta.get_field("recipient"), site),
        )
        self.order_fields(["audience", "users", "groups", *CONTENT_FIELDS])
        self.notification: Notification | None = None
        self.recipient_count: int | None = None

    def clean_users(self) -> list[int]:
        # The field has fetched the chosen users to check them: reading their ids costs no query.
        return sorted(user.pk for user in self.cleaned_data["users"])

    def clean_groups(self) -> list[int]:
        return sorted(group.pk for group in self.cleaned_data["groups"])

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        self.notification = self._validate_content()
        if not self.errors:
            self._check_audience()
        return cleaned

    @property
    def content(self) -> dict[str, Any]:
        """The keyword arguments of notify() other than the recipients."""
        return {name: self.cleaned_data.get(name, "") for name in CONTENT_FIELDS}

    def recipients(self) -> models.QuerySet:
        """The recipients as one QuerySet of users (not yet evaluated)."""
        users = get_user_model()._default_manager.all()
        kind = self.cleaned_data["audience"]
        if kind == USERS:
            # One query parameter however many users were chosen (see models.id_list).
            return users.filter(pk__in=id_list(self.cleaned_data["users"], users.db))
        active = active_users(users)
        if kind == GROUPS:
            # A semi-join: each member once, however many of the groups they are in.
            members = users.filter(groups__in=self.cleaned_data["groups"]).values("pk")
            return active.filter(pk__in=members)
        return active

    @property
    def needs_confirmation(self) -> bool:
        """A large send that was not confirmed with the token of this very data."""
        if self.recipient_count is None or self.recipient_count <= app_settings.SEND_CONFIRM_ABOVE:
            return False
        return not constant_time_compare(
            self.cleaned_data.get("confirmed", ""), self.confirmation_token()
        )

    def confirmation_token(self) -> str:
        """A signature of the audience and content: editing either after the confirmation step
        makes the token stale, so what is sent is what was confirmed."""
        kind = self.cleaned_data["audience"]
        chosen = self.cleaned_data.get(kind, []) if kind in (USERS, GROUPS) else []
        data = json.dumps([kind, chosen, [self.content[name] for name in CONTENT_FIELDS]])
        return salted_hmac(_CONFIRM_SALT, data, algorithm="sha256").hexdigest()

    def _check_audience(self) -> None:
        kind = self.cleaned_data["audience"]
        if kind == USERS:
            if not self.cleaned_data["users"]:
                self.add_error("users", _("Choose at least one user."))
                return
        elif kind == GROUPS and not self.cleaned_data["groups"]:
            self.add_error("groups", _("Choose at least one group."))
            return
        # Those who muted this category or level are left out, as notify() leaves them out.
        self.recipient_count = services.without_muted(
            self.recipients(),
            category=self.cleaned_data.get("category") or "",
            level=self.cleaned_data.get("level") or Level.INFO,
        ).count()
        if self.recipient_count == 0:
            self.recipient_count = None
            if kind == USERS:
                self.add_error("users", _("Every chosen user muted this category or level."))
            elif kind == GROUPS:
                self.add_error("groups", _("These groups have no active members."))
            else:
                self.add_error(None, _("There are no active users."))

    def _validate_content(self) -> Notification | None:
        """notify()'s own check. It stops at the first error, so each field it faults is set
        aside (a stand-in takes its place) and the rest checked again: every error shows at once."""
        content = self.content
        while True:
            try:
                return services.validate_content(**content)
            except ValueError as error:
                # validate_content() names the argument first: "url: only http(s) URLs ...".
                name, _sep, message = str(error).partition(": ")
                if name in self.errors:  # its stand-in failed too: report what we have
                    return None
                if name not in _STAND_INS or not message:
                    self.add_error(None, str(error))
                    return None
                self.add_error(name, message[:1].upper() + message[1:])
                content[name] = _STAND_INS[name]


def users_from_query(value: str) -> list[int]:
    """User ids from a query-string value such as ``"1,2,3"``; anything else is ignored."""
    return [int(part) for part in value.split(",") if part.strip().isdigit() and int(part) > 0]
