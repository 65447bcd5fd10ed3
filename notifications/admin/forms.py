"""The admin's "Send notification" form: who gets it, and what it says.

The content rules are :func:`notifications.services.validate_content`'s, the very check
``notify()`` runs: the fields here only collect text, and its errors land on the field they name.
The form resolves the audience to one QuerySet of users, so that sending stays a single
``INSERT ... SELECT`` whatever its size, and counts it in one query. The followers of an object
are ``services.followers(obj)``, sent to with ``target=obj``: whoever muted the object is left
out, and the notification leads to it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from .. import services
from ..conf import app_settings
from ..models import Email, Follow, Level, Notification, id_list, is_primary_key
from ..users import active_users

SEND_PERMISSION = "notifications.send_notification"

USERS = "users"
GROUPS = "groups"
ALL = "all"
FOLLOWERS = "followers"

CONTENT_FIELDS = ("title", "body", "level", "category", "url")
# What stands in for a faulted field while the others are checked (see _validate_content).
_STAND_INS = {"title": "-", "body": "", "level": Level.INFO, "category": "", "url": ""}
_CONFIRM_SALT = "notifications.admin.forms.SendNotificationForm.confirm"
# notify()'s ``email`` argument, shown only with EMAIL_DIGESTS on ("": None, the site decides).
EMAIL_CHOICES = [
    ("", _("As the site decides")),
    ("none", _("In-app only")),
    ("digest", _("In-app, and email if still unseen (digest)")),
    ("now", _("In-app and email at once")),
]
# What a notification's ``email`` (as validate_content() resolved the choice) means, in the
# choices' words.
CHANNELS = {
    Email.NONE: EMAIL_CHOICES[1][1],
    Email.DIGEST: EMAIL_CHOICES[2][1],
    Email.NOW: EMAIL_CHOICES[3][1],
}
# The user admin's action passes the chosen ids in the URL: keep it well under the 8 KB that
# common proxies accept in a request line.
MAX_USERS_IN_URL = 500


def can_send(request: HttpRequest) -> bool:
    return request.user.has_perm(SEND_PERMISSION)


def shortened(value: Any, limit: int = 24) -> str:
    """``value`` as an error message may quote it: a 5,000-digit "id" is not worth repeating."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


