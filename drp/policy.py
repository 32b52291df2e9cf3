"""Pruning policies: `prompts/<policy>/policy.yaml` plus one prompt file per agent.

A policy may `inherits:` another and override single settings or single prompt files. Policies are looked
up in `--prompts-dir` folders, then `DRP_PROMPTS_PATH` (os.pathsep-separated), then the built-in ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from drp.agent_kinds import AGENT_KINDS, OPTIONAL_ROLES, kind_problem, uses_llm
from drp.endpoint import StructuredMethod
from drp.errors import UserError
from drp.paths import builtin_prompts_dir
from drp.safe_files import UnsafeFile, inside, read_capped, read_capped_text
from drp.text import LONGEST_UNIT

# Policy folders are shared between people: their files are read only when regular, inside the policy's own
# folders, and small (the built-in ones are under 3 kB; parsing a template costs ~10 µs a byte).
MAX_POLICY_FILE_BYTES = 128 * 1024


class PolicyError(UserError):
    """A policy that cannot be used (unknown name, bad file, unknown agent kind): the message says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentSettings(_Strict):
    kind: str = Field(description="how this agent works: one of its role's kinds in drp/agent_kinds.py")
    prompt: str | None = Field(default=None, description="prompt file in the policy folder")
    model: str | None = Field(default=None, description="overrides --teacher-model for this role")
    temperature: float = Field(default=0.0, ge=0)
    max_tokens: int = Field(default=2048, ge=1)
    structured_output: StructuredMethod | None = None


class UnitSettings(_Strict):
    max_chars: int = Field(default=400, ge=1)
    longest: int = Field(
        default=LONGEST_UNIT,
        ge=1,
        description="characters: a longer sentence (a display-math "
        "block) is cut at its line breaks, a longer line at spaces: units fit a small context",
    )
    max_units: int = Field(default=2000, ge=1)
    per_call: int = Field(default=60, ge=1, description="units shown to the segmenter in one call")
    one_step_each_below: int = Field(
        default=0,
        ge=0,
        description="a thinking of fewer units is segmented one step per unit without asking the "
        "teacher (0: always ask)",
    )


class ContextSettings(_Strict):
    """The teacher's context window: every call's prompt plus its max_tokens stays under `max_tokens`; long
    traces are cut into windows that fit (drp/agents/windows.py)."""

    max_tokens: int | None = Field(default=None, ge=1024, description="the teacher's context length; none: no limit")
    margin: int = Field(
        default=256,
        ge=0,
        description="tokens kept free for the chat template and for the teacher's "
        "tokenizer counting differently from the run's",
    )


class VerifySettings(_Strict):
    """Which checks gate acceptance. Every check is computed and recorded either way (a measurement), so a
    policy that accepts without one (the paper's) still shows how its outputs fare."""

    check_gold: bool = True
    same_answer: bool = True
    no_new_numbers: bool = True
    shorter: bool = True
    derivation: bool = Field(default=True, description="the pruned reasoning still computes its answer")
    actions_agree: bool = Field(
        default=True, description="echo policies: KEEP steps are in the pruned text, DELETE steps are not"
    )
    judge: bool = Field(default=False, description="also ask the LLM judge (agent `judge`) once the checks pass")


class EchoSettings(_Strict):
    """For segmenters that re-type the trace: how much of it the echo must reproduce, word for word."""

    min_coverage: float = Field(default=0.9, ge=0, le=1, description="share of the original's words the echo holds")
    min_step_faithfulness: float = Field(
        default=0.8, ge=0, le=1, description="share of each step's words from the original"
    )
    gate: bool = Field(default=True, description="reject (or retry) an echo below these shares; false: record only")


class RulesSettings(_Strict):
    drop_restatement: bool = True
    drop_hesitation: bool = True
    drop_checks_after_answer: bool = True
    drop_alternatives_after_answer: bool = True
    strip_filler: bool = True


