"""The one scrub: every secret a run learns, in every form it can take, masked in every output.

Secrets are learned as the run goes: variables marked secret or named like a password, secret
environment variables, values of secret headers (as actually sent, so the `Authorization: Basic`
that requests derives from `user:password@` in a URL counts), JSON fields named like passwords or
tokens (in request and response bodies), cookies. Each is learned with its derived forms: JSON
escapes, every percent-encoding a URL or form can give it (the static variants, plus the exact
substrings found in the bytes sent), HTML/XML escapes, shell quoting and base64 (at the three byte
alignments, so a secret inside a longer base64 text such as `user:password` is caught too).

Masking is done where text leaves the run (the console stream below, the report writers, the
pytest plugin's failure text), never only at the moment a step ran: files are scrubbed with every
secret the run learned by its end.

Scale: a run with a fresh token per login learns thousands of secrets. Matching is an Aho-Corasick
automaton (ahocorasick-rs, a Rust build: its queries stayed ~1 µs per line at 50,000 patterns, where
pyahocorasick took 4-14 µs) over a short *anchor* of each form (the last ANCHOR characters of its
stem, the form without trailing `=` or `%3D` padding, so that padded and unpadded base64, and `=`
raw and percent-encoded, share one pattern; shorter stems are their own anchor), and a hit is
verified against each whole form, so building costs little whatever the secrets' lengths. The forms
themselves are not kept: a secret is kept once, and its forms are derived again to verify a hit (a
few recent secrets' forms are cached). Learning must not rebuild everything each time (that made
the old regex masker quadratic), so automata are kept in blocks of growing sizes (Bentley-Saxe), up
to MERGE_LIMIT patterns a block: new secrets are built into a small block (when something is next
masked or searched: all the secrets learned meanwhile together), which merges with the block before
while that one is at most MERGE_FACTOR times its size. Each pattern is rebuilt
O(log n) times over a run, and masking a text runs O(log n) scans of it, plus one per MERGE_LIMIT
patterns beyond (`python bench/bench.py --only 6` measures both at 1,000 and 10,000 secrets).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO
from urllib.parse import quote, quote_plus, unquote, urlsplit

import ahocorasick_rs

MASK = "***"
MIN_SECRET_LENGTH = 3
ANCHOR = 6  # characters of a form the automaton matches; the rest is verified
MERGE_LIMIT = 32768  # patterns in the largest automaton a merge builds (its build peaks at ~18 MiB)
# A short text costs ~0.5 µs a scan whatever the automaton's size: 4 rather than 2 keeps 10,000 tokens in
# ~5 blocks instead of ~8, for ~20 % more building (issue 12, `bench.py --only 6`).
MERGE_FACTOR = 4
MIN_BASE64_CORE = 6  # shorter misaligned base64 fragments would mask ordinary words
LEARN_LIMIT = 256 * 1024  # bodies larger than this are not decoded to find escaped forms
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-auth-token",
        "x-subject-token",
        "x-api-key",
        "cookie",
        "set-cookie",
    }
)
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?$|passw|secret|token|api_?key|credential|private|bearer|jwt|session_?id|signature",
    re.I,
)
# Named like a secret but describing one: `token_type: Bearer`, `password_expires_at`, `token_url`.
NOT_SECRET_NAME = re.compile(
    r"(^|_|-)(type|url|uri|endpoint|expires(_at|_in)?|expiry|ttl|lifetime|length|format|hint|policy|methods?"
    r"|ids?|name|count|enabled|required|regex|header)$",
    re.I,
)
# The words of SECRET_NAME that mark a JSON key worth walking for secret fields (`_secret_key_in`).
_SECRET_WORDS = (b"pass", b"secret", b"token", b"apikey", b"api_key", b"credential", b"private", b"bearer", b"jwt",
                 b"sessionid", b"session_id", b"signature")  # fmt: skip
# What `_secret_key_in` answers, as a regex: one of the words inside a key (<= 48 characters either side,
# no quote or backslash), then its colon. Too slow to run on every body (it tries its alternatives at
# every `"`), it states the rule, and the tests hold the scan to it.
_SECRET_KEY_IN_JSON = re.compile(rb'"[^"\\]{0,48}(' + b"|".join(_SECRET_WORDS) + rb')[^"\\]{0,48}"\s*:', re.I)
_KEY_REST = re.compile(rb'[^"\\]{0,48}"\s*:')


def _secret_key_in(body: bytes) -> bool:
    """What `_SECRET_KEY_IN_JSON.search(body)` says, faster: the words are found in one scan (an
    Aho-Corasick automaton, in Rust), and only their occurrences are checked for being inside a key.
    The regex tries its alternatives at every `"` of the body, ~70 µs per KiB of a list of images
    (where `private` is a value, never a key), a tenth of a loopback request's cost; a substring
    search per word took ~5 µs for a 500-byte image (issue 12: learning from each response)."""
    lowered = body.lower()  # ASCII only, as re.I on a bytes pattern
    for _, at, end in _words().find_matches_as_indexes(lowered, overlapping=True):
        start = lowered.rfind(b'"', max(0, at - 49), at)  # the key's opening quote, <= 48 before
        if start >= 0 and b"\\" not in lowered[start:at] and _KEY_REST.match(lowered, end):
            return True
    return False


@functools.lru_cache(maxsize=1)
def _words() -> ahocorasick_rs.BytesAhoCorasick:
    return ahocorasick_rs.BytesAhoCorasick(list(_SECRET_WORDS), matchkind=ahocorasick_rs.MatchKind.Standard)


_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not NOT_SECRET_NAME.search(name)


def _base64_forms(data: bytes) -> set[str]:
    """The base64 of `data` as it appears on its own and inside a longer encoded text.

    Inside a longer text the secret starts at byte offset 0, 1 or 2 of a 3-byte group; for each
    alignment only the characters that depend on the secret's bytes alone are kept (the "core").
    """
    forms: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
        start = -(-8 * offset // 6)
        end = 8 * (offset + len(data)) // 6
        core = encoded[start:end]
        if offset == 0:
            forms.add(encoded)
            forms.add(encoded.rstrip("="))
        if len(core) >= MIN_BASE64_CORE or (offset == 0 and len(core) >= MIN_SECRET_LENGTH):
            forms.add(core)
    forms |= {f.replace("+", "-").replace("/", "_") for f in forms}  # base64url
    return forms


def _html_escape(text: str, quote: bool) -> str:
    """html.escape, without importing html (and its 2,000 entities) at start-up."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;").replace("'", "&#x27;") if quote else text


