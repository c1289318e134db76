"""Keras 3 models: the vote CNN of Walmsley et al. (2019), a larger trunk for GPUs, shared blocks."""

from galzoo_tf.models.blocks import MCDropout
from galzoo_tf.models.vote_cnn import ARCHITECTURES, build_vote_model

__all__ = ["ARCHITECTURES", "MCDropout", "build_vote_model"]
