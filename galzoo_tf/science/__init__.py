"""Science on the posteriors: the bias report, expert-label rescaling, population fractions."""
