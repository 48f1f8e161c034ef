"""The site: the report's state and its files in, ``index.html`` and its data out, from ``file://``.

``page`` writes the report's page, ``downloads`` its part about the GIF, the MP4 and the figure,
``charts`` the curves as SVG, ``explore`` the interactive map's data, ``runs_index`` the index of
every report in a folder, and ``redact`` keeps credentials out of all of them.
"""
