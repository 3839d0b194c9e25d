"""The paper's networks (Zakharov et al. 2019): embedder, AdaIN generator, projection discriminator.

Public door: ``preset``/``ModelConfig`` (config.py), ``build_networks`` (networks.py),
``save_model``/``load_model`` (checkpoint.py), ``fold_spectral_norm`` (spectral_norm.py). Importing a
submodule imports torch; this package's ``__init__`` does not.
"""
