"""Hub references and the choice of a GGUF in a repo listing (no network, no model)."""

from __future__ import annotations

import sys

import pytest

from llamarch.errors import LlamarchError, PullError
from llamarch.hub import HubFile, HubRef, base_id, choose_gguf, parse_ref, quant_label, unique_id
from llamarch.hub_pull import toml_string

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REF = HubRef("owner/Model-GGUF")


def files(*names: str, sizes: dict[str, int] | None = None) -> list[HubFile]:
    return [HubFile(n, (sizes or {}).get(n, 100), "0" * 64) for n in names]


@pytest.mark.parametrize(
    "spec, repo, quant, explicit",
    [
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "bartowski/Llama-3.2-1B-Instruct-GGUF", "Q4_K_M", True),
        ("hf:owner/repo", "owner/repo", None, True),
        ("https://huggingface.co/owner/repo", "owner/repo", None, True),
        ("owner/repo:q8_0", "owner/repo", "Q8_0", False),
        ("hf.co/owner/repo:latest", "owner/repo", None, True),
    ],
)
def test_references(spec, repo, quant, explicit):
    assert parse_ref(spec) == HubRef(repo, quant, explicit)


@pytest.mark.parametrize("spec", ["smollm2-135m", "models/x.gguf", "./foo", "a/b/c", "/abs/path"])
def test_not_references(spec):
    assert parse_ref(spec) is None


def test_a_malformed_hub_reference_is_an_error():
    with pytest.raises(LlamarchError, match="not a Hugging Face model reference"):
        parse_ref("hf.co/only-one-part")


@pytest.mark.parametrize(
    "name, label",
    [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "Q4_K_M"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("X-Q5_K_S-00001-of-00003.gguf", "Q5_K_S"),
        ("Model-UD-Q4_K_XL.gguf", "Q4_K_XL"),
        ("model-f16.gguf", "F16"),
        ("Qwen2-7B.gguf", None),
        ("m-IQ4_XS.gguf", "IQ4_XS"),
        ("sub/a.BF16.gguf", "BF16"),
    ],
)
def test_quant_labels(name, label):
    assert quant_label(name) == label


def test_default_is_q4_k_m_then_the_smallest_4bit_then_the_only_one():
    assert choose_gguf(files("m.Q8_0.gguf", "m.Q4_K_M.gguf", "m.Q4_0.gguf"), REF).first.file == "m.Q4_K_M.gguf"
    sizes = {"m.Q4_0.gguf": 300, "m.IQ4_XS.gguf": 200, "m.Q2_K.gguf": 100}
    assert choose_gguf(files(*sizes, sizes=sizes), REF).first.file == "m.IQ4_XS.gguf"
    assert choose_gguf(files("only.gguf", "README.md"), REF).first.file == "only.gguf"
    with pytest.raises(PullError, match="no Q4_K_M or other 4-bit GGUF: choose one of F16, Q8_0"):
        choose_gguf(files("m.Q8_0.gguf", "m.F16.gguf"), REF)


def test_a_quant_matches_whole_labels_only():
    listing = files("m.Q4_K_M.gguf", "m.Q4_K_S.gguf")
    assert choose_gguf(listing, HubRef(REF.repo, "Q4_K_S")).first.file == "m.Q4_K_S.gguf"
    with pytest.raises(PullError, match="has no Q4_K GGUF: it has Q4_K_M, Q4_K_S"):
        choose_gguf(listing, HubRef(REF.repo, "Q4_K"))


def test_split_parts_are_one_choice_and_mmproj_is_left_out():
    listing = files("mmproj-model-f16.gguf", *(f"big/m-Q4_K_M-0000{i}-of-00003.gguf" for i in (3, 1, 2)))
    choice = choose_gguf(listing, REF)
    assert [f.file for f in choice.files] == [f"big/m-Q4_K_M-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert choice.size == 300
    with pytest.raises(PullError, match="lacks part 2 of 3"):
        choose_gguf(files("m-Q4_K_M-00001-of-00003.gguf", "m-Q4_K_M-00003-of-00003.gguf"), REF)


def test_file_picks_exactly_and_a_part_picks_its_split():
    listing = files("m.Q4_K_M.gguf", "m-Q8_0-00001-of-00002.gguf", "m-Q8_0-00002-of-00002.gguf")
    assert len(choose_gguf(listing, REF, file="m-Q8_0-00002-of-00002.gguf").files) == 2
    with pytest.raises(PullError, match="has no GGUF file 'x.gguf': its GGUF files are m-Q8_0-00001-of-00002.gguf"):
        choose_gguf(listing, REF, file="x.gguf")


def test_ids_and_collisions():
    choice = choose_gguf(files("Llama-3.2-1B-Instruct-Q4_K_M.gguf"), REF)
    assert base_id(HubRef("bartowski/Llama-3.2-1B-Instruct-GGUF"), choice) == "llama-3.2-1b-instruct-q4_k_m"
    assert base_id(HubRef("mlx-community/Qwen2.5-0.5B-Instruct-4bit"), None) == "qwen2.5-0.5b-instruct-4bit-mlx"
    taken = {"x-q4_k_m": "other/x/file.gguf", "smollm2-135m": ""}
    assert unique_id("x-q4_k_m", "Owner", taken, "owner/x/file.gguf") == "owner-x-q4_k_m"
    assert unique_id("x-q4_k_m", "other", taken, "other/x/file.gguf") == "x-q4_k_m"  # pulled before: same id


def test_toml_strings_survive_any_template():
    template = "a \"quoted\" \\ back\nslash\t{{ 'x' }}\x00\x1f\x7f é 😀 \"\"\" '''"
    assert tomllib.loads(f"t = {toml_string(template)}")["t"] == template
