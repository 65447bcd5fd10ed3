"""The messages Django's file email backend wrote (``EMAIL_FILE_PATH``), for the demo's /outbox/.

The backend writes one file per connection, each message followed by a line of 79 dashes. Only
the folder's own files are read, found by listing it: a name asked for is looked up in that
listing, never joined to the folder's path, so no name reaches outside it.
"""

from __future__ import annotations

import email
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings

FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
SEPARATOR = b"\n" + b"-" * 79 + b"\n"
NEWEST_FILES = 200  # the folder grows with every batch sent: only the newest files are read
# Headers shown beside a message, in this order.
HEADERS = (
    "Date",
    "From",
    "To",
    "Subject",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
    "Content-Language",
)


@dataclass(frozen=True)
class Message:
    file: str  # the file's name in the folder
    number: int  # its place in the file
    date: datetime
    to: str
    subject: str
    parsed: EmailMessage

    @property
    def key(self) -> tuple[str, int]:
        return self.file, self.number

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(name, str(self.parsed[name])) for name in HEADERS if name in self.parsed]

    def part(self, subtype: str) -> str:
        body = self.parsed.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else ""

    def addressed_to(self, address: str) -> bool:
        addresses = email.utils.getaddresses([self.to])
        return any(found.casefold() == address.casefold() for _, found in addresses)


def in_use() -> bool:
    """Whether emails go to files (else to ``EMAIL_HOST``)."""
    return settings.EMAIL_BACKEND == FILE_BACKEND


def folder() -> Path:
    return Path(settings.EMAIL_FILE_PATH)


def _files() -> dict[str, os.DirEntry]:
    try:
        with os.scandir(folder()) as entries:
            return {
                entry.name: entry
                for entry in entries
                if entry.is_file(follow_symlinks=False) and not entry.name.startswith(".")
            }
    except FileNotFoundError:  # nothing sent yet
        return {}


_HEADER_LINE = re.compile(rb"[!-9;-~]+:|[ \t]")  # a field, or a folded field's next line


def _starts_a_message(chunk: bytes) -> bool:
    headers = chunk.lstrip(b"\n").split(b"\n\n", 1)[0].splitlines()
    return (
        bool(headers)
        and all(_HEADER_LINE.match(line) for line in headers)
        and any(line.lower().startswith(b"message-id:") for line in headers)
    )


def _read(entry: os.DirEntry) -> list[Message]:
    chunks: list[bytes] = []
    for chunk in Path(entry.path).read_bytes().split(SEPARATOR):
        # A body line of 79 dashes splits a message too: what follows a real separator is a
        # message's header block (with the Message-ID Django always sets), so glue anything else
        # back on. (Which header comes first differs between Django 5.2 and 6.)
        if chunks and not _starts_a_message(chunk):
            chunks[-1] += SEPARATOR + chunk
        else:
            chunks.append(chunk)
    written = datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, UTC)
    found = []
    for number, chunk in enumerate(chunk for chunk in chunks if chunk.strip()):
        parsed = email.message_from_bytes(chunk, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        try:
            date = parsedate_to_datetime(str(parsed["Date"]))
        except (TypeError, ValueError):
            date = written
        if date.tzinfo is None:  # "-0000", as Django writes it: UTC, origin unknown
            date = date.replace(tzinfo=UTC)
        to, subject = str(parsed["To"] or ""), str(parsed["Subject"] or "")
        found.append(Message(entry.name, number, date, to, subject, parsed))
    return found


def messages() -> list[Message]:
    """The messages of the folder's newest files, newest first."""
    files = sorted(_files().values(), key=lambda entry: entry.stat().st_mtime, reverse=True)
    found = [message for entry in files[:NEWEST_FILES] for message in _read(entry)]
    return sorted(found, key=lambda message: (message.date, message.number), reverse=True)


def message(file: str, number: int) -> Message | None:
    """The ``number``th message of the folder's file ``file``, if there is one."""
    entry = _files().get(file)
    found = _read(entry) if entry is not None else []
    return found[number] if 0 <= number < len(found) else None
