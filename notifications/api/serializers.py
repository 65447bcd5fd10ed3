"""Input and output shapes of the REST API besides the notification itself and its ids
(``notifications.protocol``: ``NotificationSerializer``, shared with the WebSocket, and
``IdField``)."""

from rest_framework import serializers

from ..models import CATEGORY_MAX_LENGTH, Level
from ..protocol import IdField


class ListFiltersSerializer(serializers.Serializer):
    unread = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: only unread; false: only read",
    )
    archived = serializers.BooleanField(
        required=False, default=False, help_text="true: only archived; false (default): the inbox"
    )
    category = serializers.SlugField(required=False, max_length=CATEGORY_MAX_LENGTH)
    level = serializers.ChoiceField(choices=Level.choices, required=False)
    after = IdField(
        required=False,
        help_text="only notifications newer than this id (and any that committed late just "
        "before it: drop the ids you already have)",
    )


class UpToSerializer(serializers.Serializer):
    up_to = IdField(
        required=False,
        allow_null=True,
        help_text="only notifications up to this id: what arrived later is left alone",
    )


class RequiredUpToSerializer(serializers.Serializer):
    up_to = IdField()


class CountsSerializer(serializers.Serializer):
    unread_count = serializers.IntegerField()
    unseen_count = serializers.IntegerField()
    last_id = serializers.IntegerField(allow_null=True)


class BulkChangeSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="the ids changed, when at most MAX_IDS_PER_MESSAGE (500) changed; else empty",
    )
    up_to = serializers.IntegerField(
        allow_null=True,
        help_text="the highest id changed: every notification up to it is now in the new state "
        "(null when nothing changed)",
    )
    count = serializers.IntegerField(help_text="how many notifications changed")
    unread_count = serializers.IntegerField()
    unseen_count = serializers.IntegerField()


class TicketSerializer(serializers.Serializer):
    ticket = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="seconds")


class StrictSlugField(serializers.SlugField):
    """A slug that was sent as a string: DRF's fields would take 0 for "0"."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON sends them: DRF's field would take 0, "no" and "off" too."""

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class ChannelPreferencesSerializer(serializers.Serializer):
    enabled = StrictBooleanField(required=False, help_text="false: nothing on this channel")
    muted_categories = serializers.ListField(
        child=StrictSlugField(max_length=CATEGORY_MAX_LENGTH),
        max_length=100,
        required=False,
        help_text="category slugs not sent on this channel",
    )
    muted_levels = serializers.ListField(
        child=serializers.ChoiceField(choices=Level.choices), max_length=4, required=False
    )

    def to_internal_value(self, data: object) -> object:
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be an object")
        return super().to_internal_value(data)


class ChannelsSerializer(serializers.Serializer):
    email = ChannelPreferencesSerializer(required=False)
    push = ChannelPreferencesSerializer(required=False)

    def to_internal_value(self, data: object) -> object:
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be an object")
        return super().to_internal_value(data)


class PreferencesSerializer(serializers.Serializer):
    muted_categories = serializers.ListField(
        child=StrictSlugField(max_length=CATEGORY_MAX_LENGTH),
        max_length=100,
        help_text="category slugs",
    )
    muted_levels = serializers.ListField(
        child=serializers.ChoiceField(choices=Level.choices), max_length=4
    )
    unmutable_categories = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="categories this project does not let users mute in-app",
    )
    channels = ChannelsSerializer(
        required=False,
        help_text="per channel besides in-app (email, push): left out of a PUT, left as it is",
    )
    email_available = serializers.BooleanField(
        read_only=True, help_text="whether this site sends email at all (EMAIL_DIGESTS)"
    )
    push_available = serializers.BooleanField(
        read_only=True, help_text="whether this site sends Web Push at all (WEB_PUSH)"
    )
