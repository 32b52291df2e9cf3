"""Training examples for distill: load an exported dataset, render it to prompt/completion strings, and check,
before any training step, that every example fits max_length and that its pruned thinking is trained on.

Why strings: R1-style chat templates keep only what follows `</think>` in an assistant turn, so a
conversational example would silently train on the answer alone. The prompt is rendered with the chat
template (generation prompt included, e.g. ending in `<think>\\n`); the completion is the raw text after it.
"""

from __future__ import annotations

import json
from pathlib import Path

from drp.distill.config import DistillError
from drp.layout import THINK_OPEN, completion_thinking


def load_split(name: str | None, split: str, config: str | None = None):
    """An export folder (load_from_disk), a JSONL file, a data folder, or a Hub dataset id → one split."""
    from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

    if not name:
        raise DistillError(
            "no dataset: set dataset_name in the recipe or pass --dataset_name DIR (a folder written by drp export)"
        )
    path = Path(name).expanduser()
    if _empty_on_disk(path, split):
        raise DistillError(f"dataset {name!r} (split {split!r}) is empty: nothing to train on")
    try:
        if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
            loaded = load_from_disk(str(path))
        elif path.is_file():
            loaded = load_dataset("json", data_files=str(path))
        else:
            loaded = load_dataset(str(path) if path.is_dir() else name, name=config)
    except Exception as error:  # a folder, a file, or the Hub: say which name failed and why
        where = "" if path.exists() else " (no such folder or file; tried the Hub)"
        raise DistillError(f"cannot load dataset {name!r}{where}: {type(error).__name__}: {error}") from None
    if isinstance(loaded, DatasetDict):
        if split not in loaded:
            raise DistillError(f"dataset {name!r} has no split {split!r} (it has: {', '.join(loaded)})")
        loaded = loaded[split]
    assert isinstance(loaded, Dataset)
    if len(loaded) == 0:
        raise DistillError(f"dataset {name!r} (split {split!r}) is empty: nothing to train on")
    missing = {"prompt", "completion"} - set(loaded.column_names)
    if missing:
        raise DistillError(
            f"dataset {name!r} lacks the column(s) {', '.join(sorted(missing))}: it must be a prompt–completion "
            f"dataset as written by drp export (it has: {', '.join(loaded.column_names)})"
        )
    return loaded


def has_split(name: str | None, split: str, config: str | None = None) -> bool:
    """Whether the dataset has this split (e.g. the validation split `drp export --val-fraction` writes)."""
    if not name:
        return False
    path = Path(name).expanduser()
    if path.is_file():
        return False  # one JSONL file is one split
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            return split in json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
        return not (path / "state.json").is_file() and any(path.glob(f"{split}*.jsonl"))
    from datasets import get_dataset_split_names

    try:
        return split in get_dataset_split_names(name, config)
    except Exception:  # offline or unknown: no evaluation rather than a crash
        return False


def _empty_on_disk(path: Path, split: str) -> bool:
    """datasets cannot even open an empty JSONL file or an empty saved split; spot those first."""
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            return not any(line.strip() for line in handle)
    for state in (path / split / "state.json", path / "state.json"):
        if state.is_file():
            return not json.loads(state.read_text(encoding="utf-8")).get("_data_files")
    return False


def _adds_bos(tokenizer) -> bool:
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def assistant_text(completion) -> str:
    """An exported completion's text: the string itself, or its assistant messages joined (conversational rows)."""
    if isinstance(completion, str):
        return completion
    return "".join(message["content"] for message in completion if message.get("role", "assistant") == "assistant")


def render_example(example: dict, tokenizer, strip_bos: bool, turn_end: str | None = None) -> dict:
    """One exported example → {"prompt", "completion", "thinking"} strings in the student's exact format
    (`turn_end`: what closes the assistant turn before the EOS, e.g. ChatML's <|im_end|>)."""
    messages = example["prompt"]
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if strip_bos and tokenizer.bos_token and prompt.startswith(tokenizer.bos_token):
        prompt = prompt[len(tokenizer.bos_token) :]  # the tokenizer adds it again when encoding
    completion = assistant_text(example["completion"])
    thinking = (example.get("thinking") or completion_thinking(completion)).strip()
    if prompt.rstrip().endswith(THINK_OPEN) and completion.lstrip().startswith(THINK_OPEN):
        # The template already opened the thinking (R1 style): continue right after it, as at inference.
        completion = completion.lstrip()[len(THINK_OPEN) :].lstrip("\n")
    if turn_end and not completion.endswith(turn_end):
        completion += turn_end
    eos = tokenizer.eos_token
    if eos and not completion.endswith(eos):
        completion += eos
    return {"prompt": prompt, "completion": completion, "thinking": thinking}


