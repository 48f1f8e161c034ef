"""The static site as a reader gets it: what index.html says, links to, hides and escapes."""

import copy
import os
import shutil
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reporter import ReporterError
from reporter.site.charts import line_chart, log_ticks, nice_ticks
from reporter.site.redact import HIDDEN, redact, redact_text
from reporter.pictures.reconstruction import save_reconstruction_grid
from reporter.site.page import template_dir, write_site
from site_fixture import CLASS_NAMES, build_output, mnist_rows

EVIL = "<script>alert(1)</script>"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ENV_SECRET = "env-only-s3cr3t-value-123"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_CONFIG = {
    "aws_secret_access_key": SECRET,
    "aws_access_key_id": KEY_ID,
    "endpoint": "http://minio:hunter2hunter2@127.0.0.1:9000/bucket",
    "credentials": {"token": "nested-token-value"},
    "note": f"copied from the shell: {ENV_SECRET}",
    "presigned": "https://bucket.example/x?X-Amz-Signature=deadbeefcafe0123",
    "trial_" + EVIL: EVIL,
}
NEVER_SHOWN = [SECRET, KEY_ID, "hunter2hunter2", "nested-token-value", ENV_SECRET, "deadbeefcafe0123"]
NOW = datetime(2026, 11, 26, 14, 9, 0, tzinfo=timezone.utc)


