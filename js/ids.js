// @ts-check
// The node ids of this pack, for the web UI extensions (one list, checked against the Python registry
// by tests/test_registry.py so the two never drift).
export const QG_NODE_IDS = Object.freeze([
  "QG_Compare",
  "QG_Switch",
  "QG_Select",
  "QG_BoolOp",
  "QG_Gate",
  "QG_ScorerLoader",
  "QG_AestheticScore",
  "QG_PromptAdherence",
  "QG_TechnicalScore",
  "QG_CombineScores",
  "QG_RankBatch",
  "QG_ZeroShotClassify",
  "QG_HFScorerLoader",
  "QG_PreferenceScore",
  "QG_ClipIQA",
  "QG_ParamText",
  "QG_ParamInt",
  "QG_ParamFloat",
  "QG_ParamBool",
  "QG_ParamChoice",
  "QG_ParamSeed",
  "QG_RetryStart",
  "QG_RetryEnd",
  "QG_RetryBlock",
  "QG_RetryStep",
  "QG_SaveImageWithScores",
  "QG_ApplyRanking",
]);

export const isQualityGateNode = (/** @type {string} */ name) => name.startsWith("QG_");

/** The template parameter nodes (nodes/template.py). */
export const QG_PARAM_IDS = Object.freeze(QG_NODE_IDS.filter((id) => /^QG_Param/.test(id)));
