"""The one source of truth for the grouping's defaults.

The component's parameters default to these, and the pipeline's config (GroupingConfig) reads
them from here rather than repeat them (components/ never imports pipeline/). No imports: the
config loads this before TensorFlow.
"""
GROUP_FEATURE = "group_id"     # name of the group id feature the Transform graph outputs
SEED = 42                      # K-Means seed and the sample's hash seed
MIN_GROUP_SHARE = 0.02         # a k whose smallest group holds less of train is not chosen
SAMPLE_SIZE = 200_000          # train rows K-Means fits on (a uniform bottom-n sample)
SILHOUETTE_SAMPLE = 5_000      # rows the silhouette of each k is computed on
MIN_COUNT = 5                  # a-priori / one-hot: rarer categories share the fallback group
                               # (partial pooling lets a 5-row group borrow strength)
CATEGORICAL = "error"          # K-Means on a string feature: error | onehot | exclude
N_INIT = 4                     # K-Means restarts per k
TIE_TOLERANCE = 1e-3           # silhouettes this close count as a tie: the smaller k wins
