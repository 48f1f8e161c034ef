"""Outputs: the frames' pictures and the report's state in, the files people take away out.

``gif`` appends to ``latentlapse.gif`` (``gif_format`` is its byte format), ``video`` keeps
``latentlapse.mp4``, ``figure`` writes the paper figure, and ``publish`` brings the MP4 and the
figure up to date from the state.
"""
