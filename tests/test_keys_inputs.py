"""Identifiers from input paths are safe and stable; INPUT arguments resolve as documented."""

import os

import pytest

from gaia.pipeline.inputs import InputError, resolve_inputs, source_of
from gaia.schemas.keys import check_key, sanitize, video_id_for


def test_video_ids_are_safe_stable_and_unique():
    a = video_id_for("/data/raw/speaker one/../clip (1).mp4")
    assert a == video_id_for("/data/raw/speaker one/../clip (1).mp4")
    assert check_key(a) == a
    assert "/" not in a and ".." not in a and " " not in a
    assert video_id_for("/a/clip.mp4") != video_id_for("/b/clip.mp4")
    # Non-ASCII letters become '_' (then trimmed): ids stay plain ASCII file names.
    assert video_id_for("s3://bucket/x/Ünïcode name.mkv").startswith("n_code_name-")


def test_sanitize_and_check_key_reject_traversal():
    assert sanitize("../../etc/passwd") == "etc_passwd"
    assert sanitize("...") == "x"
    with pytest.raises(ValueError):
        check_key("../evil")
    with pytest.raises(ValueError):
        check_key("a.b")


@pytest.fixture()
def tree(tmp_path):
    for rel in ["spk1/a.mp4", "spk1/deep/b.MOV", "spk2/c.mkv", "spk2/notes.txt", "d.avi"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path


def names(videos):
    return sorted(os.path.basename(v.uri) for v in videos)


def test_folder_is_searched_recursively_by_extension(tree):
    assert names(resolve_inputs([str(tree)])) == ["a.mp4", "b.MOV", "c.mkv", "d.avi"]


def test_glob_and_file_uri(tree):
    assert names(resolve_inputs([str(tree / "spk*" / "*.m*")])) == ["a.mp4", "c.mkv"]
    assert names(resolve_inputs([f"file://{tree}/spk2"])) == ["c.mkv"]


def test_list_file_resolves_relative_lines_and_deduplicates(tree):
    listing = tree / "inputs.txt"
    listing.write_text("# speakers\nspk1\nspk1/a.mp4  # twice\n\nd.avi\n")
    videos = resolve_inputs([str(listing)])
    assert names(videos) == ["a.mp4", "b.MOV", "d.avi"]
    assert {v.source for v in videos} == {"spk1", "deep", source_of(str(tree / "d.avi"))}


def test_missing_input_is_a_clear_error(tree):
    with pytest.raises(InputError, match="does not exist"):
        resolve_inputs([str(tree / "nope.mp4")])
    with pytest.raises(InputError, match="names no video"):
        resolve_inputs([str(tree / "*.wav")])
    listing = tree / "bad.txt"
    listing.write_text("spk1\nmissing/\n")
    with pytest.raises(InputError, match="line 2"):
        resolve_inputs([str(listing)])
