"""One way to plug in: each capability package has a ``setup.py`` with exactly one public
function, ``setup(app)``, and ``create_app`` wires capabilities only through those (the kit's own
contexts and the realtime transport aside). A module of its own, not the package's
``__init__``: importing any module of a capability must not import all its routes."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import livedesk

SRC = Path(livedesk.__file__).parent
CAPABILITIES = [
    "system",
    "visitors",
    "staff",
    "customers",
    "consultations",
    "integrations",
    "recording",
    "calls",
    "booking",
    "surveys",
    "supervision",
    "catalogue",
    "pages",
    "payments",
]
# Plumbing that is not a capability: the kit's contexts live in app.py, realtime is the
# transport (set up from the composition root), the shared kernel (audit, identity, outbox,
# timeline, uploads) is used by capabilities, and wiring/ is the composition root's own.
NOT_CAPABILITIES = {
    "kit",
    "models",
    "realtime",
    "audit",
    "identity",
    "outbox",
    "timeline",
    "uploads",
    "wiring",
    "demo",
    "settings",
}


def _create_app_calls() -> list[str]:
    tree = ast.parse((SRC / "app.py").read_text())
    create_app = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "create_app")
    return [ast.unparse(node.func) for node in ast.walk(create_app) if isinstance(node, ast.Call)]


def test_every_capability_package_has_one_setup() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()} - NOT_CAPABILITIES
    assert packages == set(CAPABILITIES), "a new package: add it to CAPABILITIES (or NOT_CAPABILITIES)"
    for name in CAPABILITIES:
        module = importlib.import_module(f"livedesk.{name}.setup")
        public = [
            n
            for n, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module.__name__ and not n.startswith("_")
        ]
        assert public == ["setup"], name
        assert list(inspect.signature(module.setup).parameters) == ["app"], name


def test_create_app_plugs_capabilities_in_only_through_their_setup() -> None:
    calls = _create_app_calls()
    setups = [c.removesuffix(".setup") for c in calls if c.endswith(".setup")]
    assert setups == CAPABILITIES  # each once, in this order (app.py says why where it matters)
    others = {c for c in calls if not c.endswith(".setup")}
    assert others == {
        "web.Application",
        "Mailer",
        "LocalFileStore",
        "app.cleanup_ctx.append",
        "app.on_response_prepare.append",
        "setup_realtime",
        "event_table",
        "hand_offs",
    }


def test_only_a_package_setup_appends_cleanup_contexts() -> None:
    """A route module that appends a context hides a setup (as surveys' routes once did)."""
    hidden = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC)
        if relative.parts[0] in NOT_CAPABILITIES or relative.name == "setup.py" or len(relative.parts) == 1:
            continue
        if "cleanup_ctx.append" in path.read_text():
            hidden.append(str(relative))
    assert hidden == []