def _lower_hex(text: str) -> str:
    return _PERCENT.sub(lambda m: m.group().lower(), text)


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")  # no encoder changes these characters (tokens, ids)
_PLAIN_PADDED = re.compile(r"[A-Za-z0-9_.~-]*=+")  # a base64 token (Keystone's): only its `=` change


_NOT_PLAIN = re.compile(r"[^A-Za-z0-9_.~-]+")


def _quote(text: str, safe: str, plus: bool = False) -> str:
    """quote(text, safe) (quote_plus with `plus`), quoting only the runs of characters it may change:
    it quotes character by character, and a 180-character token with one `=` took ~10 µs a call."""
    function = quote_plus if plus else quote
    return _NOT_PLAIN.sub(lambda m: function(m.group(), safe=safe), text)


def derived_forms(text: str) -> set[str]:
    """Every way `text` can be written into an output by us, requests, a server or a template."""
    if _PLAIN.fullmatch(text):  # the common case (a token): only base64 changes it
        return {text} | {f for f in _base64_forms(text.encode("ascii")) if len(f) >= MIN_SECRET_LENGTH}
    if _PLAIN_PADDED.fullmatch(text):  # what the general rules below give, without the ~40 µs they take
        forms = {text, text.replace("=", "%3D"), text.replace("=", "%3d")} | _base64_forms(text.encode("ascii"))
        return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}
    as_json = json.dumps(text)[1:-1]
    percent = {
        _quote(text, ""),
        _quote(text, "/"),  # Jinja's urlencode filter
        _quote(text, "", plus=True),
        _quote(text, "/", plus=True),
        _quote(text, "/:@!$&'()*+,;=~"),  # requests' requote_uri keeps reserved characters
    }
    forms = {
        text,
        as_json,
        json.dumps(text, ensure_ascii=False)[1:-1],  # how reports show JSON bodies
        json.dumps(as_json)[1:-1],  # a JSON document quoted inside another (echoed bodies)
        _html_escape(text, quote=True),
        _html_escape(text, quote=False),
        repr(text)[1:-1],  # messages quote values with !r: 'Pa\\'ss"word' escapes the quote
        ascii(text)[1:-1],
        text.replace("'", "'\"'\"'"),  # inside shlex.quote's single quotes (curl lines)
        *percent,
        *(_lower_hex(p) for p in percent),
    }
    forms |= _base64_forms(text.encode("utf-8"))
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class _Exact(str):
    """A form learned as it was found (an encoding no rule predicts): matched as it is, with no
    derived forms of its own."""

    __slots__ = ()


