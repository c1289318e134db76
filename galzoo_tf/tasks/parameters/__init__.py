"""Parameter posteriors (GaMPEN, Ghosh et al. 2022): targets, MVN likelihood, sampling, calibration."""
