"""Join a class, a student's page (made for a phone): the code from the projector's QR code or typed, an
optional nickname (off by default), then the class's current question, one answer changeable until the
reveal, then the right answer beside one's own.

The seat lives in the address (``?code=...&seat=...``), so a phone that slept or a reload keeps its seat and
its answers. This page draws no sidebar choices of its own: the class's backbone and picture are pinned.
"""

import streamlit as st

from webui.shell import projector
from webui.views import classroom_views as views

projector.inject()
if not projector.on():
    views.fold_sidebar()

st.title("Join a class")
views.show_notice()
seat = views.student_seat()
if seat is None:
    views.join_form()
else:
    views.student_question(seat)
