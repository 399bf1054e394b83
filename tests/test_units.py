"""Unit tests of the small pure pieces: templating, subset matching, redaction, files, qcow2, YAML."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest

from runner.checks.common import subset_differences
from runner.errors import Location, ScenarioFormatError
from runner.files import DataFiles, Digests, FileAccessError, FilePolicy, HashingReader
from runner.redact import Redactor, is_secret_name
from runner.templating import Template, TemplateRenderError, compile_value
from runner.yamlsource import LocDict, load_yaml

HERE = Location("t.yaml", 3, 7)


# --- templating ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("{{ n }}", {"n": 5}, 5),
        ("{{ s }}", {"s": "123"}, "123"),  # never re-parsed into a number
        ("id-{{ n }}", {"n": 5}, "id-5"),
        ("{{ items | length }}", {"items": [1, 2]}, 2),
        ("{{ d | jmespath('a[1]') }}", {"d": {"a": [7, 8]}}, 8),
        ("{{ none_value is none }}", {"none_value": None}, True),
        ("{{ 2 ** 10 }}", {}, 1024),
    ],
)
def test_native_rendering(source, context, expected):
    assert Template(source, HERE).render(context) == expected
    assert type(Template(source, HERE).render(context)) is type(expected)


def test_compiled_trees_render_only_templates_and_keep_constants():
    compiled = compile_value({"a": "{{ x }}", "b": [1, "plain", "{{ x + 1 }}"]}, HERE)
    assert compiled.render({"x": 1}) == {"a": 1, "b": [1, "plain", 2]}
    assert compiled.names() == {"x"}
    constant = compile_value({"a": [1, 2]}, HERE)
    assert constant.constant and constant.render({}) is constant.value


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ missing }}", "'missing' is undefined"),
        ("{{ d.nokey }}", "d has no key 'nokey' (it is empty)"),
        ("{{ d | required('no endpoint') }}", "no endpoint"),
    ],
)
def test_render_errors_name_the_problem_and_the_place(source, message):
    with pytest.raises(TemplateRenderError) as info:
        Template(source, HERE).render({"d": {}} if "missing" not in source else {})
    assert message in info.value.message
    assert info.value.location == HERE


def test_sandbox_refuses_python_internals():
    with pytest.raises((TemplateRenderError, ScenarioFormatError)):
        Template("{{ x.__class__.__mro__ }}", HERE).render({"x": ""})
    with pytest.raises(TemplateRenderError):
        Template("{{ x|attr('__cla' ~ 'ss__') }}", HERE).render({"x": ""})


def test_syntax_errors_are_located():
    with pytest.raises(ScenarioFormatError) as info:
        Template("{{ x ", HERE)
    assert info.value.location is not None and info.value.location.line == 3


# --- subset matching ----------------------------------------------------------------------------


def test_subset_matching():
    actual = {"a": 1, "b": {"c": [1, {"d": True}]}, "extra": "ignored"}
    assert subset_differences({"a": 1, "b": {"c": [1, {"d": True}]}}, actual) == []
    assert subset_differences({"a": 2}, actual) == [("json.a", "2", "1")]
    assert subset_differences({"zz": 1}, actual) == [("json.zz", "1", "missing")]
    assert subset_differences({"b": {"c": [1]}}, actual)[0][0] == "json.b.c"  # lengths differ
    assert subset_differences({"b": {"c": [1, {"d": 1}]}}, actual) == [("json.b.c[1].d", "1", "true")]  # 1 != true
    assert subset_differences({"x-y": 1}, {"x-y": 2})[0][0] == "json['x-y']"


# --- redaction ----------------------------------------------------------------------------------


def test_redactor_masks_every_form_of_a_secret():
    redactor = Redactor()
    redactor.add('pa ss"wörd')
    for form in ('pa ss"wörd', 'pa ss\\"w\\u00f6rd', "pa%20ss%22w%C3%B6rd", "pa+ss%22w%C3%B6rd"):
        assert redactor.mask(f"before {form} after") == "before *** after"
    redactor.add("ab")  # too short to mask without garbling everything
    assert redactor.mask("abc") == "abc"


def test_redactor_learns_from_json_headers_and_env():
    redactor = Redactor()
    redactor.add_from_json({"auth": {"password": "hunter22", "name": "admin"}, "list": [{"api_key": "k-123"}]})
    redactor.add_from_headers({"Authorization": "Bearer abc.def.ghi", "Accept": "text/plain"})
    redactor.add_from_env({"OS_PASSWORD": "env-pass", "HOME": "/root"})
    text = redactor.mask("hunter22 admin k-123 abc.def.ghi env-pass /root text/plain")
    assert text == "*** admin *** *** *** /root text/plain"


@pytest.mark.parametrize("first_call", ["add", "mask"])
def test_a_secret_being_learned_by_one_thread_is_masked_for_another(monkeypatch, first_call):
    """Under --jobs, scenarios share the redactor. A thread that adds a secret another thread is
    still building into the automaton must not return (and print) before the automaton masks it.
    Secrets are built in when something is to be masked: the first thread's mask builds it (slowly),
    and the second thread's mask must wait for that build, not mask with the automata of before."""
    import threading
    import time

    from runner import redact

    compiling = threading.Event()
    real_init = redact._Block.__init__

    def slow_build(self, *args):
        compiling.set()
        time.sleep(0.2)
        real_init(self, *args)

    redactor = Redactor()
    monkeypatch.setattr(redact._Block, "__init__", slow_build)
    if first_call == "add":
        first = threading.Thread(target=lambda: (redactor.add("hunter2-password"), redactor.mask("x")))
    else:
        redactor.add("hunter2-password")  # learned, built when first needed
        first = threading.Thread(target=redactor.mask, args=("anything",))
    first.start()
    assert compiling.wait(5)
    redactor.add("hunter2-password")  # the same secret, met by a second scenario meanwhile
    assert redactor.mask("login failed for hunter2-password") == "login failed for ***"
    first.join()


