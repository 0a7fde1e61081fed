"""The pages' Content-Security-Policy is composed once, from the strict base ``pages/`` owns and
the sources capabilities add at setup (payments adds Stripe's origins to the call page when
Stripe keys are set). Nothing rewrites the header after it is set, so no hook order matters.

A capability calls ``csp_sources(app).allow(prefix, sources)`` in its ``setup``, in any order
relative to the pages' setup: the registry is made on first use, and read only when a page is
served (after every setup has run)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web


class CspSources:
    """Extra sources per directive, for the pages whose path starts with a prefix."""

    def __init__(self) -> None:
        self._allowed: list[tuple[str, dict[str, str]]] = []

    def allow(self, prefix: str, sources: Mapping[str, str]) -> None:
        """Admit ``sources`` (directive → space-separated origins) on pages under ``prefix``."""
        self._allowed.append((prefix, dict(sources)))

    def compose(self, path: str, policy: str) -> str:
        """``policy`` with the sources allowed for ``path`` added."""
        for prefix, sources in self._allowed:
            if path.startswith(prefix):
                policy = widen(policy, sources)
        return policy


def widen(policy: str, sources: Mapping[str, str]) -> str:
    """``policy`` with ``sources`` added to their directives; a directive the policy lacks (it
    falls back to ``default-src``) is added as ``'self'`` plus the sources."""
    directives = [d.strip() for d in policy.split(";") if d.strip()]
    names = {d.split()[0] for d in directives}
    out = []
    for directive in directives:
        extra = sources.get(directive.split()[0])
        out.append(f"{directive} {extra}" if extra else directive)
    for name, extra in sources.items():
        if name not in names:
            out.append(f"{name} 'self' {extra}")
    return "; ".join(out)


CSP_SOURCES = web.AppKey("csp_sources", CspSources)


def csp_sources(app: web.Application) -> CspSources:
    """The app's registry, made on first use (so setups may run in any order)."""
    if CSP_SOURCES not in app:
        app[CSP_SOURCES] = CspSources()
    return app[CSP_SOURCES]
