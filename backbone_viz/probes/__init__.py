"""Probes of what a backbone learned: inside a block, knock-outs in turn, what a channel looks for, where it fires, the atlas."""