def test_a_secret_is_never_unseen_while_the_first_build_finishes():
    """`_any()` (is anything learned?) reads the pending secrets before the built automata: a build
    sets the automata, then empties the pending list, so one of the two is always seen. Read the
    other way round, a mask that read the (still empty) automata, then lost the CPU while another
    thread built, found the pending list empty too, and printed the secret."""
    import threading

    built = threading.Event()
    reading = threading.Event()

    class Switching(Redactor):  # a thread switch right after the reader reads the automata
        @property
        def _published(self):
            value = self.__dict__.get("_built", ())
            if threading.current_thread().name == "reader" and not reading.is_set():
                reading.set()
                built.wait(0.5)  # the build happens now (unless the reader holds the lock)
            return value

        @_published.setter
        def _published(self, value):
            self.__dict__["_built"] = value

    redactor = Switching()
    redactor.add("hunter2-password")
    masked: list[str] = []
    reader = threading.Thread(target=lambda: masked.append(redactor.mask("x hunter2-password")), name="reader")
    reader.start()
    if reading.wait(5):
        redactor.mask("")  # another thread's mask: nothing to mask, builds nothing
        _ = redactor._blocks  # another thread builds what is pending
        built.set()
    reader.join(5)
    assert masked == ["x ***"]


@pytest.mark.parametrize("name", ["password", "OS_PASSWORD", "demo_password", "token", "api_key", "client_secret"])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["username", "image_id", "endpoint", "region"])
def test_not_secret_names(name):
    assert not is_secret_name(name)


# --- files --------------------------------------------------------------------------------------


