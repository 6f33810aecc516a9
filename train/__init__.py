"""edgefill training: models, data, losses, loops (torch)."""
