"""Fold a LoRA adapter into its base model: a standalone checkpoint that loads without PEFT.

python -m drp.distill.merge ADAPTER_DIR [OUT_DIR]     (OUT_DIR defaults to ADAPTER_DIR/merged)
"""

from __future__ import annotations

import sys
from pathlib import Path

MERGED = "merged"


def merge_adapter(adapter_dir: Path | str, out_dir: Path | str | None = None) -> Path:
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    adapter_dir = Path(adapter_dir)
    out_dir = Path(out_dir) if out_dir else adapter_dir / MERGED
    if not (adapter_dir / "adapter_config.json").exists():
        raise FileNotFoundError(f"{adapter_dir} holds no LoRA adapter (adapter_config.json)")
    # dtype "auto": merge in the base checkpoint's own precision (bf16 for R1-Distill, fp32 for SmolLM2).
    model = AutoPeftModelForCausalLM.from_pretrained(adapter_dir, dtype="auto")
    merged = model.merge_and_unload()
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    print(merge_adapter(*sys.argv[1:]))
