"""Which tensor of a trial plays which role: the latent vectors, labels, inputs, reconstructions, loss.

Each role has a regex (``--<role>-regex``; defaults match our trainer). Only the latent role is
required. An optional role whose default regex matches nothing is simply absent (a trial
without labels or images is still reported), but a regex the user gave must match. ``none``
switches a role off. Wherever a regex matches nothing, the most likely tensors are named from
their shapes, with the option to pass, so a new user's first error message is their fix.
"""

from __future__ import annotations

import re

import numpy as np
from dataclasses import dataclass, field

from latentlapse.contract import ROLE, ROLES as CONTRACT_ROLES
from reporter import ReporterError
from reporter.trial.labels import to_classes

# The roles and their words are the contract's (latentlapse.contract.ROLES): the trainer saves them.
ROLES = tuple(r.name for r in CONTRACT_ROLES)
REQUIRED = tuple(r.name for r in CONTRACT_ROLES if r.required)
OFF = "none"
ROLE_WORDS = {r.name: r.words for r in CONTRACT_ROLES}
# A (N, K) tensor with more columns than this is not suggested as one-hot labels or class scores.
MAX_SCORE_CLASSES = 100


@dataclass
class Roles:
    """The tensor chosen for each role (None: absent) and why absent roles are absent."""

    names: dict[str, str | None]
    notes: dict[str, str] = field(default_factory=dict)

    def get(self, role: str) -> str | None:
        return self.names.get(role)


def resolve(patterns: dict[str, str], defaults: dict[str, str], inventory: list[dict]) -> Roles:
    """Match each role's regex against the trial's tensors.

    Parameters
    ----------
    patterns : dict
        Regex per role, as configured.
    defaults : dict
        The default regex per role (a default that matches nothing leaves an optional role absent).
    inventory : list of dict
        ``{"name", "shape", ...}`` per tensor (:meth:`reporter.trial.store.TensorStore.inventory`).

    Returns
    -------
    Roles

    Raises
    ------
    ReporterError
        A regex is invalid, matches several tensors, or a required (or user-given) one matches none.
    """
    available = sorted(str(t["name"]) for t in inventory)
    names: dict[str, str | None] = {}
    notes: dict[str, str] = {}
    for role in ROLES:
        pattern = patterns.get(role, defaults.get(role, OFF))
        if pattern is None or str(pattern).strip().lower() == OFF:
            if role in REQUIRED:
                raise ReporterError(f"--{role}-regex cannot be {OFF!r}: the {ROLE_WORDS[role]} are what is embedded")
            names[role] = None
            notes[role] = f"switched off (--{role}-regex {OFF})"
            continue
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ReporterError(f"--{role}-regex {pattern!r} is not a valid regex ({exc})") from None
        hits = [n for n in available if regex.search(n)]
        if len(hits) > 1:
            raise ReporterError(f"--{role}-regex {pattern!r} matches {len(hits)} tensors ({', '.join(hits)}): "
                                "make it match exactly one, e.g. anchor it with ^...$")
        if hits:
            names[role] = hits[0]
            continue
        taken = {v for v in names.values() if v}
        likely = suggest(role, inventory, exclude=taken)
        if role in REQUIRED or pattern != defaults.get(role):
            raise ReporterError(no_match_message(role, pattern, likely, available))
        names[role] = None
        notes[role] = (f"no tensor matches the default --{role}-regex"
                       + (f"; likely: {', '.join(likely)} (pass --{role}-regex '^{re.escape(likely[0])}$')"
                          if likely else ""))
    return Roles(names, notes)


def no_match_message(role: str, pattern: str, likely: list[str], available: list[str]) -> str:
    """One line: what matched nothing, the likeliest tensors for the role, the option to pass."""
    head = f"--{role}-regex {pattern!r} matches no tensor"
    if likely:
        return (f"{head}; the {ROLE_WORDS[role]} are most likely {' or '.join(likely)}: "
                f"pass --{role}-regex '^{re.escape(likely[0])}$' (python -m reporter tensors PATH lists them all)")
    return f"{head}; the trial has: {', '.join(available) or 'no tensors'}"


