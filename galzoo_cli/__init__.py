"""The galzoo command line (installed as the ``galzoo_cli`` package): options in, library calls, output.

TensorFlow's start-up lines are kept off the terminal by ``console.quiet_start`` (``galzoo --verbose`` shows them).
"""
