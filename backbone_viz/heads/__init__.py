"""Heads on a backbone's features: the head an analysis uses, a new one fitted in seconds, the maps a detector reads."""