def suggest(role: str, inventory: list[dict], exclude=(), limit: int = 2) -> list[str]:
    """The tensors most likely to play ``role``, judged by their shapes (then names), best first.

    latent: a 2-D tensor (N, D) with few columns; labels: one value per point, or a short row;
    inputs/recon: the most values per point; loss: one value per point named like a loss.
    """
    n = probe_size(inventory)
    scored = []
    for t in inventory:
        name, shape = str(t["name"]), t.get("shape")
        if name in exclude or not shape or (n is not None and shape[0] != n):
            continue
        score = _score(role, name, list(shape))
        if score is not None:
            scored.append((score, name))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [name for _, name in scored[:limit]]


def probe_size(inventory: list[dict]) -> int | None:
    """The most common first axis among the tensors: the number of points per step."""
    firsts = [t["shape"][0] for t in inventory if t.get("shape")]
    if not firsts:
        return None
    return max(set(firsts), key=lambda d: (firsts.count(d), d))


def _score(role: str, name: str, shape: list[int]):
    per_point = 1
    for d in shape[1:]:
        per_point *= d
    hint = sum(1.0 for h in ROLE[role].hints if h in name.lower())
    if role == "latent":
        if len(shape) < 2 or per_point < 2 or per_point > 4096:
            return None
        return 10.0 - min(per_point, 4096) / 512.0 + hint + (1.0 if len(shape) == 2 else 0.0)
    if role == "labels":
        if "loss" in name.lower():
            return None  # one value per point, but a loss
        if per_point == 1:
            return 5.0 + hint
        if len(shape) == 2 and per_point <= MAX_SCORE_CLASSES:
            return 2.0 + hint  # one-hot rows or class scores
        return None
    if role in ("inputs", "recon"):
        if per_point < 4:
            return None
        return min(per_point, 100_000) / 1000.0 + 2.0 * hint
    if role == "loss":
        if per_point != 1 and "loss" not in name.lower():
            return None
        return hint * 5.0 + (1.0 if per_point == 1 else 0.0)
    return None


def describe(roles: Roles, inventory: list[dict]) -> list[dict]:
    """One row per role for ``python -m reporter tensors``: the tensor taken, its shape, or why none."""
    shapes = {str(t["name"]): t.get("shape") for t in inventory}
    rows = []
    for role in ROLES:
        name = roles.get(role)
        rows.append({"role": role, "tensor": name, "shape": shapes.get(name) if name else None,
                     "note": roles.notes.get(role, "")})
    return rows


def probe_arrays(values: dict, names: dict, where: str = "this step") -> dict:
    """One step's tensors by role, checked to fit together and put in the shapes a frame needs.

    Parameters
    ----------
    values : dict
        Role -> the tensor's value at the step (None for an absent role).
    names : dict
        Role -> tensor name, for the messages.
    where : str
        The step, for the messages ("EVAL step 3").

    Returns
    -------
    dict
        ``latent`` (N, D) (any rank flattened per point), ``labels`` (N,) int or None,
        ``label_form``, ``inputs`` and ``recon`` as saved (or None), ``loss`` (N,) or None
        (a per-point loss of any rank is averaged per point; a single number is kept as it is).
    """
    latent = values["latent"]
    if latent.ndim == 0 or latent.shape[0] == 0:
        raise ReporterError(f"{where}: {names['latent']} has shape {latent.shape}: no points to embed; "
                            "check --latent-regex")
    n = latent.shape[0]
    latent = latent.reshape(n, -1)
    for role in ("inputs", "recon"):
        a = values.get(role)
        if a is not None and (a.ndim == 0 or a.shape[0] != n):
            raise ReporterError(f"{where}: {names[role]} has {a.shape[0] if a.ndim else 0} rows but the latents "
                                f"({names['latent']}) have {n}: check --{role}-regex")
    labels = form = None
    if values.get("labels") is not None:
        a = values["labels"]
        if a.ndim == 0 or a.shape[0] != n:
            raise ReporterError(f"{where}: {names['labels']} has {a.shape[0] if a.ndim else 0} rows but the "
                                f"latents ({names['latent']}) have {n}: check --labels-regex")
        classes = to_classes(a, n, name=names["labels"])
        labels, form = classes.values, classes.form
    loss = values.get("loss")
    if loss is not None:
        loss = np.asarray(loss, dtype=np.float64)
        loss = loss.reshape(n, -1).mean(axis=1) if loss.ndim and loss.shape[0] == n else loss.reshape(-1)
    return {"latent": latent, "labels": labels, "label_form": form, "inputs": values.get("inputs"),
            "recon": values.get("recon"), "loss": loss}
