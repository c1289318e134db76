"""The galzoo command line (installed as the ``galzoo_cli`` package): options in, library calls, output."""
