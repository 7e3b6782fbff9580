"""The one table of node ids. ``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS`` derive from it."""

from __future__ import annotations

from . import judges, logic, loop, score, scored, template
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
    "QG_HFScorerLoader": judges.HFScorerLoader,
    "QG_PreferenceScore": judges.PreferenceScore,
    "QG_ClipIQA": judges.ClipIQA,
    "QG_ParamText": template.ParamText,
    "QG_ParamInt": template.ParamInt,
    "QG_ParamFloat": template.ParamFloat,
    "QG_ParamBool": template.ParamBool,
    "QG_ParamChoice": template.ParamChoice,
    "QG_ParamSeed": template.ParamSeed,
    "QG_RetryStart": loop.RetryStart,
    "QG_RetryEnd": loop.RetryEnd,
    "QG_RetryBlock": loop.RetryBlock,
    "QG_RetryStep": loop.RetryStep,
    "QG_SaveImageWithScores": scored.SaveImageWithScores,
    "QG_ApplyRanking": scored.ApplyRanking,
}
for _node, _cls in NODES.items():
    _cls.NODE_ID = _node  # node classes that expand into nodes of this pack read their ids here

NODE_CLASS_MAPPINGS = dict(NODES)
NODE_DISPLAY_NAME_MAPPINGS = {node: f"{cls.TITLE} ({PACK_TAG})" for node, cls in NODES.items()}