def test_file_policy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.bin").write_bytes(b"x")
    policy = FilePolicy()
    assert policy.resolve("in.bin", tmp_path, HERE) == tmp_path / "in.bin"
    with pytest.raises(FileAccessError, match="outside the directories"):
        policy.resolve("/etc/hostname", tmp_path, HERE)
    with pytest.raises(FileAccessError, match="does not exist"):
        policy.resolve("nope.bin", tmp_path, HERE)
    (tmp_path / "link").symlink_to("/etc/hostname")
    with pytest.raises(FileAccessError, match="outside"):  # a symlink does not get out either
        policy.resolve("link", tmp_path, HERE)
    policy.allow("/etc")
    assert policy.resolve("/etc/hostname", tmp_path, HERE) == Path("/etc/hostname")
    # resolved on text (runner/files.py _real): what pathlib's resolve gives, symlinks and `..` alike
    (tmp_path / "sub").mkdir()
    (tmp_path / "up").symlink_to(tmp_path / "sub")
    for written in ("./in.bin", "sub/../in.bin", "up/../in.bin", "sub//../in.bin", str(tmp_path / "in.bin")):
        assert policy.resolve(written, tmp_path, HERE) == (tmp_path / written).resolve(), written
    with pytest.raises(FileAccessError, match="is a directory"):
        policy.resolve("up", tmp_path, HERE)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    try:
        (tmp_path / "loop").resolve()
    except RuntimeError:  # pathlib's way to say so before Python 3.13
        with pytest.raises(RuntimeError, match="Symlink loop"):
            policy.resolve("loop", tmp_path, HERE)
    else:
        with pytest.raises(FileAccessError):
            policy.resolve("loop", tmp_path, HERE)


def test_a_scenario_files_directory_is_where_it_really_is(tmp_path):
    """Where a scenario's relative paths start (RunServices.directory_of, remembered per directory):
    the directory of the file itself, also when the file or its directory is a symlink."""
    from runner.context import RunServices

    (tmp_path / "real").mkdir()
    (tmp_path / "s").mkdir()
    (tmp_path / "real" / "a.scenario.yaml").write_text("x")
    (tmp_path / "s" / "b.scenario.yaml").write_text("x")
    (tmp_path / "s" / "link.scenario.yaml").symlink_to(tmp_path / "real" / "a.scenario.yaml")
    (tmp_path / "alias").symlink_to(tmp_path / "s")
    services = RunServices(FilePolicy([tmp_path]))
    for _ in range(2):  # as found, then as remembered
        for name in ("s/b.scenario.yaml", "s/link.scenario.yaml", "alias/b.scenario.yaml", "alias/link.scenario.yaml"):
            path = tmp_path / name
            assert services.directory_of(path) == path.resolve().parent, name
    assert services.directory_of(tmp_path / "s" / "link.scenario.yaml") == tmp_path / "real"


def test_digests_are_read_once_and_seeded_by_uploads(tmp_path):
    data = tmp_path / "d.bin"
    data.write_bytes(b"0123456789" * 1000)
    digests = Digests()
    assert digests.digest(data, "md5", {"sha512"}) == hashlib.md5(data.read_bytes()).hexdigest()
    assert digests.digest(data, "sha512") == hashlib.sha512(data.read_bytes()).hexdigest()
    assert digests.reads == 1  # both from one pass
    other = tmp_path / "e.bin"
    other.write_bytes(b"abc" * 5000)
    reader = HashingReader(other, ("sha256",))
    while reader.read(1000):
        pass
    reader.close()
    digests.seed(other, reader.complete_digests() or {})
    assert digests.digest(other, "sha256") == hashlib.sha256(other.read_bytes()).hexdigest()
    assert digests.reads == 1  # the upload's digest was reused
    # an upload of a file hashed already (at this size and mtime) need not hash it again
    assert digests.known(other, ("sha256",)) and not digests.known(other, ("sha256", "md5"))
    other.write_bytes(b"abcd" * 5000)  # changed: its digests are not known any more
    assert not digests.known(other, ("sha256",)) and not digests.known(tmp_path / "gone.bin", ())


