"""Meta-learning of the paper's networks: the trainer, its process group setup and evaluation."""
