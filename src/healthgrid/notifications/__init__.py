"""Notifications (消息通知): messages to patients, users and practitioners, delivered by a
pluggable sender. The default sender writes to the inbox table, read on the inbox page;
an operator plugs an SMS gateway or a WeChat template-message sender in by name.

Public service: ``notify``, ``register_sender``, ``inbox``, ``mark_read``, ``unread_count``.
Contexts call ``notify`` from their outbox handlers (``<context>/jobs.py``), never from the
transaction of the change itself, so a slow gateway never holds a booking's row locks.
"""
