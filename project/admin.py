from django.contrib import admin

from notifications.admin import FollowersInline

from .models import Comment, Document


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    fields = ["author", "body", "created_at"]
    raw_id_fields = ["author"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "author", "created_at"]
    list_select_related = ["author"]
    search_fields = ["title"]
    raw_id_fields = ["author"]
    inlines = [FollowersInline, CommentInline]  # who follows it, and why


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "author", "created_at"]
    list_select_related = ["author", "document"]
    raw_id_fields = ["author", "document"]
