import time

import pytest

from workflow_copy import REPO, copy_workflow, run_dirs_snapshot, snapshot_changes


class Timer:
    def __enter__(self):
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.t0


@pytest.fixture
def timer():
    return Timer()


def complete_config(overlay_path, out_path):
    """config/config.yaml with an overlay merged in (a --configfile replaces the default, so tests that change a
    few keys write a complete file)."""
    from pathlib import Path

    import yaml

    from mixmerge.config import overlay

    root = Path(__file__).resolve().parents[1]
    merged = overlay(yaml.safe_load((root / "config/config.yaml").read_text()),
                     yaml.safe_load(Path(overlay_path).read_text()))
    Path(out_path).write_text(yaml.safe_dump(merged, sort_keys=False))
    return out_path


@pytest.fixture(scope="session", autouse=True)
def bare_nltk():
    """NLTK sees only the project's own punkt_tab, as on CI, whatever NLTK data this machine has installed."""
    import nltk

    from mixmerge.verifiers import nltk_offline

    patch = pytest.MonkeyPatch()
    patch.setattr(nltk.data, "path", [nltk_offline.ensure_punkt()])
    yield
    patch.undo()


@pytest.fixture
def workflow_copy(tmp_path):
    """The root of a private copy of the workflow (workflow/, config/, src/): plan or run the DAG there
    (``workflow_copy.run_snakemake``), never in the checkout, whose results/ the main job may have filled."""
    return copy_workflow(tmp_path / "repo")


@pytest.fixture(scope="session", autouse=True)
def checkout_run_dirs_untouched():
    """The session writes nothing to the checkout's results/, logs/, benchmarks/ or .snakemake/ (names, sizes
    and mtimes compared before and after; a failure shows as an error at teardown of the last test)."""
    before = run_dirs_snapshot(REPO)
    yield
    changes = snapshot_changes(before, run_dirs_snapshot(REPO))
    assert not changes, ("the checkout's run directories changed during the test session (a test must plan "
                         "or run the DAG in a workflow_copy; or another process ran Snakemake in the "
                         "checkout meanwhile):\n" + "\n".join(changes[:40]))
