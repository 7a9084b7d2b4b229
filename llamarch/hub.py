"""Hugging Face model references, named the way Ollama and llama.cpp name them, and the
choice of files in a repo.

`hf.co/OWNER/REPO[:QUANT]`, `hf:OWNER/REPO[:QUANT]` and a bare `OWNER/REPO[:QUANT]` (catalog ids
have no slash) name a repo and, optionally, a quantization. Nothing here touches the network:
`hub_fetch` lists and downloads, `hub_pull` writes the catalog entry.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import LlamarchError, PullError


def hub_offline() -> bool:
    """Whether huggingface-hub is told to stay offline (HF_HUB_OFFLINE)."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


DEFAULT_QUANT = "Q4_K_M"
_PREFIXES = ("hf.co/", "huggingface.co/", "hf:")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?"
_REPO_RE = re.compile(rf"{_NAME}/{_NAME}")
_TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SPLIT_RE = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
# A quantization label in a file name: Q4_K_M, Q8_0, IQ4_XS, Q4_0_4_4, TQ1_0, F16, BF16, MXFP4...
_QUANT_RE = re.compile(r"(?<![A-Z0-9])(I?Q\d(?:_[A-Z0-9]+)*|TQ\d_\d|BF16|FP16|F16|F32|MXFP4(?:_MOE)?)(?=$|[-.])")


@dataclass(frozen=True)
class HubRef:
    """A repo on the hub and, optionally, the quantization asked for."""

    repo: str
    quant: str | None = None
    explicit: bool = True  # written with hf.co/ or hf: (a bare OWNER/REPO may also be a path)

    def __str__(self) -> str:
        return f"hf.co/{self.repo}" + (f":{self.quant}" if self.quant else "")

    @property
    def bare(self) -> str:
        """The reference without its quantization."""
        return f"hf.co/{self.repo}"


@dataclass(frozen=True)
class HubFile:
    """A file in a hub repo: its path, size and hash (sha256 of the LFS object, else the git blob id)."""

    file: str
    size: int
    sha256: str = ""
    blob_id: str = ""


def parse_ref(spec: str) -> HubRef | None:
    """The hub reference `spec` spells, or None if it does not look like one.

    A spec that starts like a hub reference (hf.co/, hf:) but is malformed is an error.
    """
    s = spec.strip()
    explicit = False
    lowered = s.lower()
    for scheme in ("https://", "http://"):
        if lowered.startswith(scheme):
            s, lowered = s[len(scheme) :], lowered[len(scheme) :]
    for prefix in _PREFIXES:
        if lowered.startswith(prefix):
            s, explicit = s[len(prefix) :], True
            break
    repo, _, tag = s.partition(":")
    valid = bool(_REPO_RE.fullmatch(repo)) and ".." not in repo and "--" not in repo
    valid = valid and (not tag or bool(_TAG_RE.fullmatch(tag)))
    if not valid or (not explicit and repo.lower().endswith(".gguf")):
        if explicit:
            raise LlamarchError(
                f"{spec!r} is not a Hugging Face model reference: write hf.co/OWNER/REPO or hf.co/OWNER/REPO:QUANT"
            )
        return None
    quant = tag.upper() if tag and tag.lower() != "latest" else None
    return HubRef(repo, quant, explicit)


# --- GGUF files and their quantizations ----------------------------------------------


def _stem(name: str) -> str:
    """The file name without folders, split suffix and .gguf, upper-cased."""
    base = name.rsplit("/", 1)[-1]
    m = _SPLIT_RE.match(base)
    base = m.group("stem") if m else re.sub(r"\.gguf$", "", base, flags=re.IGNORECASE)
    return base.upper()


def quant_label(name: str) -> str | None:
    """The quantization a GGUF file name carries (the last label in it), e.g. Q4_K_M."""
    found = _QUANT_RE.findall(_stem(name))
    return found[-1] if found else None


def is_4bit(label: str | None) -> bool:
    return bool(label) and (re.match(r"I?Q4(_|$)", label) is not None or label.startswith("MXFP4"))


@dataclass(frozen=True)
class GGUFChoice:
    """One model in a repo: a GGUF file, or all the parts of a split one (first part first)."""

    files: tuple[HubFile, ...]

    @property
    def first(self) -> HubFile:
        return self.files[0]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def quant(self) -> str | None:
        return quant_label(self.first.file)

    @property
    def label(self) -> str:
        return self.first.file + (f" (+{len(self.files) - 1} parts)" if len(self.files) > 1 else "")

    def matches(self, tag: str) -> bool:
        """True when the file name carries `tag` as a whole label (Q4_K does not match Q4_K_M)."""
        return re.search(rf"(?<![A-Z0-9]){re.escape(tag.upper())}(?=$|[-.])", _stem(self.first.file)) is not None


