"""Temperature plans: the mean temperature coefficient over the operating range and the meter's own
temperature reading against the climate chamber's air."""
