"""The galzoo command line (installed as the ``galzoo_cli`` package): options in, library calls, output."""

import os

# Quieten TensorFlow's C++ runtime logging (users can still set it themselves). The few
# lines TensorFlow 2.21 prints while importing ignore this setting (tensorflow#100442).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