class Policy(_Strict):
    name: str
    description: str = ""
    inherits: str | None = None
    agents: dict[str, AgentSettings]
    taxonomy: list[str] = Field(default_factory=list)
    max_retries: int = Field(default=2, ge=0)
    parse_retries: int = Field(default=2, ge=0)
    retry_temperature: float = Field(default=0.7, ge=0, description="temperature of every retry: a retry must differ")
    protect_derivation: bool = Field(
        default=True, description="the pruner may not delete steps that compute the answer"
    )
    retry_plan_rules: bool = Field(
        default=False,
        description="ask the pruner again (up to parse_retries) when its plan breaks a rule the schema "
        "cannot express; false: leave the breaking actions out at once (a retry costs a whole call, and small "
        "teachers repeat the same slip)",
    )
    fallback: Literal["reject", "rules"] = "reject"
    answer_section: Literal["keep", "short", "answer_line", "from_path"] = Field(
        default="keep",
        description="the pruned answer section: the original's (keep), the boxed answer alone (short), "
        '"The answer is N." (answer_line), or the closing answer sentence of the pruner\'s own path, moved out of '
        "the thinking so the answer is written once (from_path)",
    )
    replies: Literal["json", "text"] = Field(
        default="json",
        description="json: every reply is held to a schema; text: the paper's free-text replies, "
        "read back by drp/paper_text.py (echo segmenter and paper pruner only)",
    )
    units: UnitSettings = Field(default_factory=UnitSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    echo: EchoSettings = Field(default_factory=EchoSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    folders: list[Path] = Field(default_factory=list, description="own folder first, then ancestors'")

    @field_validator("agents")
    @classmethod
    def _known_kinds(cls, agents: dict[str, AgentSettings]) -> dict[str, AgentSettings]:
        problems = [problem for role, settings in agents.items() if (problem := kind_problem(role, settings.kind))]
        problems += [
            f"no {role} (one of: {', '.join(AGENT_KINDS[role])})"
            for role in AGENT_KINDS
            if role not in agents and role not in OPTIONAL_ROLES
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return agents

    @model_validator(mode="after")
    def _judge_has_an_agent(self):
        if self.verify.judge and "judge" not in self.agents:
            raise ValueError(f"policy {self.name!r}: verify.judge is on but there is no `judge` agent")
        return self

    @property
    def uses_llm(self) -> bool:
        return any(uses_llm(role, agent.kind) for role, agent in self.agents.items())

    def with_overrides(self, overrides: dict[str, object]) -> Policy:
        """This policy with settings replaced by dotted key (`agents.pruner.temperature`), validated again."""
        data = self.model_dump()
        for dotted, value in overrides.items():
            target = data
            *parents, last = dotted.split(".")
            for key in parents:
                if not isinstance(target.get(key), dict):
                    raise PolicyError(f"policy {self.name!r} has no setting {dotted!r}")
                target = target[key]
            target[last] = value
        return _validated(data)

    _paths: dict = PrivateAttr(default_factory=dict)  # agent → resolved prompt file (looked up once)
    _contents: dict = PrivateAttr(default_factory=dict)  # agent → its prompt file's bytes (read once)

    def prompt_path(self, agent: str) -> Path | None:
        """The agent's prompt file: looked up in the policy's folders (own first, then ancestors'), and only
        where it stays inside that folder once every link is followed (no `../`, no absolute path, no link out)."""
        if agent in self._paths:
            return self._paths[agent]
        name = self.agents[agent].prompt
        if not name:
            return None
        for folder in self.folders:
            candidate = folder / name
            if not (candidate.exists() or candidate.is_symlink()):
                continue
            if not inside(candidate, folder):
                raise PolicyError(
                    f"policy {self.name!r}: prompt file {name!r} for {agent} lies outside the policy "
                    f"folder {folder}: prompt files are named inside their policy's folder"
                )
            self._paths[agent] = candidate
            return candidate
        raise PolicyError(f"policy {self.name!r}: prompt file {name!r} for {agent} not found in {self.folders}")

    def prompt_bytes(self, agent: str) -> bytes | None:
        """The content of the agent's prompt file (a regular file, size-capped), read once."""
        path = self.prompt_path(agent)
        if path is None:
            return None
        if agent not in self._contents:
            try:
                self._contents[agent] = read_capped(path, MAX_POLICY_FILE_BYTES, "prompt file")
            except UnsafeFile as error:
                raise PolicyError(f"policy {self.name!r}, {agent}: {error}") from None
        return self._contents[agent]

    def prompt_text(self, agent: str) -> str | None:
        data = self.prompt_bytes(agent)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(
                f"policy {self.name!r}, {agent}: prompt file {self.prompt_path(agent)} is not UTF-8 "
                f"text ({exc.reason} at byte {exc.start})"
            ) from None

    @cached_property
    def prompt_hashes(self) -> dict[str, str]:
        """Hash of each agent's prompt file content (or of its settings for prompt-less agents)."""
        hashes = {}
        for agent, settings in self.agents.items():
            data = self.prompt_bytes(agent)
            payload = data if data is not None else settings.model_dump_json().encode()
            hashes[agent] = hashlib.sha256(payload).hexdigest()[:12]
        return hashes

    def snapshot(self) -> dict:
        """The resolved policy, as written into a run's config (prompt texts included)."""
        data = self.model_dump(mode="json", exclude={"folders"})
        data["prompt_hashes"] = self.prompt_hashes
        data["prompts"] = {a: text for a in self.agents if (text := self.prompt_text(a)) is not None}
        return data

    @cached_property
    def policy_hash(self) -> str:
        return snapshot_hash(self.snapshot())


def snapshot_hash(snapshot: dict) -> str:
    """One hash of a whole resolved policy: every setting and every prompt text (not where its files live)."""
    canonical = json.dumps(snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def snapshot_changes(old: dict, new: dict) -> list[str]:
    """What differs between two policy snapshots, one short phrase per changed setting or prompt."""
    before, after = (
        _flatten({k: v for k, v in old.items() if k != "prompt_hashes"}),
        _flatten({k: v for k, v in new.items() if k != "prompt_hashes"}),
    )
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if before.get(key) == after.get(key):
            continue
        if key.startswith("prompts."):
            changes.append(f"the {key.removeprefix('prompts.')} prompt text")
        else:
            changes.append(f"{key}: {_short(before.get(key))} → {_short(after.get(key))}")
    return changes


def _flatten(data: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _short(value: object, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_overrides(items: list[str]) -> dict[str, object]:
    """`--set KEY=YAML` items → {dotted key: value}; the values are checked when the policy is validated."""
    overrides = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise PolicyError(f"--set wants KEY=VALUE (e.g. max_retries=4), got {item!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise PolicyError(f"--set {item!r}: the value is not YAML ({problem})") from None
    return overrides


def search_path(extra: list[Path] | None = None) -> list[Path]:
    env = [Path(p) for p in os.environ.get("DRP_PROMPTS_PATH", "").split(os.pathsep) if p]
    return [*(extra or []), *env, builtin_prompts_dir()]


def available(extra: list[Path] | None = None) -> dict[str, Path]:
    """Policy name → folder (earlier search-path entries win)."""
    found: dict[str, Path] = {}
    for root in search_path(extra):
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if (folder / "policy.yaml").exists():
                    found.setdefault(folder.name, folder)
    return found


def load_policy(name: str, extra: list[Path] | None = None) -> Policy:
    """Resolve a policy by name or folder path, applying inheritance (PolicyError when it cannot be used)."""
    raw, folders = _load_raw(name, extra, seen=())
    raw["folders"] = folders
    return _validated(raw)


def _validated(data: dict) -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(map(str, e['loc'])) or 'policy'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise PolicyError(f"policy {data.get('name')!r}: {'; '.join(problems)}") from None


def _load_raw(name: str, extra, seen: tuple[str, ...]) -> tuple[dict, list[Path]]:
    if name in seen:
        raise PolicyError(f"policy inheritance loop: {' -> '.join([*seen, name])}")
    folder = Path(name) if (Path(name) / "policy.yaml").exists() else available(extra).get(name)
    if folder is None:
        known = ", ".join(available(extra)) or "none"
        raise PolicyError(f"unknown policy {name!r}; available: {known}")
    own = _policy_file(folder / "policy.yaml")
    own.setdefault("name", folder.name)
    parent_name = own.get("inherits")
    if not parent_name:
        return own, [folder]
    parent, parent_folders = _load_raw(parent_name, extra, seen=(*seen, name))
    merged = _deep_merge(parent, own)
    merged["name"] = own["name"]
    return merged, [folder, *parent_folders]


def _policy_file(path: Path) -> dict:
    if not inside(path, path.parent):
        raise PolicyError(f"policy file {path} is a link out of its policy folder: a policy's files live in its folder")
    try:
        own = yaml.safe_load(read_capped_text(path, MAX_POLICY_FILE_BYTES, "policy file")) or {}
    except UnsafeFile as error:
        raise PolicyError(str(error)) from None
    except yaml.YAMLError as exc:
        raise PolicyError(
            f"policy file {path} is not YAML ({getattr(exc, 'problem', None) or type(exc).__name__})"
        ) from None
    if not isinstance(own, dict):
        raise PolicyError(f"policy file {path} must hold settings (a YAML mapping), not {type(own).__name__}")
    return own


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
