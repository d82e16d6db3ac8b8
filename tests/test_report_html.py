"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``, installed by scripts/setup.sh) opens
the page offline, every figure decodes, the console stays empty, and a screenshot is saved."""
import base64
import io
import json
import re
import shutil
import subprocess

import pytest

import fake_grid
from mixmerge import grid
from mixmerge.report.tables import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh installs "
                                                         "Debian's chromium with apt-get when it runs as root)")
# Injected into a copy of the page only (the report itself has no scripts): after load, list the images that did
# not decode and any page errors into a <pre id="probe"> that --dump-dom prints.
PROBE = """<script>
var errors = [];
window.addEventListener("error", function (e) { errors.push(String(e.message || e.type)); }, true);
window.addEventListener("load", function () {
  var images = [].slice.call(document.images);
  var bad = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                  .map(function (i) { return i.alt; });
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images: images.length, bad: bad, errors: errors});
  document.body.appendChild(out);
});
</script>"""


def chromium(profile, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def console_lines(stderr: str) -> list[str]:
    """Messages the page wrote to its console (Chromium logs them as ``...:CONSOLE...] "message"``)."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


def probe(tmp_path, page: str, name: str) -> dict:
    copy = tmp_path / name
    copy.write_text(page.replace("</head>", PROBE + "</head>", 1))
    out = chromium(tmp_path / f"profile-{name}", "--dump-dom", copy.as_uri())
    found = re.search(r'<pre id="probe">([^<]*)</pre>', out.stdout)
    assert found, f"no probe output; chromium rc={out.returncode}\n{out.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    fake_grid.make(root)
    build_report(fake_grid.SPEC, str(root / "report"), root=str(root))
    return root / "report" / "report.html"


def test_report_opens_in_chromium_with_every_figure_and_no_console_errors(report, tmp_path):
    shot = tmp_path / "report.png"
    out = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2400", report.as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    assert not console_lines(out.stderr), console_lines(out.stderr)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    result = probe(tmp_path, report.read_text(), "probe.html")
    assert result == {"images": len(grid.FIGURES), "bad": [], "errors": []}


def test_every_embedded_png_is_complete(report):
    from PIL import Image

    images = re.findall(r'src="data:image/png;base64,([^"]+)"', report.read_text())
    assert len(images) == len(grid.FIGURES)
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.load()  # raises on a truncated or corrupt PNG
            assert image.width > 300 and image.height > 200


def test_the_probe_sees_a_broken_figure(report, tmp_path):
    """The check can fail: a figure whose data is not an image is named. (Chromium shows a PNG that is cut short
    as far as it goes, so the complete decode of every PNG is checked with Pillow as well.)"""
    page = report.read_text()
    start = page.index('src="data:image/png;base64,') + len('src="data:image/png;base64,')
    result = probe(tmp_path, page[:start] + "AAAA" * 50 + page[page.index('"', start):], "broken.html")
    assert result["bad"] == ["main_table.png"] and result["images"] == len(grid.FIGURES)
