"""Embedding: a probe step's latent vectors and the last frame's layout in, a 2-D layout out.

``embed`` holds the warm-started t-SNE (``Embedder``), ``neighbours`` the exact nearest neighbours
it needs, ``align`` the Procrustes turn onto the previous frame, and ``quality`` the figures that
say how well a layout keeps classes and neighbours and how far it moved. Arrays in, arrays out.
"""
