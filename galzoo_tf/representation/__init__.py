"""What a trained vote model's trunk offers beyond its heads: embeddings, similarity search and anomalies.

``embed`` writes the trunk's pooled features (the input of the MC dropout layer) of every
galaxy; ``search`` finds a galaxy's nearest neighbours and the most unusual galaxies in them.
"""