def test_data_files_are_deterministic_and_cleaned_up():
    files = DataFiles()
    first = Path(files.make("random", 100_000, seed=3))
    assert first.stat().st_size == 100_000
    again = DataFiles()
    assert Path(again.make("random", 100_000, seed=3)).read_bytes() == first.read_bytes()
    assert Path(files.make("zeros", 4096)).read_bytes() == b"\0" * 4096
    directory = files.directory
    files.cleanup()
    again.cleanup()
    assert not directory.exists()
    with pytest.raises(ValueError, match="unknown data_file kind"):
        DataFiles().make("iso", 10)


def test_qcow2_header_is_a_genuine_image():
    files = DataFiles()
    image = Path(files.make("qcow2", 10 * 1024 * 1024)).read_bytes()
    magic, version, _, _, cluster_bits, size, crypt, l1_size, l1_offset, rc_offset, rc_clusters = struct.unpack_from(
        ">4sIQIIQIIQQI", image
    )
    assert (magic, version, cluster_bits, crypt) == (b"QFI\xfb", 2, 16, 0)
    assert size == 10 * 1024 * 1024 and l1_size == 1  # one L1 entry covers 512 MiB with 64 KiB clusters
    assert l1_offset % 65536 == 0 and rc_offset % 65536 == 0 and rc_clusters == 1
    assert len(image) == 4 * 65536
    refcount_block = struct.unpack_from(">Q", image, rc_offset)[0]
    assert [struct.unpack_from(">H", image, refcount_block + 2 * i)[0] for i in range(5)] == [1, 1, 1, 1, 0]
    files.cleanup()


def test_vhd_is_a_genuine_dynamic_vhd():
    files = DataFiles()
    image = Path(files.make("vhd", 10 * 1024 * 1024 + 1)).read_bytes()
    footer, header = image[:512], image[512:1536]
    assert image[-512:] == footer  # the footer, and its copy at offset 0 (where Glance looks)
    cookie, features, version, data_offset = struct.unpack_from(">8sIIQ", footer)
    assert (cookie, features, version, data_offset) == (b"conectix", 2, 0x00010000, 512)
    original, current = struct.unpack_from(">QQ", footer, 40)
    assert original == current == 10 * 1024 * 1024 + 512  # rounded up to whole sectors
    cylinders, heads, per_track, disk_type, checksum = struct.unpack_from(">HBBII", footer, 56)
    assert disk_type == 3 and cylinders * heads * per_track <= current // 512 and (heads, per_track) == (4, 17)
    assert checksum == ~sum(footer[:64] + b"\0\0\0\0" + footer[68:]) & 0xFFFFFFFF
    cookie, _, table_offset, version, entries, block_size, checksum = struct.unpack_from(">8sQQIIII", header)
    assert (cookie, table_offset, version, block_size) == (b"cxsparse", 1536, 0x00010000, 2 * 1024 * 1024)
    assert entries == 6 and checksum == ~sum(header[:36] + b"\0\0\0\0" + header[40:]) & 0xFFFFFFFF
    assert image[1536:-512] == b"\xff" * 512  # 6 unallocated blocks, padded to a sector
    assert files.make("vhd", 10 * 1024 * 1024 + 1) == files.make("vhd", 10 * 1024 * 1024 + 1)
    seeded = Path(files.make("vhd", 1024, seed=1)).read_bytes()
    assert seeded[68:84] != Path(files.make("vhd", 1024)).read_bytes()[68:84]  # the unique id
    files.cleanup()


# --- YAML ---------------------------------------------------------------------------------------


