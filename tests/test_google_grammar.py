"""The `gcp:secretmanager:` grammar, by example and by property (hypothesis).

`parse` runs in PID 1 on whatever the environment holds, so it must never
raise anything but ReferenceSyntaxError, and whatever it accepts must name
exactly one secret version: no input may smuggle extra path segments into the
resource name the child will request.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secrets_init import providers
from secrets_init.providers.google_grammar import PREFIX, GoogleSecretTarget, is_project, parse

# -- by example -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "target", "key"),
    [
        ("gcp:secretmanager:db", GoogleSecretTarget(None, None, "db", "latest"), None),
        ("gcp:secretmanager:db/versions/3", GoogleSecretTarget(None, None, "db", "3"), None),
        ("gcp:secretmanager:db/versions/latest#user", GoogleSecretTarget(None, None, "db"), "user"),
        ("gcp:secretmanager:projects", GoogleSecretTarget(None, None, "projects"), None),
        (
            "gcp:secretmanager:projects/versions/2",
            GoogleSecretTarget(None, None, "projects", "2"),
            None,
        ),
        (
            "gcp:secretmanager:projects/my-project/secrets/db",
            GoogleSecretTarget("my-project", None, "db"),
            None,
        ),
        (
            "gcp:secretmanager:projects/123456789012/secrets/DB_pass-1/versions/12#a#b",
            GoogleSecretTarget("123456789012", None, "DB_pass-1", "12"),
            "a#b",
        ),
        (
            "gcp:secretmanager:projects/example.com:my-project/secrets/db",
            GoogleSecretTarget("example.com:my-project", None, "db"),
            None,
        ),
        (
            "gcp:secretmanager:projects/my-project/locations/europe-west4/secrets/db/versions/1",
            GoogleSecretTarget("my-project", "europe-west4", "db", "1"),
            None,
        ),
        (
            "gcp:secretmanager:projects/my-project/locations/us-central1/secrets/db#k/x y",
            GoogleSecretTarget("my-project", "us-central1", "db"),
            "k/x y",
        ),
    ],
)
def test_valid_references(text: str, target: GoogleSecretTarget, key: str | None) -> None:
    assert parse(text) == providers.Parsed(target, key)


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("gcp:secretmanager:", "empty secret name"),
        ("gcp:secretmanager:#key", "empty secret name"),
        ("gcp:secretmanager:db#", "empty JSON key after '#'"),
        ("gcp:secretmanager:db/versions/", "empty version"),
        ("gcp:secretmanager:/versions/1", "empty secret id"),
        ("gcp:secretmanager:db/versions/01", "version '01' is not a positive number or 'latest'"),
        ("gcp:secretmanager:db/versions/-1", "version '-1' is not a positive number or 'latest'"),
        ("gcp:secretmanager:db/versions/LATEST", "version 'LATEST' is not a positive number"),
        ("gcp:secretmanager:db/versions/\u0661", "version '\u0661' is not a positive number"),
        ("gcp:secretmanager:db/versions", "expected <secret>[/versions/<version>] or"),
        ("gcp:secretmanager:db/1", "expected <secret>[/versions/<version>] or"),
        ("gcp:secretmanager:projects/p", "expected <secret>"),
        ("gcp:secretmanager:projects//secrets/db", "empty project"),
        ("gcp:secretmanager:projects/Big-Project/secrets/db", "project 'Big-Project' is not"),
        ("gcp:secretmanager:projects/short/secrets/db", "project 'short' is not"),
        ("gcp:secretmanager:projects/my-project/secrets/", "empty secret id"),
        ("gcp:secretmanager:projects/my-project/secrets/db/", "expected <secret>"),
        ("gcp:secretmanager:projects/my-project/secrets/db/versions/1/x", "expected <secret>"),
        ("gcp:secretmanager:projects/my-project/secret/db", "expected <secret>"),
        ("gcp:secretmanager:projects/my-project/locations//secrets/db", "empty location"),
        ("gcp:secretmanager:projects/my-project/locations/EU/secrets/db", "location 'EU' is not"),
        ("gcp:secretmanager:projects/my-project/locations/eu/secrets", "expected <secret>"),
        ("gcp:secretmanager:my.secret", "secret id 'my.secret' is not 1-255 letters"),
        ("gcp:secretmanager:" + "a" * 256, "is not 1-255 letters"),
        ("gcp:secretmanager:dé", "secret id 'dé' is not"),
        ("gcp:other:db", "must start with gcp:secretmanager:"),
    ],
)
def test_malformed_references(text: str, cause: str) -> None:
    with pytest.raises(providers.ReferenceSyntaxError) as raised:
        parse(text)
    assert cause in str(raised.value)


def test_longest_secret_id_is_accepted() -> None:
    assert parse("gcp:secretmanager:" + "a" * 255).target == GoogleSecretTarget(
        None, None, "a" * 255
    )


@pytest.mark.parametrize(
    ("project", "valid"),
    [
        ("my-project", True),
        ("abcdef", True),
        ("a" * 30, True),
        ("a" * 31, False),
        ("abcde", False),
        ("1project", False),
        ("project-", False),
        ("my_project", False),
        ("42", True),
        ("google.com:my-project", True),
        (".com:my-project", False),
        ("a:b:my-project", False),
        ("", False),
    ],
)
def test_project_ids(project: str, valid: bool) -> None:
    assert is_project(project) is valid


# -- by property ------------------------------------------------------------------

_lower = string.ascii_lowercase
secret_ids = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=255)
versions = st.one_of(st.just("latest"), st.integers(min_value=1, max_value=10**17).map(str))
project_ids = st.builds(
    lambda first, middle, last: first + middle + last,
    st.sampled_from(_lower),
    st.text(_lower + string.digits + "-", min_size=4, max_size=28),
    st.sampled_from(_lower + string.digits),
)
projects = st.one_of(
    project_ids,
    st.integers(min_value=1, max_value=10**15).map(str),
    st.builds(
        lambda domain, name: f"{domain}.com:{name}", st.text(_lower, min_size=1), project_ids
    ),
)
locations = st.one_of(
    st.none(),
    st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(_lower),
        st.text(_lower + string.digits, max_size=20),
    ),
)
json_keys = st.one_of(st.none(), st.text(min_size=1).filter(lambda key: "\0" not in key))


@st.composite
def targets(draw: st.DrawFn) -> GoogleSecretTarget:
    project = draw(st.one_of(st.none(), projects))
    location = draw(locations) if project is not None else None
    return GoogleSecretTarget(project, location, draw(secret_ids), draw(versions))


# No per-example deadline: the machine is shared with other test processes.
@settings(deadline=None)
@given(targets(), json_keys)
def test_valid_references_round_trip(target: GoogleSecretTarget, key: str | None) -> None:
    text = target.reference() + ("" if key is None else f"#{key}")
    assert parse(text) == providers.Parsed(target, key)


@settings(deadline=None)
@given(projects, locations, secret_ids, versions)
def test_resource_names_have_exactly_one_shape(
    project: str, location: str | None, secret: str, version: str
) -> None:
    target = parse(GoogleSecretTarget(project, location, secret, version).reference()).target
    assert isinstance(target, GoogleSecretTarget)
    name = target.resource_name(project).split("/")
    assert len(name) == (8 if location else 6)
    assert name[-1] == version and name[-3] == secret


# Pieces that make near-miss references likelier than plain random text does.
_pieces = st.sampled_from(
    ["projects", "secrets", "versions", "locations", "latest", "/", "#", "0", "1", "-", "_",
     "my-project", "db", "eu", ".", ":", "", " ", "\0", "é", "\udcff", "?"]
)  # fmt: skip
near_misses = st.lists(st.one_of(_pieces, st.text(max_size=3)), max_size=12).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(near_misses.map(lambda body: PREFIX + body), st.text()))
@example("gcp:secretmanager:projects/locations/secrets/x")
@example("gcp:secretmanager:projects/p/locations")
def test_parse_only_ever_raises_reference_syntax_error(text: str) -> None:
    try:
        parsed = parse(text)
    except providers.ReferenceSyntaxError as error:
        assert str(error)
        return
    # Whatever is accepted is canonical: written back out, it parses to the same thing.
    target = parsed.target
    assert isinstance(target, GoogleSecretTarget)
    canonical = target.reference() + ("" if parsed.json_key is None else f"#{parsed.json_key}")
    assert parse(canonical) == parsed
    assert "/" not in target.secret and "/" not in target.version
    assert target.project is None or "/" not in target.project
