"""Integration tests: pick Keras's backend before anything imports Keras.

TensorFlow is not a test dependency; Keras 3 runs on PyTorch here. A value set by the caller
(``KERAS_BACKEND=jax pytest …``) wins.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
