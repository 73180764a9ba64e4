"""What the exporter must publish for a structure file, worked out from the raw JSON alone.

The oracle of the state-owner and end-to-end tests. It walks the ``LoxAPP3.json`` document
itself (``controls`` and their ``subControls``, ``states``, the names in ``rooms`` and ``cats``,
``globalStates``) with ``exporter_harness``'s walk and writes the labels of design 3.3 out by
hand. It uses nothing of the exporter's structure model, state index, layout, series plan or
families, so a defect there shows up as a difference instead of being copied into what the
test expects.

The rules, as written here:

- a control's labels: ``miniserver``, ``uuid`` (its ``uuidAction``), ``control`` (its name),
  ``control_type``, ``room`` and ``category`` by name (``""`` when it names none or one the file
  does not list; a subcontrol naming none takes its parent's), and ``parent`` (the parent's
  ``uuidAction``) on subcontrols only;
- ``loxone_control_value``: one series per owner of a numeric state, ``state`` the state's name
  (``name[i]`` for an element of a list state), however many controls share the state's UUID;
- ``loxone_global_value``: one series per ``globalStates`` entry whose UUID no control owns;
- ``loxone_control_info``: 1 per control, ``parent`` ``""`` on top-level controls. The ``unit``
  label comes from the format strings (a table of their own, tested in tests/test_units.py) and
  is left out here; ``without_label`` drops it from what the exporter published.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from exporter_harness import SeriesKey, state_refs, walk_controls

Labels = frozenset[tuple[str, str]]


def _names(places: object) -> dict[str, str]:
    """``rooms`` or ``cats``: UUID -> name (``""`` for an entry without one)."""
    if not isinstance(places, Mapping):
        return {}
    return {uuid: (place.get("name") or "") for uuid, place in places.items()}


def labelled_controls(
    document: Mapping[str, Any], miniserver: str
) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Every control and subcontrol of ``document`` with the labels its series start with."""
    rooms = _names(document.get("rooms"))
    categories = _names(document.get("cats"))
    # The walk visits a parent just before its subcontrols, so the last place recorded under a
    # parent's uuidAction is that parent's.
    places: dict[str, tuple[str, str]] = {}
    # (room, name) -> the uuidActions seen with that name in that room, in file order.
    alike: dict[tuple[str, str], list[str]] = {}
    for control, parent in walk_controls(document):
        room, category = ("", "") if parent is None else places[parent]
        if control.get("room"):
            room = rooms.get(control["room"], "")
        if control.get("cat"):
            category = categories.get(control["cat"], "")
        places[control["uuidAction"]] = (room, category)
        labels = {
            "miniserver": miniserver,
            "uuid": control["uuidAction"],
            "control": control["name"],
            "control_type": control.get("type") or "",
            "room": room,
            "category": category,
        }
        same = alike.setdefault((room, control["name"]), [])
        if control["uuidAction"] not in same:
            same.append(control["uuidAction"])
        if same.index(control["uuidAction"]) > 0:
            labels["duplicate"] = str(same.index(control["uuidAction"]) + 1)
        if parent is not None:
            labels["parent"] = parent
        yield control, labels


def state_owners(document: Mapping[str, Any], miniserver: str) -> dict[str, list[Labels]]:
    """State UUID -> the label sets of the ``loxone_control_value`` series it feeds, one per
    owner in file order."""
    owners: dict[str, list[Labels]] = {}
    for control, labels in labelled_controls(document, miniserver):
        for state, uuid in state_refs(control.get("states") or {}):
            owners.setdefault(uuid, []).append(frozenset({**labels, "state": state}.items()))
    return owners


def expected_control_values(
    document: Mapping[str, Any], values: Mapping[str, float], miniserver: str
) -> dict[SeriesKey, float]:
    """``loxone_control_value`` for ``values`` (state UUID -> the Miniserver's current value)."""
    expected: dict[SeriesKey, float] = {}
    fed_by: dict[Labels, str] = {}
    for uuid, owners in state_owners(document, miniserver).items():
        if uuid not in values:
            continue
        for labels in owners:
            # Two UUIDs behind one label set: the series shows whichever changed last.
            assert fed_by.setdefault(labels, uuid) == uuid, f"ambiguous series {sorted(labels)}"
            expected["loxone_control_value", labels] = values[uuid]
    return expected


def expected_global_values(
    document: Mapping[str, Any], values: Mapping[str, float], miniserver: str
) -> dict[SeriesKey, float]:
    """``loxone_global_value``: the global states no control owns, by their name."""
    owned = state_owners(document, miniserver).keys()
    globals_ = document.get("globalStates") or {}
    return {
        ("loxone_global_value", frozenset({"miniserver": miniserver, "state": name}.items())): (
            values[uuid]
        )
        for name, uuid in globals_.items()
        if isinstance(uuid, str) and uuid in values and uuid not in owned
    }


def expected_info(document: Mapping[str, Any], miniserver: str) -> set[SeriesKey]:
    """``loxone_control_info`` without its ``unit`` label (every value is 1)."""
    return {
        ("loxone_control_info", frozenset({"parent": "", **labels}.items()))
        for _, labels in labelled_controls(document, miniserver)
    }


def without_label(keys: Iterable[SeriesKey], *dropped: str) -> set[SeriesKey]:
    return {
        (name, frozenset(pair for pair in labels if pair[0] not in dropped))
        for name, labels in keys
    }
