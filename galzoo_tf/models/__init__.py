"""Keras 3 models: the vote CNN of Walmsley et al. (2019), GaMPEN (Ghosh et al. 2022), shared blocks.

Importing this package registers every custom layer and optimizer, so any saved galzoo model loads in safe mode.
"""

from galzoo_tf.models.blocks import MCDropout
from galzoo_tf.models.gampen import SpatialTransformer, build_gampen_model
from galzoo_tf.models.optimizers import TrunkScaledAdam
from galzoo_tf.models.vote_cnn import (
    ARCHITECTURES,
    DENSE_ACTIVATIONS,
    LEGACY_DENSE,
    PAPER_DENSE,
    build_vote_model,
    rebuild_vote_model,
)

__all__ = ["ARCHITECTURES", "DENSE_ACTIVATIONS", "LEGACY_DENSE", "MCDropout", "PAPER_DENSE", "SpatialTransformer",
           "TrunkScaledAdam", "build_gampen_model", "build_vote_model", "rebuild_vote_model"]
