"""Vote posteriors (Walmsley et al. 2019): Binomial heads, their likelihood, MC dropout sampling, calibration."""
