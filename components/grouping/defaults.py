"""The one source of truth for the grouping's defaults.

The component's parameters default to these, and the pipeline's config (GroupingConfig) should
read them from here rather than repeat them (components/ never imports pipeline/).
"""
GROUP_FEATURE = "group_id"     # name of the group id feature the Transform graph outputs
SEED = 42                      # K-Means seed and the sample's hash seed
MIN_GROUP_SHARE = 0.02         # a k whose smallest group holds less of train is not chosen
SAMPLE_SIZE = 200_000          # train rows K-Means fits on (a uniform bottom-n sample)
SILHOUETTE_SAMPLE = 5_000      # rows the silhouette of each k is computed on
MIN_COUNT = 20                 # a-priori / one-hot: categories with fewer train rows fall back
CATEGORICAL = "error"          # K-Means on a string feature: error | onehot | exclude
N_INIT = 4                     # K-Means restarts per k
TIE_TOLERANCE = 1e-3           # silhouettes this close count as a tie: the smaller k wins
