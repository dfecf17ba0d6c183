"""Class mode's storage and rules: a class a teacher opens, the seats students take, their answers.

Plain Python over SQLAlchemy, with no Streamlit in it, so that the pages, a load test and a notebook can all
use it. One job per module:

* ``store``: :class:`~webui.classroom.store.ClassStore`, the classes, seats and answers in SQLite (WAL mode,
  the default, zero set-up) or PostgreSQL (a URL), with the schema created and migrated by the store itself.
* ``schema``: the tables (documented there) and the ordered migrations the store applies on start.
* ``limits``: :class:`~webui.classroom.limits.RateLimiter`, a token bucket per key kept in memory, which holds
  each seat to about one answer a second (nginx cannot: a class's answers share one address and ride one
  websocket per student).
* ``qr``: the join link as a QR code picture, made without a network.
* ``errors``: :class:`~webui.classroom.errors.ClassError`, every refusal a student or a teacher can meet.

Note that ``import webui.classroom`` runs ``webui/__init__`` first (Streamlit and torch); nothing in this
package imports either.
"""

from __future__ import annotations