def test_yaml_keeps_locations(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\nsteps:\n  - name: a\n    request: {url: u}\n")
    data = load_yaml(str(path))
    assert isinstance(data, LocDict)
    assert data.value_loc("name").line == 1
    step = data["steps"][0]
    assert data["steps"].item_loc(0).line == 3
    assert step["request"].value_loc("url").line == 4 and step["request"].value_loc("url").col == 20


def test_yaml_refuses_duplicates_and_python_tags(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("a: 1\nb: 2\na: 3\n")
    with pytest.raises(ScenarioFormatError, match="duplicate key 'a'"):
        load_yaml(str(path))
    path.write_text("a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ScenarioFormatError, match="python"):
        load_yaml(str(path))


def test_a_secret_mapping_is_secret_throughout():
    redactor = Redactor()
    redactor.add({"user": "svc-account", "keys": ["k-abcdef", 123456], "enabled": True})
    assert redactor.mask("svc-account k-abcdef 123456 True") == "*** *** *** True"


def test_a_secret_inside_a_longer_base64_text_is_masked_at_every_alignment():
    import base64

    redactor = Redactor()
    redactor.add("hunter2-Passw0rd")
    for prefix in ("", "u:", "us:", "use:"):  # offsets 0, 2, 0 (3 bytes), 1 mod 3
        encoded = base64.b64encode(f"{prefix}hunter2-Passw0rd;tail".encode()).decode()
        masked = redactor.mask(f"Basic {encoded}")
        assert "***" in masked
        # What is left of the encoded secret is at most the characters shared with its neighbours.
        assert len(masked) <= len(f"Basic {encoded}") - 16


def test_percent_encodings_learned_from_the_bytes_sent():
    """A variant no static rule predicts (mixed-case hex, some characters left as they are) is
    learned from the URL as sent, then masked wherever it is echoed."""
    redactor = Redactor()
    redactor.add("a b/c&d")
    odd = "a%20b%2fc%26%64"  # "d" encoded too, which no quoting function does
    assert redactor.mask(f"?x={odd}") != "?x=***"  # not one of the static variants
    redactor.learn_sent(f"http://h/p?x={odd}&y=1", {}, None)
    assert redactor.mask(f'"{odd}"') == '"***"'


def test_basic_auth_from_url_userinfo_is_learned_from_the_sent_header():
    import base64

    redactor = Redactor()
    value = "Basic " + base64.b64encode(b"svc:pw-from-userinfo").decode()
    redactor.learn_sent("http://svc:pw-from-userinfo@h/", {"Authorization": value}, None)
    assert redactor.mask(f"{value} svc:pw-from-userinfo pw-from-userinfo") == "*** *** ***"


def test_secret_field_names_and_their_describing_neighbours():
    for name in ("access_token", "refresh_token", "id_token", "bearer", "client_secret", "sessionid"):
        assert is_secret_name(name), name
    for name in ("token_type", "password_expires_at", "expires_in", "token_url", "application_credential_id"):
        assert not is_secret_name(name), name


def test_masking_with_thousands_of_secrets_finds_each_one():
    redactor = Redactor()
    tokens = [f"gAAAAABp{n:06d}-token-{n * 7919 % 100003:05d}" for n in range(3000)]
    for token in tokens:
        redactor.add(token)
    assert len(redactor._blocks) <= 20  # doubling blocks: O(log n) automata
    for token in tokens[::97]:
        assert redactor.mask(f"x {token} y") == "x *** y"
    assert redactor.mask("gAAAAABp-not-a-token") == "gAAAAABp-not-a-token"


def test_secrets_keep_every_form_masked_when_their_forms_are_derived_again(monkeypatch):
    """The masker keeps a secret once and derives its forms again to verify a hit (issue 12): a
    secret learned long ago (its forms out of the cache) is still masked in each of its forms, and
    blocks stop merging at MERGE_LIMIT forms (the merge that was the peak of a run's memory)."""
    import base64

    from runner import redact

    monkeypatch.setattr(redact, "MERGE_LIMIT", 64)
    redactor = Redactor()
    first = "Tok=en/with+all&sorts"  # not plain: percent, JSON, HTML and base64 forms
    redactor.add(first)
    tokens = [f"gAAAAAB{n:05d}-fresh-token-{n * 7919 % 100003:05d}=" for n in range(600)]
    for token in tokens:  # more secrets than the cache of derived forms holds
        redactor.add(token)
    assert all(len(block.owners) <= 64 for block in redactor._blocks)
    assert len(redactor._blocks) > 600 * 2 // 64  # apart beyond the limit
    redact._forms_of.cache_clear()
    encoded = base64.b64encode(b"user:" + first.encode()).decode()
    for form in (first, "Tok%3Den%2Fwith%2Ball%26sorts", "Tok%3den%2fwith%2ball%26sorts", "Tok=en/with+all&amp;sorts"):
        assert redactor.mask(f"<{form}>") == "<***>", form
    assert redactor.mask(f"Basic {encoded}") == "Basic dXNlcjp***M="  # its core, inside a longer base64 text
    assert redactor.mask(tokens[42]) == "***"
    assert redactor.mask(tokens[42].replace("=", "%3D")) == "***"
    assert redactor.mask(base64.b64encode(tokens[7].encode()).decode()) == "***"
    assert redactor.mask(tokens[42][:-3] + "99=") == tokens[42][:-3] + "99="


def test_the_padded_token_shortcut_derives_what_the_general_rules_derive(monkeypatch):
    """`derived_forms` takes a shortcut for a token of plain characters ending in `=` (a Keystone
    token): it must give exactly the forms of the general rules (JSON, HTML, repr, shell, five
    percent-encodings and their lower-case hex, base64)."""
    import random
    import re

    from runner import redact

    rng = random.Random(12)
    texts = ["gAAAAABpMtXie-Co_Bs52~x.y=", "ab=", "abc==", "=", "==", "x" * 40 + "==="]
    for _ in range(3000):
        texts.append("".join(rng.choice("aZ09_.~-") for _ in range(rng.randint(0, 20))) + "=" * rng.randint(1, 3))
    shortcut = {text: redact.derived_forms(text) for text in texts}
    monkeypatch.setattr(redact, "_PLAIN_PADDED", re.compile(r"(?!)"))  # never matches: the general rules
    for text in texts:
        assert redact.derived_forms(text) == shortcut[text], text


def test_forms_sharing_a_stem_are_masked_whole():
    """Forms are anchored where their stem ends (padding `=` and `%3D` left out): one pattern stands
    for the padded and unpadded base64, and for `=` raw and percent-encoded; each is masked whole,
    its padding included."""
    import base64

    from runner import redact

    redactor = Redactor()
    redactor.add("Zm9v-pass==")
    redactor.add("====")  # all padding: its own anchor
    padded = base64.b64encode(b"Zm9v-pass==").decode()
    for form in ("Zm9v-pass==", "Zm9v-pass%3D%3D", "Zm9v-pass%3d%3d", padded, padded.rstrip("=")):
        assert redactor.mask(f"<{form}>") == "<***>", form
    assert redactor.mask("a ==== b") == "a *** b"
    assert redactor.mask("Zm9v-pass") == "Zm9v-pass"  # the stem alone is not the secret
    forms = len(redact.derived_forms("Zm9v-pass==")) + len(redact.derived_forms("===="))
    assert sum(len(block.owners) for block in redactor._blocks) < forms  # patterns: fewer than the forms


def test_a_form_found_encoded_is_learned_once():
    redactor = Redactor()
    redactor.add("a b/c&d")
    odd = "a%20b%2fc%26%64"
    for _ in range(3):
        redactor.learn_sent(f"http://h/p?x={odd}&y=1", {}, None)
    assert len(redactor) == 2  # the secret, and the odd form found on the wire
    redactor.learn_sent("http://h/p?x=a%20b%2Fc%26d", {}, None)  # a static variant: nothing new
    assert len(redactor) == 2
    assert redactor.mask(f"[{odd}]") == "[***]"


def test_quoting_by_runs_equals_urllib_quote():
    import random
    from urllib.parse import quote, quote_plus

    from runner.redact import _quote

    rng = random.Random(12)
    alphabet = "aZ09 _-.~/:@!$&'()*+,;=%\"<>\\\né€😀\x00"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        for safe in ("", "/", "/:@!$&'()*+,;=~"):
            assert _quote(text, safe) == quote(text, safe=safe)
            assert _quote(text, safe, plus=True) == quote_plus(text, safe=safe)


@pytest.mark.parametrize(
    ("source", "message", "hint"),
    [
        (
            "{{ response.json.projects.id }}",
            "response.json has no key 'projects' (its keys: 'images', 'first', 'schema')",
            "make the path optional",
        ),
        ("{{ response.json.imagse }}", "response.json has no key 'imagse'", "did you mean 'images'?"),
        ("{{ response['json']['projets'] }}", "response['json'] has no key 'projets'", "did you mean 'projects'?"),
        ("{{ response.json.images[3].id }}", "response.json.images has no item 3 (it is a list of 1)", ""),
        ("{{ response.json.images.id }}", "response.json.images has no key 'id' (it is a list of 1)", "[0]"),
        ("{{ response.json.first.x }}", "response.json.first is a text, with no key 'x'", ""),
        ("{{ nothing.id }}", "nothing is null (none), with no key 'id'", ""),
        ("{{ env.OS_NOPE }}", "env has no key 'OS_NOPE' (in", "the environment variable OS_NOPE is not set"),
        ("{{ response.json.a.b == 1 }}", "response.json has no key 'a'", ""),
    ],
)
def test_a_missing_key_says_what_is_there(source, message, hint):
    """Issue 13 point 4: the keys (or list length) at the deepest level that resolved, with did you mean."""
    context = {
        "response": {"json": {"images": [{"id": 1}], "first": "/x", "schema": "s", "projects": []}},
        "nothing": None,
        "env": {"HOME": "/root"},
    }
    if "projects.id" in source:
        del context["response"]["json"]["projects"]
    with pytest.raises(TemplateRenderError) as info:
        Template(source, HERE).render(context)
    assert message in info.value.message
    assert hint in (info.value.hint or "")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ response.json.a.b | default('none here') }}", "none here"),
        ("{{ response.json.a.b.c | default(none) }}", None),
        ("{{ response.json.a.b is defined }}", False),
        ("{{ response.json.images[5].id | default(0) }}", 0),
        ("{{ response.json['a']['b'] | default(1) }}", 1),
    ],
)
def test_default_covers_a_missing_intermediate_key(source, expected):
    """Issue 13 point 5: `| default(...)` and `is defined` work over a missing middle key."""
    assert Template(source, HERE).render({"response": {"json": {"images": []}}}) == expected


