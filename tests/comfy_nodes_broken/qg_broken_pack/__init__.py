"""A pack that fails to import, to prove the harness fails loudly on an IMPORT FAILED line."""

raise ImportError("qg_broken_pack is broken on purpose")
