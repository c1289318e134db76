"""Catalogues: file formats, the streaming writer, partitioned datasets, and one predict for every task."""
