"""The recipe that trains the shipped embedded world (G, E, identity net) and its measurement report."""
