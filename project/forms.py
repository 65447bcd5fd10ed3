"""The demo's forms: a new document, and a comment on one."""

from django import forms

from .models import Comment, Document


class DocumentForm(forms.ModelForm):
    class Meta:
        model = Document
        fields = ["title", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 4})}


class CommentForm(forms.ModelForm):
    class Meta:
        model = Comment
        fields = ["body"]
        labels = {"body": "Add a comment"}
        help_texts = {"body": "Mention someone with @username: they follow the document too."}
        widgets = {"body": forms.Textarea(attrs={"rows": 3})}
