"""The tasks galzoo learns: ``votes`` (Binomial vote posteriors, Walmsley et al. 2019) and ``parameters``
(GaMPEN posteriors of L_B/L_T, R_e and flux, Ghosh et al. 2022).

Each is a ``Task`` (``base.py``) in its own subpackage with the same module names;
``registry.py`` is the one place that decides which task a run or a model directory is.
"""