def test_a_scoped_masker_knows_the_runs_secrets_and_forgets_its_own():
    """Load mode's per-iteration masker (runner/redact.py ScopedRedactor): it masks with both, its
    membership and size count both, and what it learns never reaches the run's masker."""
    from runner.redact import Redactor, ScopedRedactor

    run = Redactor()
    run.add("run-secret-0123456789")
    scoped = ScopedRedactor(run)
    scoped.add("iteration-token-abcdef")
    assert "run-secret-0123456789" in scoped and "iteration-token-abcdef" in scoped
    assert "iteration-token-abcdef" not in run
    assert len(scoped) > len(run) >= 1
    masked = scoped.mask("a run-secret-0123456789 b iteration-token-abcdef c")
    assert "run-secret" not in masked and "iteration-token" not in masked and masked.startswith("a ")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v2/images?x=1",
        "https://h/",
        "https://h:443/a",
        "http://h:80",
        "http://u:p@h:81/x#f",
        "http://[::1]:9292/x",
        "http://[::1]/",
        "http://h?x=/y",
        "http://h#/a",
        "https://EXAMPLE.com:8443/a/b",
        "http://h:/a",
        "http://user@h?q",
    ],
)
def test_host_header_per_origin_equals_parsing_each_url(url: str) -> None:
    """The Host shown in reports, parsed once per origin (issue 12), is what parsing the whole URL gave."""
    import urllib3

    from runner.http import _host_header, _origin

    parsed = urllib3.util.parse_url(url)
    host = parsed.host or ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    default = 443 if parsed.scheme == "https" else 80
    expected = host if parsed.port in (None, default) else f"{host}:{parsed.port}"
    assert _host_header(_origin(url)) == expected


