"""``python -m webui.shell.launch run app.py [streamlit options]``: Streamlit with a warm start.

Runs :func:`webui.compute.warm.run` in this process first, so that by the time the server answers its health
check the bundled backbone is loaded and the sample gallery analysed in the very caches the sessions
will read; then hands the command line to Streamlit's own ``streamlit`` command.
"""

from __future__ import annotations

import sys


def main() -> None:
    from webui.compute import warm

    seconds = warm.run()
    print(f"backbone-viz: warm start done in {seconds:.1f} s", flush=True)
    from streamlit.web import cli

    sys.argv[0] = "streamlit"
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
