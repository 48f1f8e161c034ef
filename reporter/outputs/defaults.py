"""The outputs' defaults, in a module that imports nothing: the writers (``gif``, ``video``) and the
reporter's options (reporter/config.py, read on every start and for ``--help``) share them without
the options importing numpy and Pillow."""

GIF_BUDGET = 5 * 1024 * 1024  # GitHub's image proxy drops hot-linked images above ~5 MiB
GIF_DELAY_MS = 250
GIF_MIN_DELAY_MS = 20  # browsers slow down shorter delays to 100 ms
FIGURE_WIDTHS_INCHES = {"single": 3.5, "double": 7.0}  # a journal's one column, two columns
FIGURE_PANELS = 6  # frames in the paper figure when no steps are named
MP4_EVERY = 25  # frames per MP4 segment: the video is at most this many frames behind
