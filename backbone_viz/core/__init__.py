"""The core: a backbone loaded and traced once, described as data, run hook-free on any device."""
