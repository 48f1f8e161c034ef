"""The site's parts about what people take away: the GIF, the MP4, the paper figure, their snippets.

Each view is a plain dict for the template (``site_template/index.html.j2`` shows the GIF,
``_outputs.html.j2`` the video and the figure), or None when the file is not there yet. Steps
are training steps, as in the frames ("step 925 of 937").
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from latentlapse import report_layout as layout
from latentlapse.report_layout import FIGURES as FIGURE_FILES
from reporter.state import ReportState
from reporter.trial.steps import frame_train_step, step_text, total_steps

GITHUB_HOTLINK_LIMIT = 5 * 1024 * 1024
GITHUB_VIDEO_LIMIT = 10 * 1000 * 1000  # uploaded videos in issues and pull requests


def frame_label(frame: dict, run: dict | None) -> str:
    """ "step 925 of 937" for a frame record."""
    total = frame.get("total_steps") or total_steps(run)
    return step_text(frame_train_step(frame, run), total)


def _span(frames: list[dict], run: dict | None) -> str:
    if not frames:
        return "training"
    first, last = frame_train_step(frames[0], run), frame_train_step(frames[-1], run)
    return f"training steps {first:,}–{last:,}"


def _probe(run: dict) -> str:
    size = run.get("probe_size")
    return f"{size:,}" if isinstance(size, int) else "the"


def size_text(n: int) -> str:
    """A file's size as the site says it: KiB below 100 KiB, MiB above."""
    return f"{n / 1024 / 1024:.2f} MiB" if n >= 100 * 1024 else f"{n / 1024:.1f} KiB"


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def gif_view(out: Path, state: ReportState, run: dict, dataset: str, frames: list[dict]) -> dict | None:
    """The GIF, its caption ("N of M frames") and its Markdown / HTML snippets."""
    gif = state.gif
    rel = gif.path if gif else layout.GIF
    path = out / rel
    if not path.is_file():
        return None
    size = path.stat().st_size
    total = int((gif.frames if gif else 0) or len(frames))
    kept = int(gif.kept) if gif and gif.kept is not None else total
    counted = f"{kept} of {total} frames" if kept != total else f"{total} frame{'s' if total != 1 else ''}"
    alt = (f"Animated t-SNE map of {_probe(run)} {dataset} probe images encoded by an autoencoder, "
           f"{counted} over {_span(frames, run)}, "
           + ("points coloured by class" if (state.trial.get("roles") or {}).get("labels", "") is not None
              else "points in one colour (no labels)"))
    with Image.open(path) as im:
        width, height = im.size
    md_alt = alt.replace("[", "(").replace("]", ")")
    return {
        "src": f"{rel}?v={total}-{size}",
        "href": rel,
        "alt": alt,
        "width": width,
        "height": height,
        "frames": total,
        "kept": kept,
        "counted": counted,
        "size": size_text(size),
        "too_big": size > GITHUB_HOTLINK_LIMIT,
        "note": gif.note if gif else None,
        "markdown": f"![{md_alt}]({rel})",
        "html": f'<img src="{rel}" width="{width}" height="{height}" alt="{_attr(alt)}">',
    }


def video_view(out: Path, state: ReportState, run: dict, dataset: str, frames: list[dict]) -> dict | None:
    """The MP4 for a ``<video>`` element, and the snippet to paste into a pull request."""
    video = state.video
    if video is None or video.error or not (out / video.path).is_file():
        return None
    size = (out / video.path).stat().st_size
    shown = frames[:video.frames] if video.frames else frames
    title = (f"t-SNE map of {_probe(run)} {dataset} probe images over "
             f"{_span(shown, run)}, {video.frames} frames")
    width = (state.gif.width / state.gif.scale) if state.gif and state.gif.width and state.gif.scale else 900
    width = int(round(width))
    return {
        "src": f"{video.path}?v={video.frames}-{size}",
        "href": video.path,
        "frames": video.frames,
        "of": len(frames),
        "size": size_text(size),
        "too_big": size > GITHUB_VIDEO_LIMIT,
        "title": title,
        "width": width,
        "html": f'<video src="{video.path}" controls muted loop playsinline width="{width}" '
                f'title="{_attr(title)}"></video>',
    }


def figure_view(out: Path, state: ReportState, run: dict, dataset: str) -> dict | None:
    """The paper figure's files, a preview, and a LaTeX ``\\includegraphics`` snippet."""
    figure = state.figure
    if figure is None or figure.error or not all((out / name).is_file() for name in FIGURE_FILES):
        return None
    steps = figure.steps or []
    double = figure.width == "double"
    env, width = ("figure*", r"\textwidth") if double else ("figure", r"\columnwidth")
    listed = ", ".join(f"{s:,}" for s in steps)
    caption = (f"t-SNE maps of {_probe(run)} {dataset} probe images encoded by the "
               f"autoencoder at training steps {listed}; colour: class.")
    latex = "\n".join([
        rf"\begin{{{env}}}",
        r"  \centering",
        rf"  \includegraphics[width={width}]{{{FIGURE_FILES[0]}}}",
        rf"  \caption{{{caption}}}",
        r"  \label{fig:latentlapse}",
        rf"\end{{{env}}}",
    ])
    pdf, svg, png = FIGURE_FILES
    return {
        "png": f"{png}?v={(out / png).stat().st_size}",
        "files": [{"href": name, "size": size_text((out / name).stat().st_size)} for name in FIGURE_FILES],
        "pdf": pdf, "svg": svg,
        "steps": listed,
        "width": "double column (7 in)" if double else "single column (3.5 in)",
        "alt": caption,
        "latex": latex,
        "remake": f"python -m reporter figure --report REPORT_FOLDER --steps {','.join(map(str, steps))}",
    }


def downloads(out: Path, state: ReportState) -> list[tuple[str, str]]:
    """(file, what it is) of the MP4 and the figure files that exist."""
    pdf, svg, png = layout.FIGURES
    files = [(state.video.path if state.video else layout.MP4, "the video (H.264 MP4, every frame)")]
    files += [(pdf, "the paper figure (PDF, fonts embedded)"),
              (svg, "the paper figure (SVG)"), (png, "the paper figure (PNG, 300 dpi)")]
    return [(rel, label) for rel, label in files if (out / rel).is_file()]
