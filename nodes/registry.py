"""The one table of node ids. ``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS`` derive from it."""

from __future__ import annotations

from . import logic, score, template
from .common import PACK_TAG

NODES = {
    "QG_Compare": logic.Compare,
    "QG_Switch": logic.Switch,
    "QG_Select": logic.Select,
    "QG_BoolOp": logic.BoolOp,
    "QG_Gate": logic.Gate,
    "QG_ScorerLoader": score.ScorerLoader,
    "QG_AestheticScore": score.AestheticScore,
    "QG_PromptAdherence": score.PromptAdherence,
    "QG_TechnicalScore": score.TechnicalScore,
    "QG_CombineScores": score.CombineScores,
    "QG_RankBatch": score.RankBatch,
    "QG_ZeroShotClassify": score.ZeroShotClassify,
    "QG_ParamText": template.ParamText,
    "QG_ParamInt": template.ParamInt,
    "QG_ParamFloat": template.ParamFloat,
    "QG_ParamBool": template.ParamBool,
    "QG_ParamChoice": template.ParamChoice,
    "QG_ParamSeed": template.ParamSeed,
}

NODE_CLASS_MAPPINGS = dict(NODES)
NODE_DISPLAY_NAME_MAPPINGS = {node: f"{cls.TITLE} ({PACK_TAG})" for node, cls in NODES.items()}
_IDS = {cls: node for node, cls in NODES.items()}


def node_id(cls: type) -> str:
    """The id a node class is registered under (used when a node expands into nodes of this pack)."""
    return _IDS[cls]
