"""backbone-viz web app: see how a CNN backbone builds features, stage by stage, beside Grad-CAM.

Run with ``streamlit run app.py``. This file sets the page config, draws the shared sidebar and runs
the chosen page from ``app_pages/`` (the registry of pages is :mod:`webui.shell.pages`); pages hold widgets and layout only (the engine does the computing).
The folder is not called ``pages/``: Streamlit treats an app with a ``pages/`` folder as an old-style
multipage app until this file has called ``st.navigation`` once in the process, so a first visit through
a link to a page (``/lessons?...``) ran that page alone and left every later session with the folder's
file names as navigation and no page config (projector mode's sidebar stayed open).
"""

import streamlit as st

import webui
from webui.compute import warm
from webui.shell import pages, projector

webui.configure_torch()  # before any session analyses (pages call it too: AppTest runs them without app.py)
warm.start()  # once per process: the bundled backbone and the sample gallery, in the background
st.set_page_config(
    page_title="backbone-viz",
    page_icon=":material/layers:",
    layout="wide",
    initial_sidebar_state=projector.sidebar_state(),  # folded in projector mode (?present=1)
)

PAGES = [st.Page(p.file, title=p.title, icon=p.icon, default=i == 0) for i, p in enumerate(pages.PAGES)]

page = st.navigation(PAGES)
with webui.sidebar_for_this_run():
    page.run()
