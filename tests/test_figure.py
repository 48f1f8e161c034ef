"""The paper figure: PDF with TrueType fonts at column width, valid SVG, 300 dpi PNG, chosen steps."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reporter import ReporterError
from reporter.outputs.figure import choose_steps, write_figure

ROOT = Path(__file__).resolve().parent.parent
EVAL_STEPS = [*range(0, 937, 25), 937]  # the default run: 39 frames, the last at step 937
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A finished report folder as the reporter leaves it (no tensor store anywhere)."""
    out = tmp_path_factory.mktemp("report")
    (out / "frames").mkdir()
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    centres = 8 * np.stack([np.cos(labels * 0.628), np.sin(labels * 0.628)], axis=1)
    frames = []
    for k, step in enumerate(EVAL_STEPS):
        emb = centres * (k / len(EVAL_STEPS)) + rng.normal(size=(len(labels), 2))
        npz = f"frames/frame-{k:04d}.npz"
        np.savez(out / npz, embedding=emb, labels=labels, step=np.int64(k))
        frames.append({"index": k, "step": k, "global_step": step + k, "train_step": step,
                       "total_steps": 937, "npz": npz})
    (out / "state.json").write_text(json.dumps({"frames": frames, "status": "finished"}))
    (out / "run.json").write_text(json.dumps({"steps": 937, "eval_steps": EVAL_STEPS,
                                              "class_names": FASHION}))
    return out


def figure_cli(*args):
    return subprocess.run([sys.executable, "-m", "reporter", "figure", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_six_panels_evenly_spaced_in_training_steps_with_the_first_and_the_last():
    assert choose_steps(EVAL_STEPS, 6) == [0, 175, 375, 550, 750, 937]
    assert choose_steps(EVAL_STEPS, 2) == [0, 937] and choose_steps(EVAL_STEPS, 1) == [937]
    assert choose_steps([0, 10, 20], 6) == [0, 10, 20]  # fewer frames than panels: all of them
    with pytest.raises(ReporterError, match="ask for 1 or more"):
        choose_steps(EVAL_STEPS, 0)


@pytest.mark.parametrize("width, points, pixels", [("single", 252, 1050), ("double", 504, 2100)])
def test_pdf_svg_png_at_column_width_with_embedded_truetype_fonts(tmp_path, report, width, points, pixels):
    out = tmp_path / "copy"
    out.mkdir()
    for p in report.rglob("*"):
        if p.is_file():
            (out / p.relative_to(report)).parent.mkdir(parents=True, exist_ok=True)
            (out / p.relative_to(report)).write_bytes(p.read_bytes())
    shown = write_figure(out, width=width)
    assert shown == [0, 175, 375, 550, 750, 937]

    pdf = (out / "figure.pdf").read_bytes()
    box = re.findall(rb"/MediaBox \[ *0 +0 +([\d.]+) +([\d.]+) *\]", pdf)
    assert len(box) == 1 and float(box[0][0]) == points  # 3.5 in or 7 in at 72 pt/in
    assert b"/Type3" not in pdf and b"/CIDFontType2" in pdf and b"/FontFile2" in pdf

    svg = ET.parse(out / "figure.svg").getroot()  # parses: well-formed XML
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.attrib["width"] == f"{points}pt"
    titles = re.findall(r"<!-- (step [^>]*?) -->", (out / "figure.svg").read_text())
    assert titles == ["step 0", "step 175", "step 375", "step 550", "step 750", "step 937 of 937"]
    legend = re.findall(r"<!-- ([A-Za-z/ -]+) -->", (out / "figure.svg").read_text())
    assert sorted(t for t in legend if t in FASHION) == sorted(FASHION)  # the class legend, once

    with Image.open(out / "figure.png") as png:
        assert png.size[0] == pixels and round(png.info["dpi"][0]) == 300


def test_the_cli_remakes_it_at_chosen_steps_from_the_report_alone(report):
    done = figure_cli("--report", str(report), "--steps", "0,200,500,937")
    assert done.returncode == 0, done.stderr
    assert "figure of training steps 0, 200, 500, 937" in done.stdout
    titles = re.findall(r"<!-- (step [^>]*?) -->", (report / "figure.svg").read_text())
    assert titles == ["step 0", "step 200", "step 500", "step 937 of 937"]


@pytest.mark.parametrize("args, code, words", [
    (["--steps", "0,210"], 1, "training step 210 has no frame in this report: its frames are at steps 0, 25,"),
    # bad option values: exit 2, as for the reporter's own options (the same declarations)
    (["--frames", "0"], 2, "--frames must be a positive integer, got 0"),
    (["--figure-width", "triple"], 2, "unknown figure width 'triple' for --figure-width: pass one of single, double"),
    (["--steps", "early"], 2, "--steps 'early' is not a list of training steps"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(report, args, code, words):
    before = (report / "state.json").read_bytes()
    done = figure_cli("--report", str(report), *args)
    assert done.returncode == code
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("reporter: error: ")
    assert words in done.stderr
    assert (report / "state.json").read_bytes() == before


def test_a_folder_without_a_report_is_refused(tmp_path):
    done = figure_cli("--report", str(tmp_path))
    assert done.returncode == 1 and "holds no report (no state.json)" in done.stderr
