from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.utils.translation import get_language_info

from notifications.services import follow
from project.languages import EMAIL_LANGUAGES
from project.models import Document

USERS = [
    # username, password, staff
    ("admin", "admin-demo", True),
    ("alice", "alice-demo", False),
    ("bob", "bob-demo", False),
]
DOCUMENTS = [
    # title, author, body
    (
        "Launch plan",
        "alice",
        "We launch on the first Monday of next month. Comment below with what is missing;"
        " mention someone with @username to bring them in.",
    ),
    ("Release notes draft", "bob", "What changed since the last release, in plain words."),
]


class Command(BaseCommand):
    help = "Create the demo's users and documents (idempotent) and print their logins."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000/",
            help="where the demo is served, for the sign-in link (make demo passes HOST and PORT)",
        )

    def handle(self, *args, **options) -> None:
        user_model = get_user_model()
        team, _ = Group.objects.get_or_create(name="Demo team")
        for username, password, staff in USERS:
            user, created = user_model.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.is_staff = user.is_superuser = staff
            if created or not user.email:  # databases seeded before the demo sent emails too
                user.email = f"{username}@example.com"
                user.save()
            if not staff:
                user.groups.add(team)
        for title, author, body in DOCUMENTS:
            user = user_model.objects.get(username=author)
            document, created = Document.objects.get_or_create(
                title=title, author=user, defaults={"body": body}
            )
            if created:  # as the documents page does: the author follows what they write
                follow(user, document, reason="author")
        self.stdout.write(f"Demo logins ({options['url'].rstrip('/')}/login/):")
        for username, password, staff in USERS:
            role = "superuser" if staff else "user"
            language = EMAIL_LANGUAGES.get(username)
            language = f", emails in {get_language_info(language)['name']}" if language else ""
            self.stdout.write(
                f"  {username:<6} / {password:<11} ({role}; {username}@example.com{language})"
            )
