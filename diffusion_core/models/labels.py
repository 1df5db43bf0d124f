"""The class labels of a conditional model, as its card lists them.

A conditional model's ``card.json`` has ``classes`` (the name of each label, by index, e.g.
"0" ... "9") and optionally ``class_words`` (another accepted name per label, e.g. "zero" ...
"nine") and ``aliases`` (more names, lower case -> class name, e.g. "sneakers" -> "Sneaker").
A request names a class by any of these, case-insensitively, or by its index; "anything"
(or an empty request) means no label: the model draws from all its classes.

An unconditional model's card may name its conditional sibling (``conditional_variant``, e.g.
``digits`` -> ``digits_cond``): a request for a class is then served by the sibling.
"""

from __future__ import annotations

#: what asks a conditional model for "no particular class"
ANYTHING = "anything"


def class_names(card: dict) -> list[str]:
    """The name of each class by label index ([] for an unconditional model)."""
    names = card.get("classes") or []
    if not names:
        k = int((card.get("net") or {}).get("num_classes", 0) or 0)
        names = [str(i) for i in range(k)]
    return [str(n) for n in names]


def is_conditional(card: dict) -> bool:
    return bool(class_names(card))


def wants_label(text: str | int | None) -> bool:
    """Whether a request names a class (not empty, not "anything")."""
    return text is not None and str(text).strip().lower() not in ("", ANYTHING, "any")


def labelled_model(name: str, card: dict, text: str | int | None) -> str:
    """The model that serves a request for ``text``: ``name`` itself, or, when ``name`` is
    unconditional and a class is asked for, the conditional sibling its card names."""
    sibling = card.get("conditional_variant")
    if wants_label(text) and not is_conditional(card) and sibling:
        return str(sibling)
    return name


def valid_labels(card: dict) -> list[str]:
    """Every name a request may use, for messages: "0 (zero)", ..., "Sneaker (sneakers,
    trainer)", and "anything"."""
    words = card.get("class_words") or []
    aliases = card.get("aliases") or {}
    out = []
    for i, name in enumerate(class_names(card)):
        extra = [str(words[i])] if i < len(words) and str(words[i]) != name else []
        extra += [str(a) for a, n in aliases.items() if str(n).lower() == name.lower()]
        out.append(f"{name} ({', '.join(extra)})" if extra else name)
    return [*out, ANYTHING]


def resolve_label(card: dict, text: str | int | None) -> int:
    """The label index a request names (-1 for "anything"); ValueError listing the valid
    names when the model has no such class or takes no labels."""
    names = class_names(card)
    if not wants_label(text):
        return -1
    if not names:
        raise ValueError(f"model “{card.get('name', '?')}” is unconditional: it takes no "
                         "label (leave --label out)")
    want = " ".join(str(text).strip().lower().split())
    words = [str(w).lower() for w in card.get("class_words") or []]
    for i, name in enumerate(names):
        if want == name.lower() or (i < len(words) and want == words[i]):
            return i
    aliases = {str(k).lower(): str(v).lower() for k, v in (card.get("aliases") or {}).items()}
    if want in aliases:
        lowered = [n.lower() for n in names]
        if aliases[want] in lowered:
            return lowered.index(aliases[want])
    if want.isdigit() and int(want) < len(names):
        return int(want)
    raise ValueError(f"model “{card.get('name', '?')}” has no class “{text}”; valid labels: "
                     + ", ".join(valid_labels(card)))
