"""Pure statistics on arrays: no I/O, no printing.

One-pass statistics are partial states that merge (``update``, ``merge``,
``result``), so chunks, shards and threads combine the same way.
"""
from gaussaudit.stats.histogram import StreamingHistogram
from gaussaudit.stats.normality import (
    AD_CRITICAL_5PCT,
    AndersonDarlingResult,
    DAgostinoPearsonResult,
    FeatureNormality,
    anderson_darling,
    dagostino_pearson,
    feature_normality,
)
from gaussaudit.stats.null import NULL_MAX_N, ad_null_statistics
from gaussaudit.stats.running import RunningMoments

__all__ = [
    "AD_CRITICAL_5PCT",
    "AndersonDarlingResult",
    "DAgostinoPearsonResult",
    "FeatureNormality",
    "NULL_MAX_N",
    "RunningMoments",
    "StreamingHistogram",
    "ad_null_statistics",
    "anderson_darling",
    "dagostino_pearson",
    "feature_normality",
]
