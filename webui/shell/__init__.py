"""The app's shell: the sidebar, each session's choices, links that reopen a view, projector mode, the page registry, the weights' download and how the server starts."""
