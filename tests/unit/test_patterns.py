"""Pattern validation and key prediction (docs/uploadcare-protocol.md, `POST /files/remote_copy/`)."""

from __future__ import annotations

import pytest

from uploadcare_s3_copy.patterns import PatternError, predict_key, validate_pattern

UUID = "03ccf9ab-f266-43fb-973d-a6529c55c2ae"


@pytest.mark.parametrize(
    ("original_filename", "expected_key"),
    [
        ("image.png", f"{UUID}/image.png"),
        ("image-sample.jpeg", f"{UUID}/imagesample.jpeg"),  # Uploadcare's own example
        ("image(1).jpeg", f"{UUID}/image1.jpeg"),  # Uploadcare's own example
        ("().png", f"{UUID}/noroot.png"),  # nothing left -> noroot
        ("my photo 2024.JPG", f"{UUID}/myphoto2024.JPG"),  # ${ext} keeps its case
        ("Résumé \u2013 final.pdf", f"{UUID}/Rsumfinal.pdf"),  # only [a-zA-Z0-9_] survive
        ("日本語.txt", f"{UUID}/noroot.txt"),
        ("100% real.gif", f"{UUID}/100real.gif"),
        ("archive.tar.gz", f"{UUID}/archivetar.gz"),  # the extension is the last suffix
        ("README", f"{UUID}/README"),  # no extension
        (".env", f"{UUID}/env"),  # a leading dot is not an extension
        ("snake_case_name.webp", f"{UUID}/snake_case_name.webp"),
        ("", f"{UUID}/noroot"),
    ],
)
def test_default_pattern_predicts_uploadcares_key(original_filename: str, expected_key: str) -> None:
    assert predict_key("", "${default}", UUID, original_filename) == expected_key


@pytest.mark.parametrize(
    ("prefix", "pattern", "expected"),
    [
        ("uploads/", "${uuid}/${filename}${ext}", f"uploads/{UUID}/photo.jpg"),
        ("uploads", "${uuid}${ext}", f"uploads{UUID}.jpg"),  # joined as they are: a folder prefix ends in /
        ("", "${auto_filename}", "photo.jpg"),
        ("", "backup/${uuid}/${filename}${effects}${ext}", f"backup/{UUID}/photo.jpg"),
        ("", "fixed-name", "fixed-name"),
    ],
)
def test_prefix_and_pattern_are_joined_as_they_are(prefix: str, pattern: str, expected: str) -> None:
    assert predict_key(prefix, pattern, UUID, "photo.jpg") == expected


def test_effects_expand_into_auto_filename() -> None:
    assert predict_key("", "${auto_filename}", UUID, "a.png", effects="-resize") == "a-resize.png"


@pytest.mark.parametrize("pattern", ["${default}", "${uuid}/${filename}${ext}", "a/${auto_filename}", "plain"])
def test_documented_placeholders_are_accepted(pattern: str) -> None:
    assert validate_pattern(pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("${name}", "unknown placeholder ${name}"),
        ("${uuid}/${size}${ext}", "unknown placeholder ${size}"),
        ("${UUID}", "unknown placeholder ${UUID}"),
        ("${uuid", "not closed"),
        ("", "empty"),
    ],
)
def test_other_patterns_are_refused_with_the_reason(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message.replace("$", r"\$").replace("{", r"\{")):
        validate_pattern(pattern)
