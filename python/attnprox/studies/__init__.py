"""Corpus studies: score every text of a corpus with one model, compare groups, test the differences.

    import attnprox
    s = attnprox.study(["onestopenglish", "path/to/onestopenglish"], model="model.apx", out="study/")
    s.comparison("ap").pairs        # Wilcoxon signed-rank tests, Bonferroni-corrected, rank-biserial r
    s.files["report"]               # study/report.md; also texts.csv/.json, stats.csv, figure.png/.svg

Corpora: `onestopenglish(DIR)` (matched triplets of reading levels), `folders({group: DIR})`, `glob(PATTERN)`,
`table(FILE.csv|.jsonl)`. Results live in an SQLite store (`Store`), written as each batch finishes, so a study
that stops resumes where it stopped. Several workers run through Dask distributed. See docs/studies.md.
"""
from .corpus import Corpus, Dropped, Item, folders, from_sources, glob, onestopenglish, table
from .stats import Comparison, GroupSummary, OmnibusTest, PairTest, compare
from .store import ConfigurationChanged, Store
from .run import Study, study

__all__ = ["Comparison", "ConfigurationChanged", "Corpus", "Dropped", "GroupSummary", "Item", "OmnibusTest",
           "PairTest", "Store", "Study", "compare", "folders", "from_sources", "glob", "onestopenglish", "study",
           "table"]
