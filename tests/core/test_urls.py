"""URL credentials are removed from everything benchkit records or prints."""

from __future__ import annotations

from benchkit.core.urls import scrub_credentials, without_credentials


def test_credentials_are_removed_from_urls_and_texts() -> None:
    assert without_credentials("http://user:pw@host:8080/v1") == "http://host:8080/v1"
    assert without_credentials("https://token@example.com") == "https://example.com"
    assert without_credentials("openai at http://a:b@127.0.0.1:9/v1: cannot connect "
                               "(see http://c:d@x/y)") == \
        "openai at http://127.0.0.1:9/v1: cannot connect (see http://x/y)"
    assert without_credentials("mail me at a@b.c, http://host/p@q") == \
        "mail me at a@b.c, http://host/p@q"          # an @ in a path is no userinfo


def test_a_document_is_scrubbed_everywhere() -> None:
    doc = {"engine": {"url": "http://u:secret@h/v1"}, "list": ["x", "http://u:secret@h"],
           "n": 3, "none": None}
    clean = scrub_credentials(doc)
    assert "secret" not in repr(clean) and clean["n"] == 3 and clean["none"] is None
    assert doc["engine"]["url"] == "http://u:secret@h/v1"      # a copy: the run still needs it
