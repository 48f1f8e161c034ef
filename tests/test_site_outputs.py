"""The site's GIF, video and figure sections: training steps, "N of M frames", snippets that work."""

from __future__ import annotations

import json
import re

import imageio.v2 as iio2
import pytest

from reporter.config import from_args
from reporter.pipeline import run
from trial_writer import probe_arrays, write_trial

N_FRAMES = 12
EVAL_STEPS = [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 537]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A finished report of 12 frames whose GIF budget only holds a subset of them."""
    base = tmp_path_factory.mktemp("outputs")
    trial = write_trial(base / "tensors", [probe_arrays(60, s) for s in range(N_FRAMES)])
    # The trainer's run file: the train step of each EVAL pass and the run's length.
    (trial / "latentlapse-run.json").write_text(json.dumps({
        "dataset": "mnist", "steps": 537, "eval_steps": EVAL_STEPS, "probe_size": 60,
        "class_names": [str(d) for d in range(10)]}))
    out = base / "site"
    config = from_args(["--tensors", str(trial), "--out", str(out), "--retry-delay", "0.2",
                        "--gif-budget-mib", "0.25", "--mp4-every", "5", "--figure-frames", "4"],
                       environ={})
    assert run(config) == 0
    return out


def test_frames_records_and_captions_say_the_training_step(site):
    state = json.loads((site / "state.json").read_text())
    assert [f["train_step"] for f in state["frames"]] == EVAL_STEPS
    assert [f["global_step"] for f in state["frames"]] == list(range(N_FRAMES))  # kept as smdebug says
    html = (site / "index.html").read_text()
    assert "Frame 12 of 12, step 537 of 537</figcaption>" in html
    assert "Frame 1 of 12 at step 0 of 537: the 2-D embedding" in html  # its alt text (page data)
    assert "global step 11" not in html.split('id="frame-caption"')[1].split("</figcaption>")[0]


def test_the_gif_caption_says_n_of_m_frames(site):
    state = json.loads((site / "state.json").read_text())
    gif = state["gif"]
    assert gif["frames"] == N_FRAMES and 2 <= gif["kept"] < N_FRAMES
    assert gif["width"] >= 675  # never below the scale floor
    caption = re.search(r'<figcaption id="gif-caption">([^<]*)', (site / "index.html").read_text()).group(1)
    assert caption.startswith(f"{gif['kept']} of {N_FRAMES} frames, {gif['width']} × {gif['height']} px")
    assert "each shown" in caption  # the note says how the subset is shown


def test_the_video_plays_every_frame_and_the_snippet_names_it(site):
    html = (site / "index.html").read_text()
    assert re.search(r'<video id="video-player" src="latentlapse.mp4\?v=12-\d+" controls muted loop', html)
    assert "12 of 12 frames at full size, H.264" in html
    assert "&lt;video src=&#34;latentlapse.mp4&#34; controls muted loop playsinline width=&#34;900&#34;" in html
    assert "media-src 'self' file:" in html  # the page's policy lets the video load from file://
    reader = iio2.get_reader(site / "latentlapse.mp4", "FFMPEG")
    assert reader.count_frames() == N_FRAMES
    reader.close()


def test_the_figure_section_offers_the_files_and_a_latex_snippet(site):
    html = (site / "index.html").read_text()
    for name in ("figure.pdf", "figure.svg", "figure.png"):
        assert f'href="{name}" download' in html and (site / name).is_file()
    assert r"\includegraphics[width=\columnwidth]{figure.pdf}" in html
    assert "at training steps 0, 200, 350, 537; colour: class." in html
    assert "python -m reporter figure --report REPORT_FOLDER --steps 0,200,350,537" in html
