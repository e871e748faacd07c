"""Store locations (store/urls.py): what is a PostgreSQL location, what is wrong with one
that is not, and every way a password can be written shown as *** and never quoted."""

from __future__ import annotations

import sys

import pytest

from procctl.store.errors import StoreError
from procctl.store.urls import has_password, is_store_url, problem, redacted, require_driver

VALID = (
    "postgresql://procctl@db.example.com:5432/procctl?sslmode=verify-full",
    "postgres://db.example.com/procctl",
    "postgresql:///procctl?host=/run/postgresql",
    "postgresql://",
    "postgresql://[::1]:5433,replica.example.com:5434/procctl?target_session_attrs=any",
    "postgresql://app@%2Frun%2Fpostgresql/procctl",
    "service=procctl",
    "host=/run/postgresql dbname=procctl",
    "host = db port = 5432   dbname='my db' application_name='it\\'s procctl'",
)


@pytest.mark.parametrize("text", VALID)
def test_libpq_urls_and_key_value_settings_are_store_urls(text: str) -> None:
    assert problem(text) is None
    assert is_store_url(text)
    assert not has_password(text)
    assert redacted(text) == text


@pytest.mark.parametrize(("text", "says"), [
    ("", "neither a PostgreSQL URL"),
    ("/var/lib/procctl/procctl.db", "neither a PostgreSQL URL"),
    ("mysql://db/procctl", "neither a PostgreSQL URL"),
    ("postgresql://db:54x2/procctl", "port is not a number"),
    ("postgresql://db:70000/procctl", "port is not a number"),
    ("postgresql://[::1/procctl", "no closing ']'"),
    ("postgresql://db/procctl?sslmod=require", "'sslmod' is not a PostgreSQL connection setting"),
    ("postgresql://db/procctl?sslmode", "'sslmode' has no '=value'"),
    ("postgresql://db/procctl?sslmode=a=b", "has a second '='"),
    ("postgresql://db/pro%zzctl", "does not start a %XX escape"),
    ("servce=procctl", "'servce' is not a PostgreSQL connection setting"),
    ("host=db dbname", "missing '=' after 'dbname'"),
    ("dbname='procctl", "'dbname' has no closing quote"),
])
def test_an_invalid_location_says_what_is_wrong(text: str, says: str) -> None:
    found = problem(text)
    assert found is not None and says in found, found
    assert not is_store_url(text)


@pytest.mark.parametrize(("text", "shown"), [
    # a URL's user part; a percent-encoded '@' and ':' stay inside the password
    ("postgresql://app:s3cr%40t:x@db/procctl", "postgresql://app:***@db/procctl"),
    ("postgres://:hunter2@db", "postgres://:***@db"),
    # query parameters, the key percent-encoded too
    ("postgresql://db/procctl?sslmode=require&password=hunter2",
     "postgresql://db/procctl?sslmode=require&password=***"),
    ("postgresql://db/procctl?pass%77ord=hunter2", "postgresql://db/procctl?pass%77ord=***"),
    ("postgresql://db/procctl?sslpassword=keypass", "postgresql://db/procctl?sslpassword=***"),
    # key=value pairs: a word, a quoted value with spaces and escapes, spaces round '='
    ("host=db password=hunter2 dbname=procctl", "host=db password=*** dbname=procctl"),
    ("host=db password='hunt er\\'2' dbname=procctl", "host=db password=*** dbname=procctl"),
    ("password = hunter2", "password = ***"),
    # libpq skips spaces after '=': this password is "hunter2=x"
    ("password= hunter2=x", "password= ***"),
    ("oauth_client_secret=abc service=x", "oauth_client_secret=*** service=x"),
    # text that is invalid still loses its secrets
    ("host=db password='hunter2", "host=db password=***"),
    ("bogus=1 password=hunter2", "bogus=1 password=***"),
    ("postgresql://app:hunter2@[::1/procctl", "postgresql://app:***@[::1/procctl"),
])
def test_every_form_of_password_is_redacted(text: str, shown: str) -> None:
    assert has_password(text)
    assert redacted(text) == shown
    assert "hunter2" not in redacted(text) and "hunt" not in redacted(text)
    assert "hunter2" not in (problem(text) or "")


@pytest.mark.parametrize("text", ["postgresql://app:@db/procctl", "password='' host=db",
                                  "postgresql://db?password="])
def test_an_empty_password_is_no_password(text: str) -> None:
    assert not has_password(text)


def test_a_url_password_ends_at_the_first_at_before_the_path_as_libpq_reads_it() -> None:
    # libpq: no '@' before the first '/', so there is no user part at all
    assert not has_password("postgresql://db/procctl@x")
    assert redacted("postgresql://db/procctl@x") == "postgresql://db/procctl@x"


def test_require_driver_passes_when_psycopg_imports() -> None:
    pytest.importorskip("psycopg")
    require_driver("service=procctl")


def test_require_driver_names_the_redacted_store_and_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails
    with pytest.raises(StoreError) as raised:
        require_driver("postgresql://app:hunter2@db/procctl")
    assert raised.value.message == ("the store is PostgreSQL (postgresql://app:***@db/procctl) "
                                    "and its driver is not installed")
    assert raised.value.hint == "pip install 'procctl[postgres]'"
