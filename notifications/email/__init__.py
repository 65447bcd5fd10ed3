"""Email: what users have not seen, in digests, sent by tasks (docs/email.md).

``claims`` decides who is due and claims their digests, ``delivery`` sends a batch,
``messages`` renders one email, ``links`` signs the links it carries, ``views`` answers them,
``tasks`` is the only module that enqueues work. All internal: projects configure this through
``NOTIFICATIONS`` and templates, and send with ``notify(..., email=...)``.
"""
