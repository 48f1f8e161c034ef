"""A comparison's GIF, MP4 and figure, from two real reports (trainer seeds 3 and 4, 100 probe points, 4 frames).

The pictures are checked by what they hold: the GIF's frames read back by Pillow, the MP4's by
imageio's ffmpeg reader, the figure's text by the SVG's comments (matplotlib writes each text's
string beside its paths) and its panels by the axes' places.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import imageio.v2 as iio2
import numpy as np
import pytest
from PIL import Image

from latentlapse import report_layout as layout
from reporter import ReporterError
from reporter.compare.comparison import compare
from reporter.compare.outputs import draw_comparison_figure, figure_ticks, write_outputs
from reporter.compare.panels import ComparisonCanvas, columns_for
from reporter.compare.reports import read_report
from reporter.outputs.gif import MIN_SCALE
from reporter.pictures.colours import CLASS_COLOURS

TITLES = ["seed-3 \u00b7 seed 3", "seed-4 \u00b7 seed 4, a setting whose name is long enough to wrap"]


@pytest.fixture(scope="module")
def comparison(two_reports):
    return compare([read_report(folder) for folder in two_reports])


@pytest.fixture(scope="module")
def written(tmp_path_factory, comparison):
    out = tmp_path_factory.mktemp("comparison")
    return out, write_outputs(out, comparison, TITLES)


def gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
        return frames


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])


def class_pixels(picture: np.ndarray) -> np.ndarray:
    """Where the picture holds one of the class colours exactly (marker centres)."""
    hits = np.zeros(picture.shape[:2], dtype=bool)
    for colour in CLASS_COLOURS[:10]:
        hits |= (picture == rgb(colour)).all(axis=2)
    return hits


def test_the_gif_has_a_frame_per_tick_side_by_side_under_the_budget(written, comparison):
    out, result = written
    gif = result["gif"]
    frames = gif_frames(out / layout.COMPARE_GIF)
    assert comparison.ticks == [0.0, 10.0, 20.0, 24.0]
    assert gif["frames"] == gif["kept"] == len(frames) == 4
    assert gif["kept_ticks"] == [0, 1, 2, 3] and gif["error"] is None
    assert gif["bytes"] == (out / layout.COMPARE_GIF).stat().st_size < 5 * 2**20
    assert frames[0].shape == (gif["height"], gif["width"], 3) and gif["width"] == 900  # one run's frame width
    # Two panels side by side: class colours in the left and the right half, none in the gutter.
    points = class_pixels(frames[-1])
    left, right = points[:, :440].sum(), points[:, 460:].sum()
    assert left > 100 and right > 100
    assert not points[:, 440:460].any()
    # The frames differ: the maps move between ticks.
    assert not np.array_equal(frames[0], frames[-1])


def test_each_panel_is_titled_above_its_map(comparison):
    canvas = ComparisonCanvas(comparison, ["A", "B" * 3 + " a longer title for the right-hand run"], "heading")
    picture = canvas.paint(len(comparison.ticks) - 1)
    assert canvas.columns == 2 and len(canvas.places) == 2
    ink = picture.min(axis=2) < 100  # dark text
    widths = []
    for left, top, side in canvas.places:
        box = (slice(int(top), int(top + side)), slice(int(left), int(left + side)))
        assert class_pixels(picture)[box].sum() > 100        # the run's points are in its map
        band = ink[70:int(top) - 20, int(left):int(left + side)]  # the title's lines, above the caption
        assert band.any()
        widths.append(np.flatnonzero(band.any(axis=0)).max())
    assert widths[1] > 4 * widths[0]   # "A" is short, the other title runs along its panel
    assert canvas.title_lines[0] == ["A"] and len(canvas.title_lines[1]) == 1


def test_long_titles_wrap_then_end_with_an_ellipsis(comparison):
    long = " ".join(["setting"] * 40)
    canvas = ComparisonCanvas(comparison, ["short", long], "heading")
    lines = canvas.title_lines[1]
    assert len(lines) == 2 and lines[1].endswith("\u2026") and lines[0].startswith("setting setting")


@pytest.mark.parametrize("runs, cols", [(2, 2), (3, 2), (4, 2), (5, 3), (6, 3), (7, 4), (8, 4)])
def test_a_grid_for_more_runs(runs, cols):
    assert columns_for(runs) == cols


def test_four_runs_make_a_taller_picture_of_the_same_width(two_reports, comparison):
    four = compare([read_report(f) for f in (*two_reports, *two_reports)])
    two_canvas = ComparisonCanvas(comparison, TITLES, "h")
    four_canvas = ComparisonCanvas(four, TITLES * 2, "h")
    assert four_canvas.size[0] == two_canvas.size[0] == 900
    assert four_canvas.size[1] > 1.6 * two_canvas.size[1]
    tops = sorted({int(top) for _, top, _ in four_canvas.places})
    assert len(tops) == 2   # 2 x 2


def test_a_small_budget_shrinks_the_gif_as_one_runs_does(tmp_path, comparison, written):
    full = written[1]["gif"]["bytes"]
    result = write_outputs(tmp_path, comparison, TITLES, gif_budget_bytes=int(full * 0.7))
    gif = result["gif"]
    assert gif["bytes"] <= full * 0.7
    assert gif["scale"] < 1.0 and gif["scale"] >= MIN_SCALE and gif["note"]
    assert gif["width"] == round(900 * gif["scale"])


def test_the_mp4_has_every_tick(written, comparison):
    out, result = written
    reader = iio2.get_reader(out / layout.COMPARE_MP4, "FFMPEG")
    try:
        meta, frames = reader.get_meta_data(), [f for f in reader]
    finally:
        reader.close()
    assert len(frames) == result["video"]["frames"] == len(comparison.ticks)
    assert meta["codec"] == "h264" and meta["size"] == (900, result["gif"]["height"])
    assert meta["fps"] == 4.0  # 1000 / 250 ms, the GIF's pace
    assert result["video"]["bytes"] == (out / layout.COMPARE_MP4).stat().st_size and result["video"]["error"] is None
    # The last frame is the GIF's last frame, up to H.264's loss.
    last = gif_frames(out / layout.COMPARE_GIF)[-1].astype(int)
    assert np.abs(frames[-1].astype(int) - last).mean() < 6


def test_the_figure_has_runs_as_rows_and_ticks_as_columns(written, comparison):
    out, result = written
    figure = result["figure"]
    assert figure["error"] is None and figure["files"] == list(layout.FIGURES)
    assert figure["ticks"] == comparison.ticks  # 4 ticks: all of them
    svg_text = (out / "figure.svg").read_text()
    ET.fromstring(svg_text)
    for text in (*TITLES, *figure["labels"]):
        assert f"<!-- {text} -->" in svg_text
    assert figure["labels"][-1] == "step 24 of 24"
    assert (out / "figure.pdf").read_bytes()[:5] == b"%PDF-"
    with Image.open(out / "figure.png") as png:
        assert png.size[0] == 7 * 300  # a page's width at 300 dpi

    fig = draw_comparison_figure(comparison, TITLES, figure_ticks(comparison, 6))
    maps = [ax.get_position() for ax in fig.axes]
    assert len(maps) == 2 * 4
    assert len({round(p.y0, 4) for p in maps}) == 2 and len({round(p.x0, 4) for p in maps}) == 4


def test_the_figure_shows_a_few_evenly_spaced_ticks(two_reports):
    reports = [read_report(f) for f in two_reports]
    c = compare(reports)
    c.ticks = [float(t) for t in range(0, 100, 10)]  # ten ticks on the timeline
    for run in c.runs:
        run.frame_at = [min(i // 4, 2) for i in range(10)]
    assert figure_ticks(c, 6) == [0, 2, 4, 5, 7, 9]
    assert figure_ticks(c, 6, "single") == [0, 4, 9]


def test_the_same_comparison_gives_the_same_bytes(tmp_path, comparison, written):
    out, _ = written
    write_outputs(tmp_path, comparison, TITLES)
    for name in (layout.COMPARE_GIF, layout.COMPARE_MP4, *layout.FIGURES):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work files left


def test_hostile_titles_stay_text(tmp_path, comparison):
    hostile = ["<script>alert(1)</script> --> &amp;", "'; rm -rf / #"]
    result = write_outputs(tmp_path, comparison, hostile)
    root = ET.parse(tmp_path / "figure.svg").getroot()
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    assert result["figure"]["rows"] == hostile


def test_without_ffmpeg_the_gif_and_the_figure_are_still_made(tmp_path, comparison, monkeypatch, caplog):
    exe = tmp_path / "bin" / "ffmpeg"
    exe.parent.mkdir()
    exe.write_bytes(b"\x7fELF but not really")
    exe.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(exe))
    out = tmp_path / "comparison"
    out.mkdir()
    (out / layout.COMPARE_MP4).write_bytes(b"an earlier comparison's video")
    result = write_outputs(out, comparison, TITLES)
    assert result["video"]["error"].startswith(f"the MP4 could not be made: cannot run {exe}")
    assert not (out / layout.COMPARE_MP4).exists()   # not the earlier one either
    assert len(gif_frames(out / layout.COMPARE_GIF)) == len(comparison.ticks) == result["gif"]["kept"]
    assert result["figure"]["error"] is None and (out / "figure.png").is_file()
    assert sum("the MP4 could not be made" in r.getMessage() for r in caplog.records) == 1


def test_a_figure_that_cannot_be_written_leaves_the_gif_and_the_mp4(tmp_path, comparison):
    (tmp_path / "figure.svg").mkdir()   # in the way, and not a file
    result = write_outputs(tmp_path, comparison, TITLES)
    assert result["figure"]["error"].startswith("the paper figure could not be made: cannot write ")
    assert not (tmp_path / "figure.pdf").exists()   # no half of a figure
    assert result["gif"]["kept"] == 4 and result["video"]["frames"] == 4


def test_one_title_per_run(tmp_path, comparison):
    with pytest.raises(ValueError, match="1 titles for 2 runs"):
        write_outputs(tmp_path, comparison, ["only one"])


@pytest.mark.parametrize("option, words", [
    ({"delay_ms": 10}, "delay of 10 ms is too short"),
    ({"figure_width": "wide"}, "is not a width"),
    ({"figure_panels": 0}, "a figure of 0 frames is empty"),
])
def test_bad_options_are_one_line_and_write_nothing(tmp_path, comparison, option, words):
    with pytest.raises(ReporterError, match=words):
        write_outputs(tmp_path / "c", comparison, TITLES, **option)
    assert not [p for p in (tmp_path / "c").glob("*") if not p.name.startswith(".")]


def test_a_live_comparison_can_leave_the_figure_for_the_end(tmp_path, comparison):
    result = write_outputs(tmp_path, comparison, TITLES, figure=False, delay_ms=500)
    assert result["figure"] is None and not (tmp_path / "figure.pdf").exists()
    assert result["gif"]["kept"] == 4 and result["video"]["frames"] == 4
    with Image.open(tmp_path / layout.COMPARE_GIF) as im:
        assert im.info["duration"] == 500


def test_gif_frames_read_back_as_rgb(written):
    out, _ = written
    data = (out / layout.COMPARE_GIF).read_bytes()
    frames = iio2.mimread(io.BytesIO(data), format="GIF")
    assert len(frames) == 4 and frames[0].shape[2] in (3, 4)