def gguf_choices(files: list[HubFile], ref: HubRef) -> list[GGUFChoice]:
    """The repo's GGUF models: split parts grouped, vision projectors (mmproj) left out."""
    singles: list[GGUFChoice] = []
    splits: dict[tuple[str, int], dict[int, HubFile]] = {}
    for f in files:
        base = f.file.rsplit("/", 1)[-1]
        if not base.lower().endswith(".gguf") or base.lower().startswith("mmproj"):
            continue
        m = _SPLIT_RE.match(f.file)
        if m:
            splits.setdefault((m.group("stem"), int(m.group("count"))), {})[int(m.group("part"))] = f
        else:
            singles.append(GGUFChoice((f,)))
    for (stem, count), parts in splits.items():
        missing = [n for n in range(1, count + 1) if n not in parts]
        if missing:
            raise PullError(
                f"the split GGUF {stem}-*-of-{count:05d}.gguf in {ref.bare} lacks part {missing[0]} of {count}: "
                "pick another file with --file NAME"
            )
        singles.append(GGUFChoice(tuple(parts[n] for n in range(1, count + 1))))
    return sorted(singles, key=lambda c: c.first.file)


def _quants(choices: list[GGUFChoice]) -> str:
    return ", ".join(sorted({c.quant or c.first.file for c in choices}))


def choose_gguf(files: list[HubFile], ref: HubRef, file: str | None = None) -> GGUFChoice:
    """The GGUF to pull: `file` exactly, else the one carrying the quant asked for, else
    Q4_K_M, else the smallest 4-bit one, else the only one. Ambiguity is an error."""
    choices = gguf_choices(files, ref)
    if not choices:
        mlx = any(f.file.endswith(".safetensors") for f in files)
        hint = ": it has safetensors weights; for MLX add --backend mlx" if mlx else ""
        raise PullError(f"{ref.bare} has no GGUF file{hint}")
    if file is not None:
        picked = [c for c in choices if any(f.file == file or f.file.rsplit("/", 1)[-1] == file for f in c.files)]
        if not picked:
            raise PullError(
                f"{ref.bare} has no GGUF file {file!r}: its GGUF files are {', '.join(c.label for c in choices)}"
            )
        return picked[0]
    wanted = ref.quant or DEFAULT_QUANT
    picked = [c for c in choices if c.matches(wanted)]
    if not picked and ref.quant:
        raise PullError(
            f"{ref.bare} has no {ref.quant} GGUF: it has {_quants(choices)} (choose one as {ref.bare}:QUANT)"
        )
    if not picked:
        four = [c for c in choices if is_4bit(c.quant)]
        if four:
            picked = [min(four, key=lambda c: (c.size, c.first.file))]
        elif len(choices) == 1:
            picked = choices
        else:
            raise PullError(
                f"{ref.bare} has no {DEFAULT_QUANT} or other 4-bit GGUF: choose one of {_quants(choices)} "
                f"as {ref.bare}:QUANT"
            )
    if len(picked) > 1:
        raise PullError(
            f"{len(picked)} GGUF files in {ref.bare} match {wanted}: {', '.join(c.label for c in picked)}: "
            "choose one with --file NAME"
        )
    return picked[0]


# --- catalog ids ---------------------------------------------------------------------------


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-.")
    return re.sub(r"-{2,}", "-", s)


def base_id(ref: HubRef, choice: GGUFChoice | None) -> str:
    """The id a pulled model gets: the repo's name with its quantization (GGUF) or `-mlx`."""
    name = slug(re.sub(r"[-_.]gguf$", "", ref.repo.split("/")[1], flags=re.IGNORECASE))
    if choice is None:
        return name if "mlx" in name else f"{name}-mlx"
    quant = choice.quant
    if quant is None:
        return slug(_stem(choice.first.file))
    tail = slug(quant)
    return name if name.endswith(tail) else f"{name}-{tail}"


def unique_id(wanted: str, owner: str, taken: dict[str, str], source: str) -> str:
    """`wanted`, unless another model holds it: then OWNER-wanted, then a number.

    `taken` maps each catalog id to the source it was pulled from ("" for hand-written entries).
    """
    candidates = [wanted, f"{slug(owner)}-{wanted}"] + [f"{slug(owner)}-{wanted}-{n}" for n in range(2, 100)]
    for candidate in candidates:
        if candidate not in taken or taken[candidate] == source:
            return candidate
    raise PullError(f"no free catalog id for {source}: remove some entries in the user catalog")
