"""Projector mode (``?present=1`` or the sidebar's toggle): a larger font, the sidebar collapsed, each
page's explanations folded so that its main figure is on the first screen of a 1280 × 720 projector.

Pages need no change: :func:`webui.views.widgets.explain` folds its text while the mode is on, and
:func:`webui.page_setup` injects the CSS once per run.
"""

from __future__ import annotations

import streamlit as st

from webui.shell.links import PRESENT

#: On every page: labels wrap instead of being cut off with "…" in narrow columns (level badges, metric
#: labels, inline code), so that nothing is cut off at a projector's 1280 × 720.
BASE_CSS = """
<style>
.stMarkdownBadge { white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  max-width: 100%; height: auto !important; }
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] * { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; }
:not(pre) > code { white-space: pre-wrap !important; overflow-wrap: anywhere; }
</style>
"""
#: Larger text, less padding above the title, narrower margins; nothing else changes.
CSS = """
<style>
html { font-size: 20px; }
[data-testid="stMainBlockContainer"] { padding-top: 3.4rem; padding-left: 1.5rem; padding-right: 1.5rem;
  max-width: 100%; }
h1 { font-size: 1.9rem !important; padding-top: 0 !important; padding-bottom: 0.3rem !important; }
h3 { font-size: 1.3rem !important; padding-top: 0.2rem !important; }
</style>
"""


def on() -> bool:
    """Whether projector mode is on for this session (the URL's ``present=1`` sets it)."""
    if PRESENT in st.session_state:
        return bool(st.session_state[PRESENT])
    return st.query_params.get("present") == "1"


def sidebar_state() -> str:
    """``st.set_page_config``'s ``initial_sidebar_state``: collapsed in projector mode."""
    return "collapsed" if on() else "expanded"


#: Folds the sidebar once per page load: ``initial_sidebar_state`` yields to the browser's memory of a
#: sidebar the user once opened (Streamlit keeps it in localStorage), which would leave a projected page
#: ~880 px wide. Once only, so that the teacher can open the sidebar again.
FOLD_JS = """
<script>
(() => {
  if (window.bvSidebarFolded) return;
  window.bvSidebarFolded = true;
  let tries = 0;
  const fold = () => {
    const sidebar = document.querySelector('[data-testid="stSidebar"]');
    if (sidebar && sidebar.getAttribute("data-collapsed") === "false") {
      const button = sidebar.querySelector('[data-testid="stSidebarCollapseButton"] button');
      if (button) { button.click(); return; }
    }
    if (!sidebar && ++tries < 20) setTimeout(fold, 100);
  };
  fold();
})();
</script>
"""


def inject() -> None:
    """Adds the page CSS to this run, and the projector CSS when the mode is on (a style-only ``st.html``
    takes no space), with the script that folds a remembered open sidebar."""
    st.html(BASE_CSS + (CSS if on() else ""))
    if on():
        st.html(FOLD_JS, unsafe_allow_javascript=True)
