"""Generate the board's default announcement clips with Debian's espeak-ng and sox.

    apt-get install -y espeak-ng sox libsox-fmt-mp3
    python tools/make_voice_clips.py            # writes display/static/voice/

The board says "Mời công dân có số A023 đến quầy số 5" with the browser's Vietnamese voice
when it has one; otherwise it plays these clips one after another (see display/static/
board.js, `VoiceLine`). One clip per word or phrase, named by an ASCII key; `manifest.json`
maps each key to its file and its Vietnamese text, and the board reads only the manifest.

A centre can record its own voice: one short mp3 per key (same names, mono, trimmed
silence), dropped into the folder named by XEPHANG_VOICE_DIR; files found there are
served instead of these defaults, key by key.

The synthetic voice (espeak-ng's Southern Vietnamese, as the city speaks) is robotic but
understandable; the clips are kept small (mono 22 kHz, 32 kbit/s mp3: about 100 kB in all)
because they are committed as source assets.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "display" / "static" / "voice"
VOICE = "vi-vn-x-south"

# The two phrases around the number.
PHRASES = {
    "moi-cong-dan-co-so": "Mời công dân có số",
    "den-quay-so": "đến quầy số",
}
# Numbers are read as a Vietnamese speaker says them ("hai mươi ba"), so these words
# cover 0–9999: digits, and the words that join them.
NUMBER_WORDS = {
    "khong": "không",
    "mot": "một",
    "hai": "hai",
    "ba": "ba",
    "bon": "bốn",
    "nam": "năm",
    "sau": "sáu",
    "bay": "bảy",
    "tam": "tám",
    "chin": "chín",
    "muoi": "mười",  # 10 and the teens: "mười ba"
    "muoi-tens": "mươi",  # tens: "hai mươi"
    "mot-units": "mốt",  # 21, 31…: "hai mươi mốt"
    "tu-units": "tư",  # 24, 34…: "hai mươi tư"
    "lam": "lăm",  # 15, 25…: "mười lăm"
    "linh": "linh",  # 105: "một trăm linh năm"
    "tram": "trăm",
    "nghin": "nghìn",
}
# Ticket prefixes, by their Vietnamese letter names.
LETTERS = {
    "A": "a",
    "B": "bê",
    "C": "xê",
    "D": "dê",
    "E": "e",
    "F": "ép",
    "G": "giê",
    "H": "hát",
    "I": "i",
    "J": "gi",
    "K": "ca",
    "L": "e lờ",
    "M": "em mờ",
    "N": "en nờ",
    "O": "o",
    "P": "pê",
    "Q": "quy",
    "R": "e rờ",
    "S": "ét xì",
    "T": "tê",
    "U": "u",
    "V": "vê",
    "W": "vê kép",
    "X": "ích xì",
    "Y": "i dài",
    "Z": "dét",
}


def clips() -> dict[str, str]:
    """Every clip key and the Vietnamese text it says."""
    words = {**PHRASES, **NUMBER_WORDS}
    words.update({f"letter-{letter.lower()}": text for letter, text in LETTERS.items()})
    return words


def _run(*args: str) -> None:
    # Fixed tool names and arguments built here; no shell.
    subprocess.run(args, check=True, capture_output=True)  # noqa: S603


def _speak(text: str, target: Path, work: Path) -> None:
    raw = work / "raw.wav"
    _run("espeak-ng", "-v", VOICE, "-s", "140", "-w", str(raw), text)
    # Trim silence at both ends so concatenated clips flow like one sentence.
    trim = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
    encode = ["-r", "22050", "-c", "1", "-C", "32"]
    _run("sox", str(raw), *encode, str(target), *trim, "pad", "0", "0.06")


def _chime(target: Path, work: Path) -> None:
    # Two soft bell-like notes (G5 then C5) with a long decay: the "ding-dong" of a hall.
    high, low = work / "high.wav", work / "low.wav"
    for path, seconds, freq in ((high, 0.55, 784), (low, 0.9, 523)):
        _run(
            "sox", "-n", "-r", "22050", "-c", "1", str(path),
            "synth", str(seconds), "sine", str(freq), "sine", str(freq * 2),
            "remix", "-", "vol", "0.5", "fade", "q", "0.01", str(seconds), str(seconds * 0.8),
        )  # fmt: skip
    _run("sox", str(high), str(low), "-C", "48", str(target))


def generate(out: Path) -> dict:
    """Write every clip, the chime and manifest.json into `out`; returns the manifest."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install -y espeak-ng sox libsox-fmt-mp3")
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"format": "mp3", "chime": "chime.mp3", "clips": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _chime(out / "chime.mp3", work)
        for key, text in clips().items():
            _speak(text, out / f"{key}.mp3", work)
            manifest["clips"][key] = {"file": f"{key}.mp3", "text": text}
    manifest["letters"] = {letter: f"letter-{letter.lower()}" for letter in LETTERS}
    (out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write")
    args = parser.parse_args()
    manifest = generate(args.out)
    size = sum(p.stat().st_size for p in args.out.glob("*.mp3"))
    print(f"{len(manifest['clips'])} clips + chime, {size / 1024:.0f} kB in {args.out}")


if __name__ == "__main__":
    main()