class ObjectsField(forms.ModelMultipleChoiceField):
    """Django's field, refusing what cannot be a primary key before it reaches a query (see
    :func:`is_primary_key`), with the value shortened in the message."""

    def clean(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            for item in value:
                if not is_primary_key(cast(models.QuerySet, self.queryset).model, item):
                    raise ValidationError(
                        self.error_messages["invalid_pk_value"],
                        code="invalid_pk_value",
                        params={"pk": shortened(item)},
                    )
        return super().clean(value)


def followed_types(*, followable: bool = True) -> models.QuerySet[ContentType]:
    """The content types whose objects have Follow rows, and (``followable``) those of
    ``FOLLOWABLE_MODELS``: one query, an index probe per content type (the follows' unique
    index leads with it), however many follows there are."""
    chosen = Q(Exists(Follow.objects.filter(content_type=OuterRef("pk"))))
    if followable:
        for label in app_settings.FOLLOWABLE_MODELS:
            app_label, _dot, model = label.partition(".")
            chosen |= Q(app_label=app_label, model=model)
    return ContentType.objects.filter(chosen).order_by("app_label", "model")


def object_label(obj: models.Model) -> str:
    """An object as the admin names it: its model and its text, “document “Roadmap””."""
    return _("%(model)s “%(object)s”") % {
        "model": obj._meta.verbose_name,
        "object": shortened(obj, 60),
    }


def type_label(content_type: ContentType) -> str:
    """A content type as the admin names it: “Document (Demo)”, the model first, which a
    narrow select still shows when it cuts the rest."""
    model = content_type.model_class()
    if model is None:  # its app is gone; its follows stay until deleted
        return f"{content_type.app_label}.{content_type.model}"
    return f"{capfirst(model._meta.verbose_name)} ({model._meta.app_config.verbose_name})"


def followed_object(type_value: Any, object_id: str) -> models.Model:
    """The object of this type (a content type's id, among :func:`followed_types`) and id, or a
    ValidationError naming the field at fault: ``object_type`` or ``object_id``. Two queries."""
    field = ObjectTypeField(queryset=followed_types(), required=False)
    try:
        content_type = field.clean(type_value)
    except ValidationError as error:
        raise ValidationError({"object_type": error}) from None
    if content_type is None:
        raise ValidationError({"object_type": _("Choose the type of the object.")})
    return object_of(content_type, object_id)


def object_of(content_type: ContentType, object_id: str) -> models.Model:
    """The object of this type with this id, or a ValidationError naming the field at fault."""
    model = content_type.model_class()
    if model is None:
        raise ValidationError(
            {"object_type": _("This type's model is no longer installed.")}, code="gone"
        )
    name = model._meta.verbose_name
    if not object_id:
        raise ValidationError({"object_id": _("Enter the id of the object.")})
    if not is_primary_key(model, object_id):
        message = _("“%(value)s” is not an id of a %(model)s.")
        params = {"value": shortened(object_id), "model": name}
        error = ValidationError(message, code="invalid_pk_value", params=params)
        raise ValidationError({"object_id": error})
    obj = model._default_manager.filter(pk=object_id).first()
    if obj is None:
        message = _("No %(model)s has the id “%(value)s”.")
        params = {"value": shortened(object_id), "model": name}
        error = ValidationError(message, code="invalid_choice", params=params)
        raise ValidationError({"object_id": error})
    return obj


class ObjectTypeField(forms.ModelChoiceField):
    """A content type among :func:`followed_types`, the value checked as an id before the query
    (Django's field reads "\u0663" as 3, and SQLite fails on an id past 2**63)."""

    def label_from_instance(self, obj: Any) -> str:
        return type_label(obj)

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        if not is_primary_key(ContentType, value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class UserAutocomplete(AutocompleteSelectMultiple):
    """The admin's autocomplete, re-rendering a form that holds a malformed id without a 500.

    Django's widget looks the submitted values up as they are; the field reports those that
    cannot be ids as a form error, and the widget leaves them out. It searches through the send
    page's own view (``NotificationAdmin.user_search_view``).
    """

    url_name = "%s:notifications_notification_send_users"

    def optgroups(self, name: str, value: Sequence[str], attr: Any = None) -> list:
        model = self.choices.queryset.model
        valid = [item for item in value if is_primary_key(model, item)]
        return super().optgroups(name, valid, attr)


class SendNotificationForm(forms.Form):
    audience = forms.ChoiceField(
        label=_("Send to"),
        choices=[
            (USERS, _("Selected users")),
            (GROUPS, _("Active members of the selected groups")),
            (ALL, _("All active users")),
            (FOLLOWERS, _("Followers of an object")),
        ],
        initial=USERS,
        widget=forms.RadioSelect,
    )
    # `users` is built in __init__: its autocomplete widget needs the admin site.
    groups = ObjectsField(
        label=_("Groups"),
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
    )
    # The object whose followers get it: its type, and its id.
    object_type = ObjectTypeField(
        label=_("Object type"),
        queryset=ContentType.objects.none(),  # followed_types(), set in __init__
        required=False,
        empty_label=_("Choose the type of object"),
        help_text=_("The kinds of objects users follow."),
    )
    object_id = forms.CharField(
        label=_("Object id"),
        required=False,
        help_text=_("Its primary key, as in its admin page's address."),
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
    # Removed in __init__ unless EMAIL_DIGESTS is on: then the page is as it was without email.
    email = forms.ChoiceField(
        label=_("Channels"),
        choices=EMAIL_CHOICES,
        required=False,
        initial="",
        widget=forms.RadioSelect,
        help_text=_(
            "As the site decides: email at once for the levels and categories the site sends "
            "at once (EMAIL_NOW_LEVELS, EMAIL_NOW_CATEGORIES), otherwise in a digest if still "
            "unseen. Users who turned email off get none."
        ),
    )
    # Proof that this exact send was shown for confirmation (see confirmation_token()).
    confirmed = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        admin_site: admin.AdminSite | None = None,
        users_query: str | None = None,
        followers_query: str | None = None,
        **kwargs: Any,
    ):
        """``users_query``: the ``?users=1,2,3`` of a link to the page (the user admin's action
        makes them), chosen in the unbound form; what is not a user is an error on the field.
        ``followers_query``: the ``?followers_of=<content type id>:<object id>`` of a link (the
        follows' list and ``FollowersInline`` make them), that object's followers chosen."""
        super().__init__(*args, **kwargs)
        site = admin_site or admin.site
        # The admin's autocomplete looks users up through the Notification.recipient relation,
        # which needs the user model's ModelAdmin to have search_fields.
        self.fields["users"] = ObjectsField(
            label=_("Users"),
            queryset=get_user_model()._default_manager.all(),
            required=False,
            widget=UserAutocomplete(Notification._meta.get_field("recipient"), site),
        )
        cast(ObjectTypeField, self.fields["object_type"]).queryset = followed_types()
        if not app_settings.EMAIL_DIGESTS:
            del self.fields["email"]
        self.order_fields(
            ["audience", "users", "groups", "object_type", "object_id", *CONTENT_FIELDS, "email"]
        )
        self.notification: Notification | None = None
        self.recipient_count: int | None = None
        #: The object whose followers the form sends to (None for the other audiences).
        self.target: models.Model | None = None
        self._query_errors: dict[str, list[ValidationError]] = {}
        if users_query is not None and not self.is_bound:
            users, errors = users_from_query(users_query)
            if users:
                self.initial["users"] = users
            if errors:
                self._query_errors["users"] = errors
        if followers_query is not None and not self.is_bound:
            self._initial_followers(followers_query)

    def full_clean(self) -> None:
        super().full_clean()
        if self._query_errors:
            # An unbound form has no cleaned_data, which add_error() expects to update.
            self.cleaned_data = {}
            for field, errors in self._query_errors.items():
                self.add_error(field, errors)

    def _initial_followers(self, value: str) -> None:
        """Choose the followers of the object a ``?followers_of=`` link names, or say on the
        field what is wrong with it."""
        self.initial["audience"] = FOLLOWERS
        type_id, colon, object_id = value.partition(":")
        if not colon:
            message = _("A link to followers names “<type id>:<object id>”; it had “%(value)s”.")
            error = ValidationError(message, code="invalid", params={"value": shortened(value)})
            self._query_errors["object_type"] = [error]
            return
        self.initial["object_type"] = type_id if is_primary_key(ContentType, type_id) else None
        self.initial["object_id"] = object_id
        try:
            self.target = followed_object(type_id, object_id)
        except ValidationError as error:
            self._query_errors.update(error.update_error_dict({}))
            return
        # Say which object the id is, since the page shows only its id.
        self.fields["object_id"].help_text = _("Now: %(object)s.") % {
            "object": object_label(self.target)
        }

    def clean_users(self) -> list[int]:
        # The field has fetched the chosen users to check them: reading their ids costs no query.
        return sorted(user.pk for user in self.cleaned_data["users"])

    def clean_groups(self) -> list[int]:
        return sorted(group.pk for group in self.cleaned_data["groups"])

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.cleaned_data.get("audience") == FOLLOWERS:
            self._clean_followed()
        self.notification = self._validate_content()
        if not self.errors:
            self._check_audience()
        return cleaned

    def _clean_followed(self) -> None:
        if "object_type" in self.errors or "object_id" in self.errors:
            return
        content_type = self.cleaned_data.get("object_type")
        if content_type is None:
            self.add_error("object_type", _("Choose the type of the object."))
            return
        try:
            self.target = object_of(content_type, self.cleaned_data.get("object_id", ""))
        except ValidationError as error:
            self.add_error(None, error)

    @property
    def content(self) -> dict[str, Any]:
        """The keyword arguments of notify() other than the recipients."""
        content = {name: self.cleaned_data.get(name, "") for name in CONTENT_FIELDS}
        if "email" in self.fields:
            content["email"] = self.cleaned_data.get("email") or None
        return content

    @property
    def channels(self) -> str | None:
        """Where the notification goes, in words (None: the page offers no choice)."""
        if "email" not in self.fields or self.notification is None:
            return None
        # validate_content() resolved the site's choice as notify() will.
        channels = str(CHANNELS[Email(self.notification.email)])
        if self.content["email"] is None:
            return _("As the site decides: %(channels)s") % {"channels": channels}
        return channels

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
        if kind == FOLLOWERS:
            assert self.target is not None  # clean() found it, or the form is not valid
            return services.followers(self.target)
        return active

    @property
    def target_label(self) -> str | None:
        """The object whose followers it goes to, in words (None: another audience)."""
        return None if self.target is None else object_label(self.target)

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
        if kind == FOLLOWERS and self.target is not None:
            chosen = [self.cleaned_data["object_type"].pk, str(self.target.pk)]
        data = json.dumps([kind, chosen, list(self.content.values())])
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
        # Those who muted this category or level (or the object) are left out, as notify()
        # leaves them out.
        self.recipient_count = services.without_muted(
            self.recipients(),
            category=self.cleaned_data.get("category") or "",
            level=self.cleaned_data.get("level") or Level.INFO,
            target=self.target,
        ).count()
        if self.recipient_count == 0:
            self.recipient_count = None
            if kind == USERS:
                self.add_error("users", _("Every chosen user muted this category or level."))
            elif kind == GROUPS:
                self.add_error("groups", _("These groups have no active members."))
            elif kind == FOLLOWERS:
                self.add_error("object_id", self._no_followers())
            else:
                self.add_error(None, _("There are no active users."))

    def _no_followers(self) -> str:
        assert self.target is not None
        params = {"object": object_label(self.target)}
        if services.followers(self.target).exists():
            return _("Every follower of %(object)s muted this category or level.") % params
        if Follow.objects.of(self.target).muted().exists():
            return _("No active user follows %(object)s without having muted it.") % params
        return _("No active user follows %(object)s.") % params

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


def users_from_query(value: str) -> tuple[list[Any], list[ValidationError]]:
    """The users' ids in a query-string value such as ``"1,2,3"``, and what is wrong with the
    rest: parts that are no id, ids of no user, more ids than a link holds. One query."""
    user_model = get_user_model()
    parts = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if len(parts) > MAX_USERS_IN_URL:
        message = _("A link chooses at most %(limit)s users; it had %(count)s.")
        params = {"limit": MAX_USERS_IN_URL, "count": len(parts)}
        return [], [ValidationError(message, code="too_many", params=params)]
    errors = []
    malformed = [part for part in parts if not is_primary_key(user_model, part)]
    if malformed:
        errors.append(
            ValidationError(
                _("Not a user id: %(values)s."),
                code="invalid_pk_value",
                params={"values": ", ".join(f"“{shortened(part)}”" for part in malformed[:5])},
            )
        )
    pk = user_model._meta.pk
    ids = [pk.to_python(part) for part in parts if part not in malformed]
    found = set(
        user_model._default_manager.filter(pk__in=ids).values_list("pk", flat=True) if ids else ()
    )
    unknown = [user_id for user_id in ids if user_id not in found]
    if unknown:
        errors.append(
            ValidationError(
                _("No user has the id %(values)s."),
                code="invalid_choice",
                params={"values": ", ".join(str(user_id) for user_id in unknown[:5])},
            )
        )
    return [user_id for user_id in ids if user_id in found], errors
