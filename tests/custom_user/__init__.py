"""A user model without ``is_active``, and the tests that need it as ``AUTH_USER_MODEL``.

The model must be chosen before Django starts, so these tests run in a pytest of their own,
with ``tests.custom_user.settings``: ``tests/test_custom_user_model.py`` starts it.
"""
