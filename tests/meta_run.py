"""The short meta-learning run several tests judge: its data spec (the run itself is the
``tiny_meta_run`` fixture in conftest.py, trained once per session)."""

DATA = "synthetic:64:16"  # 64 synthetic identities, 16 frames each