def render_dataset(dataset, tokenizer, turn_end: str | None = None):
    """Keep id + the three rendered strings + the token length of prompt+completion."""
    strip_bos = _adds_bos(tokenizer)
    ids = dataset["id"] if "id" in dataset.column_names else [str(i) for i in range(len(dataset))]
    rendered = dataset.map(
        lambda example: render_example(example, tokenizer, strip_bos, turn_end),
        remove_columns=[c for c in dataset.column_names if c not in ("prompt", "completion", "thinking")],
        desc="Rendering with the chat template",
    )
    rendered = rendered.add_column("id", ids)
    # TRL tokenizes prompt + completion as one string; measure exactly that.
    return rendered.map(
        lambda batch: {
            "n_tokens": [
                len(ids)
                for ids in tokenizer([p + c for p, c in zip(batch["prompt"], batch["completion"])])["input_ids"]
            ]
        },
        batched=True,
        desc="Measuring lengths",
    )


def enforce_max_length(dataset, max_length: int | None, drop: bool):
    """Error (or drop, when asked) on examples longer than max_length; TRL would silently truncate them."""
    if max_length is None:
        return dataset, 0
    lengths = dataset["n_tokens"]
    too_long = [i for i, n in enumerate(lengths) if n > max_length]
    if not too_long:
        return dataset, 0
    longest = max(too_long, key=lambda i: lengths[i])
    summary = (
        f"{len(too_long)} of {len(dataset)} examples are longer than max_length={max_length} tokens "
        f"(longest: {lengths[longest]} tokens, id {dataset[longest]['id']})"
    )
    if not drop:
        raise DistillError(f"{summary}; raise max_length or pass --drop_long_examples to leave them out")
    keep = sorted(set(range(len(dataset))) - set(too_long))
    if not keep:
        raise DistillError(f"{summary}: dropping them leaves nothing to train on")
    print(f"[drp distill] {summary}: left out")
    return dataset.select(keep), len(too_long)


def trained_text(row: dict, tokenizer) -> str:
    """The decoded tokens that carry a label (the ones the loss is computed on)."""
    ids = [token for token, label in zip(row["input_ids"], row["labels"]) if label != -100]
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def check_thinking_trained(prepared, tokenizer, rendered) -> None:
    """Every example's pruned thinking must sit inside its trained (non-masked) tokens."""
    if "thinking" in prepared.column_names and "labels" in prepared.column_names:
        missing = [
            row.get("id", "?")
            for row in prepared
            if row["thinking"] and row["thinking"] not in trained_text(row, tokenizer)
        ]
    else:  # packed: examples were concatenated into blocks, but each stays whole inside its block
        corpus = "\n".join(trained_text(row, tokenizer) for row in prepared)
        missing = [row["id"] for row in rendered if row["thinking"] and row["thinking"] not in corpus]
    if missing:
        raise DistillError(
            f"the pruned thinking is not in the trained tokens of {len(missing)} example(s) (e.g. {missing[:3]}): "
            "the chat template or the masking drops it, so training would teach the answer alone"
        )


def _clip(text: str, limit: int = 1500) -> str:
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}\n  … [{len(text) - limit} characters] …\n{text[-limit // 2 :]}"


def describe_example(row: dict, tokenizer) -> str:
    """One prepared example as the model sees it: the masked prompt, then the trained completion."""
    labels = row["labels"]
    first = next((i for i, label in enumerate(labels) if label != -100), len(labels))
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)  # noqa: E731
    return "\n".join(
        [
            f"──── rendered training example (id {row.get('id', '?')}, {len(row['input_ids'])} tokens) ────",
            f"── prompt: {first} tokens, masked out of the loss ──",
            _clip(decode(row["input_ids"][:first])),
            f"── completion: {len(labels) - first} tokens, trained on ──",
            _clip(decode(row["input_ids"][first:])),
            "────",
        ]
    )