def test_allowed_roots_compared_as_text_agree_with_pathlib(tmp_path: Path) -> None:
    """A sibling whose name extends a root's (`/a` and `/ab`) is outside it; the root itself is inside."""
    policy = FilePolicy()
    root = tmp_path / "a"
    policy.roots = [root, tmp_path / "w" / "x"]
    for candidate in (root, root / "b", tmp_path / "ab", tmp_path / "ab" / "c", tmp_path, tmp_path / "w" / "xy"):
        assert policy._allowed(candidate) == any(candidate.is_relative_to(r) for r in policy.roots), candidate
    assert not policy._allowed(tmp_path / "ab")
    policy.roots = [Path("/")]
    assert policy._allowed(tmp_path / "ab")


def test_a_file_edited_with_its_size_and_mtime_kept_is_hashed_again(tmp_path):
    """The digest cache (also what lets an upload skip hashing a file already hashed) knows a file
    by its size, mtime, ctime and inode: an edit that keeps the size and sets the mtime back
    (`touch -d`) changes the ctime, which no program can set."""
    import hashlib
    import os
    import time

    from runner.files import Digests

    path = tmp_path / "image.bin"
    path.write_bytes(b"A" * 4096)
    before = os.stat(path)
    digests = Digests()
    assert digests.digest(path, "md5") == hashlib.md5(b"A" * 4096).hexdigest()
    time.sleep(0.01)  # a ctime of its own for the edit, on file systems with coarse timestamps
    path.write_bytes(b"B" * 4096)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns and os.stat(path).st_size == before.st_size
    assert not digests.known(path, ["md5"])
    assert digests.digest(path, "md5") == hashlib.md5(b"B" * 4096).hexdigest()


