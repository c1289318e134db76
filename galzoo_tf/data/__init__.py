"""Data: records and manifests, images, augmentation, inputs, the record pipeline, prepare and its sources."""
