"""Pictures: a layout, its labels and the probe images in, one frame as an RGB picture out.

``render`` draws the frame (inputs, reconstructions, the scatter coloured by class), ``palette``
turns RGB frames into the GIF's one palette, ``reconstruction`` draws the per-class grid.
"""