def test_the_secret_key_scan_answers_as_the_regex_it_replaces():
    """`_secret_key_in` finds the words of `_SECRET_KEY_IN_JSON` in one automaton scan and checks only
    their occurrences: on JSON-like texts with keys, values, quotes, backslashes and every word in
    several cases, it says what the regex says."""
    import random

    from runner.redact import _SECRET_KEY_IN_JSON, _secret_key_in

    rng = random.Random(7)
    words = [b"Pass", b"password", b"SECRET", b"token", b"api_key", b"apikey", b"Credential", b"private",
             b"bearer", b"JWT", b"sessionid", b"session_id", b"signature", b"name", b"id"]  # fmt: skip
    noise = [b'"', b"\\", b":", b" ", b"{", b",", b"x", b"_", b"-", b"a" * 30, b"b" * 50]
    positives = 0
    for _ in range(20000):
        parts = []
        for _ in range(rng.randint(0, 4)):
            key = rng.choice(noise) * rng.randint(0, 2) + rng.choice(words) + rng.choice(noise) * rng.randint(0, 2)
            parts.append(b'"' + key + b'"' + b" " * rng.randint(0, 2) + rng.choice([b":", b",", b""]) + b' "v"')
        body = rng.choice(noise).join(parts) if parts else rng.choice(noise)
        expected = bool(_SECRET_KEY_IN_JSON.search(body))
        assert _secret_key_in(body) is expected, body
        positives += expected
    assert 2000 < positives < 18000  # both answers were met often
