"""``python -m webui.launch run app.py [streamlit options]``: Streamlit with a warm start.

Runs :func:`webui.warm.run` in this process first, so that by the time the server answers its health
check the bundled backbone is loaded and the sample gallery analysed in the very caches the sessions
will read; then hands the command line to Streamlit's own ``streamlit`` command.
"""

from __future__ import annotations

import sys


def _navigation_by_app_py() -> None:
    """Tells Streamlit from the start that ``app.py`` makes the navigation (``st.navigation``).

    Streamlit treats an app with a ``pages/`` folder as an old-style multipage app until ``app.py`` has
    called ``st.navigation`` once in the process. So when the first visit after a start comes through a
    link to a page (``/lessons?...``), Streamlit runs that page's file alone. That session, and every
    later one until somebody opens Home, then lists the folder's file names ("app", "atlas", ...)
    instead of the pages. It also gets no page config, so projector mode leaves the sidebar open (the
    "first session after a start" seen in an earlier round). The switch is a class attribute of
    Streamlit's ``PagesManager`` (private API); if it is gone, nothing is changed.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return
    if hasattr(PagesManager, "uses_pages_directory"):
        PagesManager.uses_pages_directory = False


def main() -> None:
    from webui import warm

    _navigation_by_app_py()

    seconds = warm.run()
    print(f"backbone-viz: warm start done in {seconds:.1f} s", flush=True)
    from streamlit.web import cli

    sys.argv[0] = "streamlit"
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
