from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination

from ..conf import app_settings


class NotificationCursorPagination(CursorPagination):
    """Newest first, by id: a cursor stays exact however many notifications arrive meanwhile."""

    ordering = "-id"
    page_size_query_param = "page_size"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return app_settings.PAGE_SIZE
        try:
            size = int(raw) if raw.isascii() else 0  # int() would take "٣" for 3
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({"page_size": ["A positive integer is required."]})
        return min(size, app_settings.MAX_PAGE_SIZE)

    def decode_cursor(self, request):
        # DRF answers a bad cursor with 404, and one whose position is no number with a 500 (it
        # trusts the decoded position); both are bad input, so 400.
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                int(cursor.position)
            return cursor
        except Exception:
            raise ValidationError({"cursor": ["Invalid cursor."]}) from None