def _stem(form: str) -> int:
    """The length of `form` without its trailing padding (`=`, `%3D`): base64 with and without
    padding, and a value ending in `=` as sent raw and percent-encoded, share a stem. Forms are
    anchored where their stem ends, so that one pattern stands for all of them (a Keystone token:
    8 forms, 5 patterns), and a hit is verified against each whole form."""
    stem = len(form)
    while stem:
        if form[stem - 1] == "=":
            stem -= 1
        elif stem >= 3 and form[stem - 3 : stem - 1] == "%3" and form[stem - 1] in "Dd":
            stem -= 3
        else:
            break
    return stem if stem >= MIN_SECRET_LENGTH else len(form)


# The forms of a secret are derived again where a match must be verified, and when its block is
# merged: they are not kept (issue 12: 10,000 Keystone tokens, 8 forms of ~220 characters each,
# held ~20 MiB of form strings, and a set of them). A text that shows a secret shows it again
# (a token in every request's headers), so the last few secrets' forms are cached, each with the
# length of its stem.
@functools.lru_cache(maxsize=256)
def _forms_of(secret: str) -> tuple[tuple[str, int], ...]:
    return tuple((form, _stem(form)) for form in derived_forms(secret))


def _entry_forms(entry: str) -> tuple[tuple[str, int], ...]:
    return ((str(entry), _stem(entry)),) if type(entry) is _Exact else _forms_of(entry)


class _Block:
    """An immutable automaton over the anchors of the forms of some entries (secrets, whose forms
    are derived, and exact forms). Pattern i of the automaton is `owners[i]`'s anchor: an anchor
    two entries share (rare: 6 characters of random tokens) is a pattern twice, so that a hit
    names its entry without a lookup table (a dict of 80,000 anchors was ~9 MiB at every merge).

    For merges it keeps the anchors joined into one text (~7 bytes each), so that a merge need not
    derive every secret's forms again.
    """

    __slots__ = ("_anchors", "automaton", "owners")

    def __init__(self, anchors: list[str], owners: list[str]):
        self.owners = owners
        joined = "\x00".join(anchors)
        self._anchors: str | list[str] = anchors if joined.count("\x00") >= len(anchors) else joined
        self.automaton = ahocorasick_rs.AhoCorasick(
            anchors,
            matchkind=ahocorasick_rs.MatchKind.Standard,
            implementation=ahocorasick_rs.Implementation.ContiguousNFA,
            store_patterns=False,
        )

    @property
    def anchors(self) -> list[str]:
        return self._anchors if isinstance(self._anchors, list) else self._anchors.split("\x00")

    @staticmethod
    def chunks(entries: list[str], limit: int) -> list[_Block]:
        """`entries` in blocks of at most `limit` patterns (an entry's patterns stay in one block)."""
        blocks: list[_Block] = []
        anchors: list[str] = []
        owners: list[str] = []
        for entry in entries:
            mine = {form[max(0, stem - ANCHOR) : stem] for form, stem in _entry_forms(entry)}
            if owners and len(owners) + len(mine) > limit:
                blocks.append(_Block(anchors, owners))
                anchors, owners = [], []
            for anchor in mine:
                anchors.append(anchor)
                owners.append(entry)
        if owners:
            blocks.append(_Block(anchors, owners))
        return blocks