class Page(HTMLParser):
    """Collects what a reader (and a browser) gets from the page."""

    def __init__(self, text):
        super().__init__()
        self.urls, self.images, self.section_ids, self.scripts, self.meta = [], [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.urls.append(a[key])
        if tag == "img":
            self.images.append(a)
        if tag == "section":
            self.section_ids.append(a.get("id"))
        if tag == "script":
            self.scripts.append(a)
        if tag == "meta":
            self.meta.append(a)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One realistic output folder (real MNIST, 5 frames), with an evil tensor name and secrets."""
    os.environ["AWS_SECRET_ACCESS_KEY"] = ENV_SECRET  # removed again below
    try:
        out = tmp_path_factory.mktemp("site")
        state, run = build_output(
            out, n_frames=5, n_probe=150, status="running",
            extra_tensors=(EVIL,), config_extra=SECRET_CONFIG,
        )
        write_site(out, state, run, now=NOW)
        yield out, state, run
    finally:
        os.environ.pop("AWS_SECRET_ACCESS_KEY", None)


@pytest.fixture
def copy_of(built, tmp_path):
    out, state, run = built
    target = tmp_path / "site"
    shutil.copytree(out, target)
    return target, copy.deepcopy(state), copy.deepcopy(run)


def html_of(out):
    return (Path(out) / "index.html").read_text(encoding="utf-8")


def test_sections_come_in_the_order_a_reader_wants(built):
    page = Page(html_of(built[0]))
    assert page.section_ids == [
        "gif", "scrubber", "loss", "quality", "reconstructions", "alerts", "tensors", "downloads", "config",
    ]


def test_header_states_dataset_model_progress_and_status(built):
    text = html_of(built[0])
    for expected in ("MNIST", "73,909 parameters", "104 of 104", "301 images/s", "5 of 5", "Running"):
        assert expected in text


def test_every_local_url_exists_and_nothing_points_outside(built):
    out = built[0].resolve()
    page = Page(html_of(out))
    assert page.urls
    for url in page.urls:
        if url.startswith("#"):
            continue
        assert "://" not in url and not url.startswith("//") and not url.startswith("/"), url
        target = (out / url.split("?")[0]).resolve()
        assert target.is_relative_to(out) and target.is_file(), url


def test_every_image_has_alt_text(built):
    images = Page(html_of(built[0])).images
    assert {i["id"] for i in images} >= {"gif-img", "frame-img", "recon-img"}
    for img in images:
        assert len(img.get("alt", "")) > 20, img


def test_the_page_forbids_network_requests(built):
    csp = [m["content"] for m in Page(html_of(built[0])).meta if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "http" not in csp[0]


def test_a_tensor_named_like_a_script_is_shown_as_text(built):
    text = html_of(built[0])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert EVIL not in text
    scripts = Page(text).scripts
    assert scripts[0] == {"type": "application/json", "id": "site-data"}
    assert [sorted(s) for s in scripts[1:]] == [["src"], ["src"]]
    assert [s["src"].split("?")[0] for s in scripts[1:]] == ["assets/explore.js", "assets/app.js"]


def test_no_secret_reaches_any_file_of_the_site(built):
    out = built[0]
    assert HIDDEN in html_of(out)
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json", ".csv", ".js", ".css"):
            data = path.read_text(encoding="utf-8")
            for secret in NEVER_SHOWN:
                assert secret not in data, (secret, path)


def test_run_json_download_is_the_redacted_run(built):
    import json

    public = json.loads((built[0] / "run.json").read_text())
    assert public["config"]["aws_secret_access_key"] == HIDDEN
    assert public["config"]["credentials"] == HIDDEN
    assert public["config"]["endpoint"] == f"http://{HIDDEN}@127.0.0.1:9000/bucket"
    assert public["config"]["batch_size"] == 64


def test_running_page_refreshes_itself(built):
    text = html_of(built[0])
    assert '"live":true' in text
    assert '<meta http-equiv="refresh" content="5">' in text  # inside <noscript>
    assert 'id="auto-refresh"' in text


def test_finished_page_stops_refreshing(copy_of):
    out, state, run = copy_of
    state["status"] = "finished"
    write_site(out, state, run, now=NOW)
    text = html_of(out)
    assert '"live":false' in text and 'http-equiv="refresh"' not in text
    assert "Finished at 2026-11-26 14:05:00 UTC" in text


def test_stalled_page_says_since_when(copy_of):
    out, state, run = copy_of
    state["status"] = "stalled"
    write_site(out, state, run, now=NOW)
    assert "Stalled since 2026-11-26 14:05:00 UTC (4 min without new data)" in html_of(out)


def test_failed_run_shows_its_error_redacted(copy_of):
    out, state, run = copy_of
    state["status"], state["reason"] = "failed", f"could not read s3://bucket/x?X-Amz-Credential={KEY_ID}"
    write_site(out, state, run, now=NOW)
    text = html_of(out)
    assert "Failed at" in text and "could not read s3://bucket/x?" + HIDDEN in text
    assert KEY_ID not in text


def test_no_alerts_is_said_explicitly(copy_of):
    out, state, run = copy_of
    state["alerts"] = []
    write_site(out, state, run, now=NOW)
    assert "No alerts fired" in html_of(out)


def test_alerts_show_rule_step_and_message(copy_of):
    out, state, run = copy_of
    state["alerts"] = [{"rule": "nonfinite", "step": 52, "last_step": 104, "active": True, "message": "NaN at " + EVIL}]
    write_site(out, state, run, now=NOW)
    text = html_of(out)
    assert "NaN or Inf in saved tensors" in text and "fired at global step 52" in text and "(still holds)" in text
    assert "No alerts fired" not in text and EVIL not in text


def test_alerts_say_the_training_step_and_an_older_record_its_global_step(copy_of):
    out, state, run = copy_of
    state["alerts"] = [
        {"rule": "loss_not_decreasing", "step": 156, "last_step": 208, "train_step": 150, "last_train_step": 200,
         "active": False, "message": "flat"},
        {"rule": "nonfinite", "step": 52, "last_step": 104, "active": False, "message": "saved before train_step"},
    ]
    write_site(out, state, run, now=NOW)
    text = html_of(out)
    assert "fired at step 150 (until step 200)" in text
    assert "fired at global step 52 (until global step 104)" in text


def test_charts_are_drawn_over_training_steps(built):
    from reporter.site.charts import x_domain
    from reporter.site.page import _loss_series

    out, state, run = built
    frames = state["frames"]  # EVAL step i at global step 26 i: 25 i train steps done
    assert x_domain(frames, run) == (0.0, 25.0 * (len(frames) - 1))
    train = _loss_series(frames, run)[0]["points"]
    # The TRAIN batches of frame 1 were saved at global steps 1, 6, .. 21: the trainer's steps 1, 6, .. 21;
    # those of frame 2 at global 27, 32, .. after the EVAL pass at 26: steps 26, 31, .. (not 27, 32).
    assert [s for s, _ in train[:7]] == [1, 6, 11, 16, 21, 26, 31]
    import re

    text = html_of(out)
    assert ">training step</text>" in text and ">global step</text>" not in text
    assert "eval loss (probe set), step 100:" in text and "eval loss (probe set), step 104:" not in text
    box_right = 640 - 14  # reporter/site/charts.py: the plot area's right edge
    cursors = re.findall(r'<line class="chart-cursor" x1="([0-9.]+)"', text)
    assert len(cursors) == 2 and all(float(x) == box_right for x in cursors)  # the latest frame, at the last step


def test_nan_losses_leave_gaps_and_fire_an_alert(tmp_path):
    from reporter.rules import evaluate

    state, run = build_output(tmp_path, n_frames=4, n_probe=120, nonfinite_at=2)
    state["alerts"] = evaluate(state["frames"])
    write_site(tmp_path, state, run, now=NOW)
    text = html_of(tmp_path)
    # EVAL step 2 is global step 52 (two EVAL passes before it): 50 train steps done.
    assert "NaN or Inf in saved tensors" in text and "fired at step 50 (still holds)" in text
    assert "from step 50 to step 75: training has diverged" in text and "global step 52" not in text
    assert "<svg" in text


def test_an_empty_state_still_makes_a_page(tmp_path):
    write_site(tmp_path, {"status": "running", "frames": []}, None, now=NOW)
    text = html_of(tmp_path)
    assert "No frames yet" in text and "No GIF yet" in text and "not written its run metadata" in text
    assert not (tmp_path / "run.json").exists()


def test_bad_state_is_a_reporter_error(tmp_path):
    with pytest.raises(ReporterError, match="state"):
        write_site(tmp_path, ["not", "a", "dict"], None)


def test_assets_are_rewritten_only_when_they_changed(copy_of):
    out, state, run = copy_of
    css = out / "assets" / "style.css"
    before = css.stat().st_mtime_ns, css.stat().st_ino
    write_site(out, state, run, now=NOW)
    assert (css.stat().st_mtime_ns, css.stat().st_ino) == before
    css.write_text("/* stale */")
    write_site(out, state, run, now=NOW)
    assert css.read_bytes() == (template_dir() / "static" / "style.css").read_bytes()


def test_template_folder_can_be_overridden(copy_of, monkeypatch, tmp_path):
    out, state, run = copy_of
    custom = tmp_path / "templates"
    shutil.copytree(template_dir(), custom)
    page = custom / "index.html.j2"
    page.write_text(page.read_text().replace("The time-lapse", "Custom heading"))
    monkeypatch.setenv("REPORTER_SITE_TEMPLATE", str(custom))
    write_site(out, state, run, now=NOW)
    assert "Custom heading" in html_of(out)
    monkeypatch.setenv("REPORTER_SITE_TEMPLATE", str(tmp_path))
    with pytest.raises(ReporterError, match="REPORTER_SITE_TEMPLATE"):
        write_site(out, state, run, now=NOW)


def test_reconstruction_grid_puts_each_class_input_above_its_output(tmp_path):
    images, labels = mnist_rows("test", 120)
    recons = 1.0 - images  # distinguishable from the input, same shape
    picks = save_reconstruction_grid(tmp_path / "grid.png", images[:, None], recons[:, None], labels, CLASS_NAMES, scale=2)
    assert [int(labels[i]) for i in picks] == list(range(10))
    assert all(picks[c] == int(np.flatnonzero(labels == c)[0]) for c in range(10))
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("L"), dtype=np.float64)
    gap, text_h, stripe, cell = 6, 16, 4, 56
    assert grid.shape == (text_h + stripe + 2 * cell + 3 * gap, 10 * (cell + gap) + gap)
    top = text_h + stripe + gap
    first = grid[top : top + cell : 2, gap : gap + cell : 2]
    below = grid[top + cell + gap : top + 2 * cell + gap : 2, gap : gap + cell : 2]
    np.testing.assert_allclose(first, np.round(images[picks[0]] * 255), atol=1)
    np.testing.assert_allclose(below, np.round(recons[picks[0]] * 255), atol=1)


def test_reconstruction_grid_rejects_mismatched_arrays(tmp_path):
    with pytest.raises(ReporterError, match="do not match"):
        save_reconstruction_grid(tmp_path / "g.png", np.zeros((5, 28, 28)), np.zeros((4, 28, 28)), np.arange(5), CLASS_NAMES)


def test_redact_hides_secret_keys_urls_key_ids_and_env_values():
    env = {"AWS_SECRET_ACCESS_KEY": "abcdefgh12345", "AWS_REGION": "eu-west-1", "PATH": "/usr/bin"}
    cleaned = redact(
        {"lr": 0.1, "AWS_Session_Token": "x" * 20, "author": "ada", "log": "key abcdefgh12345 id AKIAABCDEFGHIJKLMNOP",
         "store": "s3://u:p@host/b", "region": "eu-west-1", "list": ["https://h/x?sig=1#frag"]},
        environ=env,
    )
    assert cleaned == {
        "lr": 0.1, "AWS_Session_Token": HIDDEN, "author": "ada", "log": f"key {HIDDEN} id {HIDDEN}",
        "store": f"s3://{HIDDEN}@host/b", "region": "eu-west-1", "list": [f"https://h/x?{HIDDEN}#frag"],
    }
    assert redact_text("/plain/path/runs/latest", environ=env) == "/plain/path/runs/latest"


def test_working_directory_and_existing_paths_are_not_secrets(tmp_path):
    env = {"PWD": str(tmp_path), "OLDPWD": "/elsewhere/entirely", "TOKEN_CACHE_DIR": str(tmp_path),
           "DB_PWD": "correct-horse-battery"}
    text = f"{tmp_path}/runs/latest /elsewhere/entirely correct-horse-battery"
    assert redact_text(text, environ=env) == f"{tmp_path}/runs/latest /elsewhere/entirely {HIDDEN}"


def test_chart_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 940) == [0, 200, 400, 600, 800]
    assert nice_ticks(0.021, 0.054) == pytest.approx([0.025, 0.03, 0.035, 0.04, 0.045, 0.05])
    assert log_ticks(0.004, 0.3) == pytest.approx([0.005, 0.01, 0.02, 0.05, 0.1, 0.2])


def test_chart_switches_to_log_scale_and_breaks_lines_at_nan():
    series = [{"key": "eval", "label": "eval", "points": [(0, 0.3), (10, 0.01), (20, float("nan")), (30, 0.005)], "markers": True}]
    chart = line_chart(series, (0, 30), log_if_ratio=8.0)
    assert chart["log"] is True
    assert len(chart["series"][0]["paths"]) == 2 and len(chart["series"][0]["markers"]) == 3
    assert chart["x_of"](0) == chart["box"]["x0"] and chart["x_of"](30) == chart["box"]["x1"]
