"""What the pages draw beyond a few widgets: block diagrams and their words, attribution and feature-visualization views, the heads page's tabs, small drawing helpers."""
