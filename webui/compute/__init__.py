"""The app's one gateway to the model: the caches every session shares, the fair queue every model run takes a turn of, the warm start, and the figures drawn from results."""
