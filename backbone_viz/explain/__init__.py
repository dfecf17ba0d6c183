"""Explanations of one picture: activations and class activation maps from one pass, pixel attributions and their sanity check, the head's sum."""
