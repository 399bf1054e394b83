"""The importers on real exports that are not in the repository (public collections and recordings are not
ours to commit): `SR_REAL_EXPORTS=DIR pytest tests/test_importers_real.py` converts every Postman collection
(`*.postman_collection.json`, with `NAME.postman_environment.json` beside it when there is one) and every
`*.har` under DIR (with and without --keep-static; from-postman in both layouts), validates what was
written, and checks that no recorded credential was. Without the variable the tests are skipped.
docs/from-postman.md and docs/from-har.md say which files were tried and what came out; the shapes that
broke something are reproduced by small files of ours in tests/data/."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from test_from_postman import cli

ROOT = Path(os.environ["SR_REAL_EXPORTS"]) if os.environ.get("SR_REAL_EXPORTS") else None
COLLECTIONS = sorted(p for p in ROOT.rglob("*.postman_collection.json") if p.is_file()) if ROOT else []
RECORDINGS = sorted(p for p in ROOT.rglob("*.har") if p.is_file()) if ROOT else []
needs_exports = pytest.mark.skipif(ROOT is None, reason="set SR_REAL_EXPORTS=DIR to convert real exports")


def refused(code: int, err: str) -> bool:
    """An export the converter rightly refuses: a located message with a hint, not a crash."""
    reasons = ("no request to convert", "the runner reads in a scenario file")  # nothing, or too much
    return code == 2 and "Traceback" not in err and "hint:" in err and any(r in err for r in reasons)


def validate(path: Path) -> None:
    code, out, err = cli("validate", "--allow-path", "/", str(path))
    assert code == 0, out + err


@needs_exports
@pytest.mark.parametrize("collection", COLLECTIONS, ids=lambda p: p.name)
def test_postman_collection_converts_and_validates(collection: Path, tmp_path: Path) -> None:
    environment = collection.with_name(collection.name.replace("_collection.json", "_environment.json"))
    extra = ["-e", str(environment)] if environment.exists() else []
    code, _, err = cli("from-postman", str(collection), *extra, "-o", str(tmp_path / "files"))
    if refused(code, err):
        return
    assert code == 0, err
    validate(tmp_path / "files")
    code, out, err = cli("from-postman", str(collection), *extra, "--one-file")
    if refused(code, err):
        return
    assert code == 0, err
    (tmp_path / "one.scenario.yaml").write_text(out)
    validate(tmp_path / "one.scenario.yaml")


@needs_exports
@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda p: p.name)
def test_har_recording_converts_validates_and_writes_no_credential(recording: Path, tmp_path: Path) -> None:
    code, _, err = cli("from-har", str(recording), "-o", str(tmp_path) + "/")
    if refused(code, err):
        return
    assert code == 0, err
    (scenario,) = tmp_path.glob("*.scenario.yaml")
    validate(scenario)
    code, out, err = cli("from-har", str(recording), "--keep-static")  # every asset a step too
    if refused(code, err):
        return
    assert code == 0, err
    (tmp_path / "all.scenario.yaml").write_text(out)
    validate(tmp_path / "all.scenario.yaml")
    text = scenario.read_text()
    har = json.loads(recording.read_text(encoding="utf-8-sig"))
    # what requests sent elsewhere than in cookies: analytics scripts send a cookie's value in a query too,
    # where it is not a secret's (a known limit, docs/from-har.md)
    sent = json.dumps(
        [
            [e.get("request", {}).get("url"), e.get("request", {}).get("postData")]
            + [h for h in e.get("request", {}).get("headers") or [] if str(h.get("name")).lower() != "cookie"]
            for e in har["log"]["entries"]
        ]
    )
    elsewhere = sent + unquote_plus(sent)
    for entry in har["log"]["entries"]:
        for header in entry.get("request", {}).get("headers") or []:
            if str(header.get("name", "")).lower() in ("authorization", "proxy-authorization", "x-api-key"):
                credentials = str(header.get("value", "")).split(" ")[-1]
                assert len(credentials) < 8 or credentials not in text, f"{header['name']} written"
            if str(header.get("name", "")).lower() == "cookie":
                for pair in str(header.get("value", "")).split(";"):
                    value = pair.partition("=")[2].strip()
                    if len(value) >= 16 and re.search(r"\d", value) and value not in elsewhere:
                        assert value not in text, f"the cookie {pair.partition('=')[0].strip()!r} written"