# A merge of large blocks frees the old automata (Rust) and lists: glibc keeps that memory unless
# asked to give it back, and a run with 10,000 fresh tokens held ~25 MiB more for it (issue 12).
# A merge this large happens once per ~256 tokens learned, larger ones ever more rarely.
_TRIM_AFTER = 2048


def _trim() -> None:
    global _trim_function
    if _trim_function is None:
        try:
            import ctypes

            _trim_function = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
            _trim_function = False
    if _trim_function:
        _trim_function(0)


_trim_function: Any = None


class Redactor:
    """Knows the secret values of a run; shared by all scenarios, safe across threads."""

    def __init__(self) -> None:
        self._exact: set[str] = set()  # forms learned as found (_learn_encoded)
        self._learned: set[str] = set()  # secrets whose forms are known: the token is re-added every step
        self._published: tuple[_Block, ...] = ()  # published whole; readers take the lock only to build
        # Learned, not built yet: automata are built when something is to be masked or searched
        # (`_blocks`), for all of them at once. A run that prints nothing per step (-q, a CI job)
        # learned 10,000 tokens one block build and merge at a time, ~0.1 ms each on the worker
        # (issue 12); built together at the end, they cost a few builds.
        self._pending: list[str] = []
        self._lock = threading.RLock()  # re-entered: `_learn_encoded` reads the automata holding it

    @property
    def _blocks(self) -> tuple[_Block, ...]:
        """The automata, with every secret learned so far built in: the one way to read them, so that
        nothing learned can be missed by a search or a mask."""
        if self._pending:
            with self._lock:
                if self._pending:  # left pending until built: a reader meanwhile waits for the lock
                    self._publish(self._pending)
                    self._pending = []
        return self._published

    def _any(self) -> bool:
        """Whether anything was learned, without building what is pending (a cheap test first)."""
        # `_pending` first: a build sets `_published` before it empties `_pending`, so one of the two
        # is seen whatever the build is doing meanwhile (the other order could see neither).
        return bool(self._pending or self._published)

    # --- learning -----------------------------------------------------------------------------

    def add(self, value: Any) -> None:
        """A secret that is a mapping or a list (credentials from a vars file) is secret throughout."""
        if isinstance(value, dict):
            for item in value.values():
                self.add(item)
            return
        if isinstance(value, (list, tuple)):
            for item in value:
                self.add(item)
            return
        if value is None or isinstance(value, bool):
            return
        text = str(value)
        if len(text) < MIN_SECRET_LENGTH or text in self._learned:
            return
        with self._lock:
            if text in self._learned:
                return
            self._pending.append(text)
            # Last: another thread that finds `text` here returns without waiting, so it must already
            # be pending, where the next reader of the automata builds it in.
            self._learned.add(text)

    def _publish(self, entries: list[str]) -> None:
        """Build `entries` into the automata (the caller holds the lock), in blocks of at most
        MERGE_LIMIT forms. Blocks of similar size merge (sizes grow about MERGE_FACTOR-fold from the
        newest block to the oldest, so there are O(log n) of them), up to MERGE_LIMIT forms: a merge
        builds the new automaton while the old ones are still alive, and unbounded merges made the
        largest one the run's peak of memory (issue 12: +72 MiB at 10,000 tokens). Beyond that size
        blocks stay apart: n / MERGE_LIMIT more scans per text."""
        blocks = list(self._published)
        merged = 0
        for block in _Block.chunks(entries, MERGE_LIMIT):
            while (
                blocks
                and len(blocks[-1].owners) <= MERGE_FACTOR * len(block.owners)
                and len(blocks[-1].owners) + len(block.owners) <= MERGE_LIMIT
            ):
                older = blocks.pop()
                block = _Block(older.anchors + block.anchors, older.owners + block.owners)
            merged = max(merged, len(block.owners))  # a merge, or a large flush built at once
            blocks.append(block)
        self._published = tuple(blocks)
        if merged >= _TRIM_AFTER:
            _trim()

    def add_from_json(self, value: Any) -> None:
        """Learn the values of secret-named fields (password, access_token, ...) anywhere in a document."""
        if isinstance(value, dict):
            for key, item in value.items():
                secret = isinstance(key, str) and is_secret_name(key)
                if secret and isinstance(item, (str, int, float)):
                    self.add(item)
                elif secret and isinstance(item, list) and all(isinstance(i, (str, int, float)) for i in item):
                    self.add(item)  # "api_keys": [...]
                else:  # Keystone's "token": {...} is a document about a token, not a secret
                    self.add_from_json(item)
        elif isinstance(value, list):
            for item in value:
                self.add_from_json(item)

    def add_from_json_body(self, body: bytes) -> None:
        """A response or request body: walked only when a key in it looks like a secret's name."""
        if not body or not _secret_key_in(body):
            return
        try:
            self.add_from_json(json.loads(body))
        except ValueError:
            return

    def add_from_headers(self, headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            if name.lower() not in SECRET_HEADERS or value is None:
                continue
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            self.add(text)
            lowered = name.lower()
            if lowered in ("cookie", "set-cookie"):  # each value, also of a cookie the jar refused
                pairs = text.split(";") if lowered == "cookie" else text.split(";", 1)[:1]
                for pair in pairs:
                    self.add(pair.partition("=")[2].strip())
                continue
            scheme, _, credential = text.partition(" ")
            if credential:  # "Bearer abc": the credential alone too
                self.add(credential.strip())
                if scheme.lower() == "basic":
                    self._add_basic(credential.strip())

    def _add_basic(self, credential: str) -> None:
        """`Basic base64(user:password)`: the pair and the password are secrets in their own right."""
        try:
            pair = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return
        self.add(pair)
        _, sep, password = pair.partition(":")
        if sep:
            self.add(password)

    def add_from_env(self, environ: Mapping[str, str]) -> None:
        for name, value in environ.items():
            if is_secret_name(name):
                self.add(value)

    def learn_sent(self, url: str, headers: Mapping[str, Any], body: bytes | None) -> None:
        """Learn from the bytes that went on the wire, which are what a server can echo.

        The password of `user:password@host` in a URL is a secret; so is the Authorization header
        requests derives from it. Percent-encodings that no static variant predicted (requests'
        re-quoting, a template's own quoting) are found by decoding what was sent and looking for
        known secrets in it; the encoded substrings become forms of their own.
        """
        self.add_from_headers(headers)
        if "@" in url:
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                self.add(unquote(password))
        self._learn_url_parameters(url)
        if self._any():  # what decoding can change, then the automata (built if pending)
            if ("%" in url or "+" in url) and self._blocks:
                self._learn_encoded(url, _percent_decode)
            if body and len(body) <= LEARN_LIMIT and (b"%" in body or b"+" in body) and self._blocks:
                self._learn_encoded(body.decode("latin-1"), _percent_decode)

    def learn_received(self, headers: Mapping[str, Any], body: bytes) -> None:
        """Learn from a response: secret headers and cookies, secret-named fields of a JSON body, a
        secret-named parameter of a redirect's Location, and the exact escaped form (`\\u0026`,
        `\\/`, `\\u0068`: servers escape JSON differently) in which a known secret appears in the body."""
        self.add_from_headers(headers)
        location = headers.get("Location") if hasattr(headers, "get") else None
        if location:
            self._learn_url_parameters(str(location))
        self.add_from_json_body(body)
        if self._any() and body and b"\\" in body and len(body) <= LEARN_LIMIT and self._blocks:
            self._learn_encoded(body.decode("utf-8", "replace"), _json_unescape)

    def _learn_url_parameters(self, url: str) -> None:
        """`?access_token=...`, `#id_token=...` (an OAuth redirect): parameters named like secrets."""
        if "=" not in url:
            return
        _, _, rest = url.partition("?") if "?" in url else url.partition("#")
        for part in re.split(r"[&#]", rest):
            name, sep, value = part.partition("=")
            if sep and value and is_secret_name(unquote(name)):
                self.add(unquote(value.replace("+", " ")))

    def _learn_encoded(self, text: str, decode: Callable[[str], tuple[str, list[int]]]) -> None:
        """Decode `text`, find known secrets in the decoded text, learn the encoded substrings."""
        decoded, origin = decode(text)
        if decoded == text:
            return
        found = {text[origin[start] : origin[end]] for start, end in self._spans(decoded)}
        with self._lock:
            new: list[str] = [
                _Exact(f) for f in found if len(f) >= MIN_SECRET_LENGTH and f not in self._exact and not self._known(f)
            ]
            if new:
                self._publish(new)
                self._exact.update(new)

    def _known(self, form: str) -> bool:
        """`form` is already one of the forms the automata mask (a static variant of a secret)."""
        return (0, len(form)) in self._spans(form)

    # --- masking ------------------------------------------------------------------------------

    def _spans(self, text: str) -> list[tuple[int, int]]:
        spans = []
        for block in self._blocks:
            owners = block.owners
            for index, _, stop in block.automaton.find_matches_as_indexes(text, overlapping=True):
                for form, stem in _entry_forms(owners[index]):  # the anchor ends where a stem does
                    start = stop - stem
                    if start >= 0 and text.startswith(form, start):
                        spans.append((start, start + len(form)))
        return spans

    def mask(self, text: str) -> str:
        if not text or not self._any():
            return text
        spans = self._spans(text)
        if not spans:
            return text
        spans.sort()
        pieces = []
        at = 0
        cover_start, cover_end = spans[0]
        for start, end in spans[1:]:
            if start <= cover_end:  # overlapping or touching forms are one masked region
                cover_end = max(cover_end, end)
                continue
            pieces += [text[at:cover_start], MASK]
            at = cover_end
            cover_start, cover_end = start, end
        pieces += [text[at:cover_start], MASK, text[cover_end:]]
        return "".join(pieces)

    def mask_headers(self, headers: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
        return [(name, MASK if name.lower() in SECRET_HEADERS else self.mask(str(value))) for name, value in headers]

    def __contains__(self, value: str) -> bool:
        """`value` is a secret learned, or a form learned as found."""
        return value in self._learned or value in self._exact

    def __len__(self) -> int:
        return len(self._learned) + len(self._exact)


_JSON_ESCAPE = re.compile(r"\\(?:u[0-9A-Fa-f]{4}|[\"\\/bfnrt])")
_JSON_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _json_unescape(text: str) -> tuple[str, list[int]]:
    """`text` with JSON string escapes decoded, and where each decoded character came from."""
    decoded: list[str] = []
    origin: list[int] = []
    at = 0
    for match in _JSON_ESCAPE.finditer(text):
        start, end = match.span()
        decoded.extend(text[at:start])
        origin.extend(range(at, start))
        escape = match.group()
        decoded.append(chr(int(escape[2:], 16)) if escape[1] == "u" else _JSON_SIMPLE[escape[1]])
        origin.append(start)
        at = end
    decoded.extend(text[at:])
    origin.extend(range(at, len(text)))
    origin.append(len(text))
    return "".join(decoded), origin


def _percent_decode(text: str) -> tuple[str, list[int]]:
    """`text` with %XX sequences (UTF-8) and `+` decoded, and for each decoded character (and the
    end) the index in `text` where it starts, so a span found in the decoded text maps back."""
    if "%" not in text and "+" not in text:  # most URLs: nothing to decode (learn_sent asks at every step)
        return text, list(range(len(text) + 1))
    decoded: list[str] = []
    origin: list[int] = []
    at = 0
    for match in re.finditer(r"(?:%[0-9A-Fa-f]{2})+|\+", text):
        start, end = match.span()
        for index in range(at, start):
            decoded.append(text[index])
            origin.append(index)
        run = match.group()
        if run == "+":
            decoded.append(" ")
            origin.append(start)
        else:
            position = start
            for char in unquote(run, errors="surrogateescape"):
                decoded.append(char)
                origin.append(position)
                width = len(char.encode("utf-8", "surrogateescape"))
                position += 3 * width
        at = end
    for index in range(at, len(text)):
        decoded.append(text[index])
        origin.append(index)
    origin.append(len(text))
    return "".join(decoded), origin


# A line of a file quoted in an error message (runner/errors.py: `  12 | key: value`). Files are quoted
# before their values were learned (a load error stops the load), so a value whose key names a
# secret is masked by its name.
_QUOTED_ASSIGNMENT = re.compile(r"^(\s*\d+ \| [\s-]*[\"']?)([\w.-]+)([\"']?\s*[:=]\s*)(\S.*)$", re.M)


def mask_quoted_secrets(text: str) -> str:
    if " | " not in text:
        return text
    return _QUOTED_ASSIGNMENT.sub(
        lambda m: (
            m.group(1) + m.group(2) + m.group(3) + MASK
            if is_secret_name(m.group(2)) and m.group(2) != "secrets"  # the format's list of names
            else m.group()
        ),
        text,
    )


class ScrubbedStream:
    """The console as the run sees it: every write is masked, and a lost console does not stop the run.

    `scenario-runner run ... | head -1` closes the pipe after one line; the run must go on (its
    `finally` steps delete what it created, its reports are still written) and end with its own exit
    code. After the first failed write the stream is marked lost and later writes are dropped; the
    descriptor is pointed at /dev/null so the interpreter's flush at exit does not fail either.
    """

    def __init__(self, stream: TextIO, redactor: Redactor):
        self.stream = stream
        self.redactor = redactor
        self.lost = False

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                self.stream.write(self.redactor.mask(mask_quoted_secrets(text)))
            except (OSError, ValueError):  # EPIPE, EIO (terminal gone), or a closed file object
                self._lose()
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self._lose()

    def isatty(self) -> bool:
        try:
            return not self.lost and bool(self.stream.isatty())
        except (OSError, ValueError):
            return False

    def _lose(self) -> None:
        self.lost = True
        import os

        try:
            fd = self.stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass


class ScopedRedactor(Redactor):
    """The masker of one run of a scenario inside a longer one (a load test's iteration): it masks
    with the run's secrets and its own, and learns into its own only, so that what it learned goes
    when it goes. A load test logging in at each iteration learns a fresh token each time: kept in
    the run's masker, they would grow it for as long as the test lasts. What leaves the scope (a
    failure message) must be masked by it before it does."""

    def __init__(self, run: Redactor):
        super().__init__()
        self.run = run

    def add(self, value: Any) -> None:
        if isinstance(value, str) and value in self.run._learned:
            return
        super().add(value)

    def learn_sent(self, url: str, headers: Mapping[str, Any], body: bytes | None) -> None:
        super().learn_sent(url, headers, body)
        if not self._any() and self.run._any():  # the run's secrets, percent-encoded as sent
            if "%" in url or "+" in url:  # what decoding can change
                self._learn_encoded(url, _percent_decode)
            if body and len(body) <= LEARN_LIMIT and (b"%" in body or b"+" in body):
                self._learn_encoded(body.decode("latin-1"), _percent_decode)

    def learn_received(self, headers: Mapping[str, Any], body: bytes) -> None:
        super().learn_received(headers, body)
        if not self._any() and self.run._any() and body and b"\\" in body and len(body) <= LEARN_LIMIT:
            self._learn_encoded(body.decode("utf-8", "replace"), _json_unescape)

    def _spans(self, text: str) -> list[tuple[int, int]]:
        return self.run._spans(text) + super()._spans(text)

    def mask(self, text: str) -> str:
        if not self._any():
            return self.run.mask(text)
        return super().mask(text)  # with the spans of both

    def __contains__(self, value: str) -> bool:
        return super().__contains__(value) or value in self.run

    def __len__(self) -> int:
        return super().__len__() + len(self.run)
