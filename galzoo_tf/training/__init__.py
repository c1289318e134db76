"""Training any task: its config, the generic loop, callbacks, strategies, the distributed loop, model directories."""
