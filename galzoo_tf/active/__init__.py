"""Active learning: acquisition scores, acquiring from a pool, simulated campaigns and their reports."""
