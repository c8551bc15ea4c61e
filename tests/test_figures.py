"""The committed figures (docs/figures/*.png) are complete, valid PNGs, and fresh.

`scripts/make_figures.py` runs every notebook and writes each `save_figure(fig, "name")` as
docs/figures/name.png, with docs/figures/figures.json recording the sha256 of each notebook
source it ran and of each image it wrote. This file checks, from the files themselves (no
notebook is run; standard library only, so it runs in every tier):

* every name saved in a notebook source has its PNG, and every PNG is saved by some source
  (no orphan images);
* each PNG is a well-formed image: signature, chunk CRCs, IHDR first and IEND last, and IDAT
  data that inflates to exactly the bytes its width, height and pixel format call for;
* freshness: each source's sha256 equals the one recorded when the figures were made (a
  notebook edited without regenerating fails), and so does each image's (an image replaced
  by hand fails). Hashes are of the bytes, with CRLF read as LF for the sources, so the
  check gives the same answer on every machine and checkout.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from conftest import REPO_ROOT

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
FIGURES_DIR = REPO_ROOT / "docs" / "figures"
MANIFEST = "figures.json"
REGENERATE = "python scripts/make_figures.py"
# Written independently of scripts/make_figures.py: what a literal save_figure call looks like.
CALL = re.compile(r"""save_figure\(\s*\w+\s*,\s*"([^"]+)"\s*\)""")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def saved_names(source: Path) -> tuple[list[str], int]:
    """(the literal names a source saves, how many save_figure( calls it makes in all)."""
    text = source.read_text(encoding="utf-8")
    return CALL.findall(text), text.count("save_figure(")


