"""One module per CLI command; each exposes register(cli). Heavy imports inside command bodies."""