def png_problem(path: Path) -> str | None:
    """Why `path` is not a well-formed PNG image, or None when it is."""
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        return "no PNG signature"
    chunks, at = [], len(PNG_SIGNATURE)
    while at < len(data):
        if at + 12 > len(data):
            return f"truncated chunk header at byte {at}"
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if len(body) != length or at + 12 + length > len(data):
            return f"chunk {kind!r} at byte {at} runs past the end"
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        if zlib.crc32(kind + body) != crc:
            return f"chunk {kind!r} at byte {at}: CRC mismatch"
        chunks.append((kind, body))
        at += 12 + length
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        return "IHDR must come first and IEND last"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if width == 0 or height == 0 or colour not in CHANNELS or interlace != 0:
        return f"unexpected header: {width}x{height}, colour type {colour}, interlace {interlace}"
    try:
        pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    except zlib.error as exc:
        return f"image data does not inflate: {exc}"
    row = 1 + (width * CHANNELS[colour] * depth + 7) // 8  # a filter byte, then the samples
    if len(pixels) != height * row:
        return f"image data is {len(pixels)} bytes, {width}x{height} needs {height * row}"
    return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def figure_problems(repo: Path) -> list[str]:
    """Everything wrong with repo/docs/figures against repo/notebooks; empty when all is well."""
    figures_dir = repo / "docs" / "figures"
    sources = sorted((repo / "notebooks").glob("[0-9][0-9]_*.py"))
    problems = []
    expected: dict[str, str] = {}  # figure name -> the source that saves it
    saving: dict[str, Path] = {}  # repo-relative source path -> source, for those that save figures
    for source in sources:
        names, calls = saved_names(source)
        if calls != len(names):
            problems.append(f"{source.name}: {calls} save_figure( calls, {len(names)} with a literal name")
        for name in names:
            if name in expected:
                problems.append(f"figure {name!r} saved by both {expected[name]} and {source.name}")
            expected[name] = source.name
        if names:
            saving[source.relative_to(repo).as_posix()] = source

    committed = {path.stem for path in figures_dir.glob("*.png")}
    problems += [f"{expected[name]} saves {name!r} but docs/figures/{name}.png is not committed"
                 for name in sorted(set(expected) - committed)]  # fmt: skip
    problems += [f"docs/figures/{name}.png is saved by no notebook (orphan image)"
                 for name in sorted(committed - set(expected))]  # fmt: skip
    for name in sorted(committed):
        problem = png_problem(figures_dir / f"{name}.png")
        if problem:
            problems.append(f"docs/figures/{name}.png is not a valid PNG: {problem}")

    manifest_path = figures_dir / MANIFEST
    if not manifest_path.is_file():
        return [*problems, f"docs/figures/{MANIFEST} is missing"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    recorded_sources = manifest.get("sources", {})
    for relative in sorted(set(saving) | set(recorded_sources)):
        if relative not in recorded_sources:
            problems.append(f"{relative} saves figures but the figures were not made from it")
        elif relative not in saving:
            problems.append(f"{MANIFEST} records {relative}, which saves no figures now")
        else:
            source = saving[relative]
            text_hash = sha256(source.read_bytes().replace(b"\r\n", b"\n"))
            if recorded_sources[relative].get("sha256") != text_hash:
                problems.append(f"{relative} changed since its figures were made (stale figures)")
            names, _ = saved_names(source)
            if recorded_sources[relative].get("figures") != names:
                problems.append(f"{MANIFEST} lists {recorded_sources[relative].get('figures')} "
                                f"for {relative}, which saves {names}")  # fmt: skip
    recorded_images = manifest.get("images", {})
    if set(recorded_images) != {f"{name}.png" for name in committed}:
        problems.append(f"{MANIFEST} records images {sorted(recorded_images)}, "
                        f"docs/figures holds {sorted(f'{name}.png' for name in committed)}")  # fmt: skip
    for image, digest in sorted(recorded_images.items()):
        path = figures_dir / image
        if path.is_file() and sha256(path.read_bytes()) != digest:
            problems.append(f"docs/figures/{image} is not the image the notebooks made")
    return problems


def test_committed_figures_are_complete_valid_and_fresh():
    problems = figure_problems(REPO_ROOT)
    assert not problems, f"run `{REGENERATE}`:\n" + "\n".join(problems)


def test_there_are_figures_to_check():
    """The notebooks do save figures: the checks above are not vacuous."""
    names = [name for source in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py") for name in saved_names(source)[0]]
    assert len(names) >= 4, names


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """The notebook sources and the committed figures, copied: the checks' own sandbox."""
    skip = shutil.ignore_patterns("*.ipynb", "__pycache__")
    shutil.copytree(NOTEBOOKS_DIR, tmp_path / "notebooks", ignore=skip)
    shutil.copytree(FIGURES_DIR, tmp_path / "docs" / "figures")
    assert figure_problems(tmp_path) == []
    return tmp_path


def _one_figure(repo: Path) -> tuple[Path, str]:
    """(a source that saves figures, one of its names)."""
    for source in sorted((repo / "notebooks").glob("[0-9][0-9]_*.py")):
        names, _ = saved_names(source)
        if names:
            return source, names[0]
    raise AssertionError("no notebook saves a figure")


def test_the_check_sees_an_edited_notebook(repo_copy):
    source, _ = _one_figure(repo_copy)
    with source.open("a", encoding="utf-8") as f:
        f.write("\n# %%\nprint('edited, figures not regenerated')\n")
    assert figure_problems(repo_copy) == [
        f"notebooks/{source.name} changed since its figures were made (stale figures)"
    ]


def test_line_endings_do_not_make_a_notebook_stale(repo_copy):
    source, _ = _one_figure(repo_copy)
    source.write_bytes(source.read_bytes().replace(b"\n", b"\r\n"))
    assert figure_problems(repo_copy) == []


def test_the_check_sees_a_missing_and_an_orphan_image(repo_copy):
    source, name = _one_figure(repo_copy)
    figures = repo_copy / "docs" / "figures"
    (figures / f"{name}.png").rename(figures / "renamed_by_hand.png")
    problems = figure_problems(repo_copy)
    assert f"{source.name} saves {name!r} but docs/figures/{name}.png is not committed" in problems
    assert "docs/figures/renamed_by_hand.png is saved by no notebook (orphan image)" in problems


def test_the_check_sees_a_new_unregenerated_figure(repo_copy):
    source, _ = _one_figure(repo_copy)
    with source.open("a", encoding="utf-8") as f:
        f.write('\n# %%\nsave_figure(fig, "brand_new")\n')
    problems = figure_problems(repo_copy)
    assert f"{source.name} saves 'brand_new' but docs/figures/brand_new.png is not committed" in problems


def test_the_check_sees_a_name_it_cannot_read(repo_copy):
    source, _ = _one_figure(repo_copy)
    with source.open("a", encoding="utf-8") as f:
        f.write("\n# %%\nsave_figure(fig, name_in_a_variable)\n")
    assert any("with a literal name" in problem for problem in figure_problems(repo_copy))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[:-20], "runs past the end"),  # truncated
        (lambda data: b"GIF89a" + data[6:], "no PNG signature"),
        (lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:], "CRC mismatch"),
    ],
    ids=["truncated", "not-a-png", "flipped-bit"],
)
def test_the_check_sees_a_broken_image(repo_copy, damage, message):
    _, name = _one_figure(repo_copy)
    path = repo_copy / "docs" / "figures" / f"{name}.png"
    path.write_bytes(damage(path.read_bytes()))
    problems = figure_problems(repo_copy)
    assert any(f"{name}.png is not a valid PNG" in p and message in p for p in problems), problems
    assert f"docs/figures/{name}.png is not the image the notebooks made" in problems


def test_png_check_accepts_an_image_it_did_not_make(tmp_path):
    """The PNG reader is right about a PNG written by hand, byte by byte (2x1 RGB)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + bytes([255, 0, 0, 0, 255, 0]))
    path = tmp_path / "tiny.png"
    path.write_bytes(PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    assert png_problem(path) is None
    short = zlib.compress(b"\x00")  # a filter byte and no pixels
    path.write_bytes(PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", short) + chunk(b"IEND", b""))
    assert "needs 7" in (png_problem(path) or "")
